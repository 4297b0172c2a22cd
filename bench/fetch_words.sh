#!/bin/sh
# Fetch real single spoken words for two validation streams (bench/make_eval_sets.sh): the object
# names that Debian's ktuberling-data speaks in 22 languages (1,847 clips, 47 min as a stream with
# half-second gaps; one or a few voices per language; GPL-2+, see its copyright file). Single short
# words are what the models confuse with a keyword (most false accepts on the held-out speech are
# wake words and near-miss words), and the other validation audio holds few of them. Half of the
# languages choose between tuned models (neg_val_words.wav), the other half are tuning negatives of
# the strict settings (neg_val_words_tune.wav); never used for training. None of the words is an
# English keyword (the file names are the English object names: ball, coat, eye, ...).
#   sh bench/fetch_words.sh [OUT_DIR]     (default runs/words)
set -eu
OUT=${1:-runs/words}
[ -d "$OUT/sounds" ] && { echo "$OUT/sounds already there"; exit 0; }
TMP=$(mktemp -d); chmod 755 "$TMP"; trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && apt-get download -q ktuberling-data >/dev/null 2>&1) || { echo "cannot download ktuberling-data (apt-get update first?)" >&2; exit 1; }
dpkg-deb -x "$TMP"/ktuberling-data_*.deb "$TMP/x"
mkdir -p "$OUT/sounds"
cp "$TMP/x/usr/share/doc/ktuberling-data/copyright" "$OUT/copyright"
dpkg-deb -f "$TMP"/ktuberling-data_*.deb Version > "$OUT/VERSION"
# sr@ijekavian, sr@latin, ... hold the same 15 clips as sr: keep one copy
for d in "$TMP"/x/usr/share/ktuberling/sounds/*/; do
  case "$d" in *@*/) continue ;; esac
  cp -r "$d" "$OUT/sounds/"
done
echo "wrote $(find "$OUT/sounds" -type f | wc -l) clips to $OUT/sounds"
