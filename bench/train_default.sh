#!/bin/sh
# Train the bundled default model (models/default.tflite) the way models/README.md describes.
#   sh bench/train_default.sh [SHARED_DATA_DIR] [DEBIAN_SPEECH_DIR] [OUT]
# SHARED_DATA_DIR: the project's shared data folder (Speech Commands copies, negative speech, RIR).
# DEBIAN_SPEECH_DIR: the output of SHARED_DATA_DIR/debian_speech.sh (fetched first if missing).
# Held out of training, for evaluation only (bench/make_eval_sets.sh): the keyword speakers that the
# split puts in validation/testing, negative_speech/mycroft_precise_community, the Debian packages
# asterisk-core-sounds-en-wav and fillets-ng-data, and the validation/testing hash split of the rest.
# The teacher (a pretrained speech embedding, bench/fetch_teacher.sh) is fetched into TEACHER first.
# EXTRA_NEG: more negative folders (bench/negative_dirs.sh). KW_DATA: the keyword recordings
# (bench/extra_words.sh; default: the shared copy of Speech Commands' test set).
# EXTRA_ARGS: more `kwsd train` options (a later --seed overrides the one below). Until the
# level-invariant default (models/README.md, "Quiet speech"), this script had neither
# --level-invariant nor --teacher-dir, and until the pretrained default ("Adopted: seed 8") neither
# --pretrain-clips nor --seed: the runs that models/README.md describes before each of those add
# their EXTRA_ARGS to the older recipe (the earlier pretrained runs: EXTRA_ARGS="--pretrain-clips 40000
# --seed N"). The same seed on another CPU trains another network: keep the file of a run you want.
set -eu
DATA=${1:-../shared/data}
DEB=${2:-runs/debian_speech}
OUT=${3:-runs/default}
KWSD=${KWSD:-.venv/bin/kwsd}
TEACHER=${TEACHER:-runs/teacher_models}
sh bench/fetch_teacher.sh "$TEACHER"
# the fetch script works in a folder of its own: give it an absolute path
[ -d "$DEB/hedgewars-data" ] || sh "$DATA/debian_speech.sh" "$(realpath -m "$DEB")"
. bench/extra_words.sh
. bench/negative_dirs.sh
exec $KWSD train --data-dir "$KW_DIRS" \
  --background-dir "$DATA/speech_commands_background_noise/_background_noise_" \
  --split-salt kwsd --unknown-percentage 30 --model-architecture ds_cnn --spec-augment \
  --negative-dir "$TRAIN_NEG" --negative-percentage 35 --partial-percentage 5 \
  --rir-dir "$DATA/room_impulse_responses" --reverb-percentage 30 --gain-db=-10,6 --speed-range 0.9,1.1 \
  --mine-hard-negatives --hard-negative-percentage 15 --level-invariant --teacher-dir "$TEACHER" \
  --pretrain-clips 40000 --seed 8 \
  --how-many-training-steps 6000,3000,2000 --learning-rate 0.001,0.0005,0.0001 \
  --eval-step-interval 1000 --save-step-interval 1000 --name default --out "$OUT" ${EXTRA_ARGS:-}
