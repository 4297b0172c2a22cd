#!/bin/sh
# Tune a trained model's smoother settings on the validation streams (bench/make_eval_sets.sh),
# store them inside the model file, print the validation figures that choose between models
# (bench/validate_model.sh), and measure it on the held-out test streams.
#   sh bench/tune_default.sh RUN_DIR/model.tflite OUT.tflite [EVAL_DIR] [TARGET_FA_PER_HOUR]
set -eu
MODEL=$1
OUT=$2
EVAL=${3:-runs/eval}
TARGET=${4:-0.5}
KWSD=${KWSD:-.venv/bin/kwsd}
# TUNE_NEGATIVES: more tuning negatives (the model's own settings: none; config/strict.yaml:
# "--negative $EVAL/neg_val_words_tune.wav", real single words; see models/README.md), or any
# other `kwsd tune` options (e.g. "--windows 800" to hold the average window)
# STRIDE: the clip stride to tune for (stored in the model; the shipped default: 80 ms)
$KWSD tune --model "$MODEL" --stream "$EVAL/kw_val.wav" --negative "$EVAL/neg_val.wav" ${TUNE_NEGATIVES:-} --target-fa "$TARGET" \
  --clip-stride-ms "${STRIDE:-80}" \
  --out "$(dirname "$OUT")/tune" --write-model "$OUT"
echo "== validation audio the tuning did not use"
sh bench/validate_model.sh "$OUT" "$EVAL"
# SKIP_TEST=1: stop here (choose on validation first, then run bench/eval_model.sh)
[ "${SKIP_TEST:-0}" = 1 ] || sh bench/eval_model.sh "$OUT" "$EVAL"
