#!/bin/sh
# Train the bundled recipe (bench/train_default.sh) as a "soup": the pretraining once, then one
# member per seed starting from that pretrained network, all at once, then the average of the
# members' final weights exported as OUT/soup/model.tflite (models/README.md, "A soup").
#   sh bench/train_soup.sh [SHARED_DATA_DIR] [DEBIAN_SPEECH_DIR] [OUT]
# SEEDS: the members' seeds (default "15 16 17 18"; the first one also seeds the pretraining).
# Four members at once on 2 cores took about 95 minutes (each needs about 2.5 GB of memory).
# Tried once, not adopted: the soup missed more keywords than any member (models/README.md, "A soup").
set -eu
DATA=${1:-../shared/data}
DEB=${2:-runs/debian_speech}
OUT=${3:-runs/soup}
SEEDS=${SEEDS:-15 16 17 18}
FIRST=${SEEDS%% *}
mkdir -p "$OUT"
EXTRA_ARGS="--seed $FIRST --pretrain-only" sh bench/train_default.sh "$DATA" "$DEB" "$OUT/parent" > "$OUT/parent.log" 2>&1
MEMBERS=""
PIDS=""
for seed in $SEEDS; do
  EXTRA_ARGS="--seed $seed --start-checkpoint $OUT/parent/pretrained.keras" \
    sh bench/train_default.sh "$DATA" "$DEB" "$OUT/member$seed" > "$OUT/member$seed.log" 2>&1 &
  PIDS="$PIDS $!"
  MEMBERS="$MEMBERS${MEMBERS:+,}$OUT/member$seed"
done
FAILED=0
for pid in $PIDS; do wait "$pid" || FAILED=1; done
[ "$FAILED" = 0 ] || { echo "a member failed: see $OUT/member*.log" >&2; exit 1; }
EXTRA_ARGS="--seed $FIRST --soup $MEMBERS" sh bench/train_default.sh "$DATA" "$DEB" "$OUT/soup"
