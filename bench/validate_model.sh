#!/bin/sh
# The validation figures that choose between tuned models (models/README.md, "What each training
# change bought"): false accepts on the validation audio that the tuning never sees, and the demo.
#   [SHORT_WORDS="A.wav B.wav"] sh bench/validate_model.sh MODEL.tflite [EVAL_DIR]
# neg_val_extra.wav: the 'testing' split of the Debian training sources; neg_val_tts.wav: synthetic
# held-out words; neg_val_words.wav: real single words in 11 languages (bench/fetch_words.sh).
# The demo is also run turned down 12, 20 and 26 dB (sox): a model must still find its four words
# in a quiet voice (the shipped model does at each level; models/README.md); then at 16 phases of
# the stride; last, the tuning keyword stream at 0, -6, -12 and -20 dB. `sox -D`: no dither, so
# each run hears the same samples (sox's default dither is random, and on a word near its
# threshold that alone changed the answer).
set -eu
MODEL=$1
EVAL=${2:-runs/eval}
KWSD=${KWSD:-.venv/bin/kwsd}
for s in neg_val_extra neg_val_tts neg_val_words; do
  printf '%s: ' "$s"
  $KWSD stream eval --model "$MODEL" "$EVAL/$s.wav" | head -1
done
demo() {
  $KWSD run --model "$MODEL" --input "$1" --json 2>/dev/null | \
    sed -n 's/.*"keyword": "\([a-z]*\)".*/\1/p' | tr '\n' ' '
  echo
}
printf 'demo (models/sample.wav: yes, stop, stop, go): '
demo models/sample.wav
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for db in 12 20 26; do
  sox -D models/sample.wav "$TMP/quiet.wav" vol "-${db}dB"
  printf 'demo turned down %s dB: ' "$db"
  demo "$TMP/quiet.wav"
done
# The demo with its strides at 16 phases of the audio (0-75 ms of silence put before it, 5 ms
# apart), as a live microphone falls by chance: a word that sits at its threshold is heard at
# some phases only (models/README.md, "A second stage": the demo's "yes").
whole=0
for ms in 0 5 10 15 20 25 30 35 40 45 50 55 60 65 70 75; do
  sox -D models/sample.wav "$TMP/shifted.wav" pad "$(printf '0.%03d' "$ms")"
  [ "$(demo "$TMP/shifted.wav")" = "yes stop stop go " ] && whole=$((whole + 1))
done
echo "demo at 16 stride phases: whole at $whole of 16"
# A keyword stream at its own level and turned down 6, 12 and 20 dB, noise and all (first the
# tuning stream): how many more words a quiet voice loses (models/README.md, "Quiet speech"); the
# adoption rules average the misses over these four levels.
levels() {
  cp "$EVAL/$1.txt" "$TMP/$1.txt"
  for db in 0 6 12 20; do
    sox -D "$EVAL/$1.wav" "$TMP/$1.wav" vol "-${db}dB"
    printf '%s turned down %s dB: ' "$1" "$db"
    $KWSD stream eval --model "$MODEL" "$TMP/$1.wav" | head -1
  done
}
levels kw_val
# The validation speakers' other clips (kw_val_rest.wav, 522 keywords), which no tuning uses, at the
# same levels: since session 46 the misses that the adoption rules compare (kw_val's own misses
# are those of the audio the settings were chosen on; models/README.md, "Validation that the
# tuning never heard")
levels kw_val_rest
# At 8 kHz (bench/make_eval_sets.sh makes them): the same held-out keywords and held-out telephone
# speech as a narrowband microphone gives them (models/README.md, "Narrowband audio")
for s in kw_val_rest_8k bl_val8; do
  [ -f "$EVAL/$s.wav" ] || continue
  # the figures after the name, kwsd's warning (audio below the model's rate) on a line of its own
  printf '%s: %s\n' "$s" "$($KWSD stream eval --model "$MODEL" "$EVAL/$s.wav" | head -1)"
done
# SHORT_WORDS: more streams without keywords, each measured the same way: the single short words
# that the rules since session 42 count (models/README.md, "Single short words"):
#   SHORT_WORDS="$EVAL/neg_val_words_tune.wav runs/stamps.wav runs/stamps_other.wav"
# (the stamp streams: bench/fetch_stamps.sh, then `kwsd stream make --negative-dir runs/stamps --set all
# --duration-s 0 --out runs/stamps.wav`; `kwsd stream eval` on one of them names the keywords)
for s in ${SHORT_WORDS:-}; do
  printf '%s: ' "$(basename "$s" .wav)"
  $KWSD stream eval --model "$MODEL" "$s" | head -1
done
