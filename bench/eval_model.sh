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
