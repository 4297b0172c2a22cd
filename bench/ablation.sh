#!/bin/sh
# What each training change buys: short runs (2,500 steps) adding one change at a time, each
# measured on the held-out test streams at the built-in default settings (threshold 0.7,
# average 500 ms). Needs bench/make_eval_sets.sh's streams.
#   sh bench/ablation.sh [SHARED_DATA_DIR] [DEBIAN_SPEECH_DIR] [OUT_DIR]
set -eu
DATA=${1:-../shared/data}
DEB=${2:-runs/debian_speech}
OUT=${3:-runs/ablation}
KWSD=${KWSD:-.venv/bin/kwsd}
. bench/negative_dirs.sh
. bench/extra_words.sh
BASE="--data-dir $DATA/speech_commands_v0.02_test,runs/extra
  --background-dir $DATA/speech_commands_background_noise/_background_noise_ --split-salt kwsd
  --unknown-percentage 30 --model-architecture ds_cnn --spec-augment
  --how-many-training-steps 2000,500 --learning-rate 0.001,0.0001 --eval-step-interval 500 --save-step-interval 500"
NEGS="--negative-dir $TRAIN_NEG --negative-percentage 35"
ROOM="--partial-percentage 5 --rir-dir $DATA/room_impulse_responses --reverb-percentage 30 --gain-db=-10,6"
MINE="--mine-hard-negatives --hard-negative-percentage 15"
mkdir -p "$OUT"
run() {  # name, extra flags
  [ -f "$OUT/$1/model.tflite" ] || $KWSD train $BASE $2 --out "$OUT/$1" > "$OUT/$1.log" 2>&1
  $KWSD stream eval --model "$OUT/$1/model.tflite" --json runs/eval/kw_test.wav > "$OUT/$1.kw.json"
  $KWSD stream eval --model "$OUT/$1/model.tflite" --json runs/eval/neg_test_*.wav > "$OUT/$1.neg.json"
  python3 -c "import json; k=json.load(open('$OUT/$1.kw.json')); n=json.load(open('$OUT/$1.neg.json')); \
print('| $1 | %.1f%% | %.1f%% | %.1f |' % (100*k['false_reject_rate'], 100*k['wrong_keyword_rate'], \
n['false_accepts_per_hour']))" | tee -a "$OUT/table.md"
}
echo "| run | FRR | wrong keyword | FA/h on speech |" > "$OUT/table.md"
echo "|---|---|---|---|" >> "$OUT/table.md"
run a_speech_commands_only ""
run b_negatives "$NEGS"
run c_partial_reverb_gain "$NEGS $ROOM"
run d_hard_negatives "$NEGS $ROOM $MINE"
