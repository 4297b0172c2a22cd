#!/bin/sh
# Fetch the pretrained speech embedding that `kwsd train --teacher-dir` learns from: Google's
# speech_embedding (TF Hub, Apache-2.0) as openWakeWord 0.5.1 ships it in its wheel
# (melspectrogram.tflite, embedding_model.tflite). Used for training only; nothing of it ships.
#   sh bench/fetch_teacher.sh [DIR]     (default runs/teacher_models)
set -eu
DIR=${1:-runs/teacher_models}
PY=${PY:-.venv/bin/python}
[ -f "$DIR/embedding_model.tflite" ] && [ -f "$DIR/melspectrogram.tflite" ] && exit 0
mkdir -p "$DIR/wheel"
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --dest "$DIR/wheel" openwakeword==0.5.1
"$PY" - "$DIR" <<'PYEOF'
import glob, sys, zipfile
out = sys.argv[1]
wheel = zipfile.ZipFile(glob.glob(f"{out}/wheel/openwakeword-0.5.1-*.whl")[0])
for name in ("melspectrogram.tflite", "embedding_model.tflite"):
    with open(f"{out}/{name}", "wb") as f:
        f.write(wheel.read(f"openwakeword/resources/models/{name}"))
PYEOF
rm -rf "$DIR/wheel"
echo "teacher models in $DIR"
