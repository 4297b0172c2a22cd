#!/bin/sh
# The stream figures of a model on the held-out test streams made by bench/make_eval_sets.sh:
# keywords (false rejects, wrong keywords) and real non-keyword speech (false accepts per hour).
#   sh bench/eval_model.sh MODEL.tflite [EVAL_DIR] [extra 'kwsd stream eval' options, e.g. --config X]
set -eu
MODEL=$1
EVAL=${2:-runs/eval}
shift; [ $# -gt 0 ] && shift
KWSD=${KWSD:-.venv/bin/kwsd}
echo "== keyword stream (held-out speakers, kitchen noise)"
$KWSD stream eval --model "$MODEL" "$@" "$EVAL/kw_test.wav"
echo "== every clip of the held-out speakers (the larger keyword stream; kw_test.wav holds 160 of its 335)"
$KWSD stream eval --model "$MODEL" "$@" "$EVAL/kw_test_all.wav"
echo "== real speech with no keyword (held-out recordings)"
$KWSD stream eval --model "$MODEL" "$@" "$EVAL"/neg_test_*.wav
# at 8 kHz, when bench/make_eval_sets.sh made them (models/README.md, "Narrowband audio")
for s in kw_test_8k bl_test8; do
  [ -f "$EVAL/$s.wav" ] || continue
  echo "== $s: at 8 kHz, as a narrowband microphone gives it (kw_test_8k: the keyword stream; bl_test8: telephone speech)"
  $KWSD stream eval --model "$MODEL" "$@" "$EVAL/$s.wav"
done
