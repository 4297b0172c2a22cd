#!/bin/sh
# Latency against accuracy (bench/RESULTS.md): the bundled network tuned as bench/tune_default.sh
# does, over a wider grid of average windows and minimum counts, with a limit on the median delay
# from the end of each spoken word to its detection; then the validation figures that choose
# between settings (bench/validate_model.sh). The delay is in audio time: the live path adds
# about 50 ms (bench/live.py).
#   sh bench/latency_tradeoff.sh MODEL [EVAL_DIR] [LIMITS_MS]
set -eu
MODEL=$1
EVAL=${2:-runs/eval}
LIMITS=${3:-"none 250 200 150 100"}
KWSD=${KWSD:-.venv/bin/kwsd}
for limit in $LIMITS; do
  out=runs/latency/$limit
  rm -rf "$out"
  mkdir -p runs/latency
  echo "== median delay limit: $limit"
  option=""
  [ "$limit" = none ] || option="--max-delay-ms $limit"
  # shellcheck disable=SC2086
  $KWSD tune --model "$MODEL" --stream "$EVAL/kw_val.wav" --negative "$EVAL/neg_val.wav" --clip-stride-ms 80 \
    --windows 160,240,320,400,500,800 --minimum-counts 1,2,3,6 $option \
    --out "$out" --write-model "$out/model.tflite" 2>"$out.log" | grep -E "^chosen|min of audio|after the word|average_window_ms|minimum_count" || true
  if [ -f "$out/model.tflite" ]; then sh bench/validate_model.sh "$out/model.tflite" "$EVAL"; else tail -1 "$out.log"; fi
done
