#!/bin/sh
# Fetch real short spoken names for training negatives: Tux Paint's stamps (Debian's
# tuxpaint-stamps-default, GPL-2; see its copyright file) come with a recording of each stamp's name
# or a short phrase about it ("frog", "adelaide rosella"), 1.9 s on average, in a dozen languages.
# Single short words are what the models take for a keyword (most false accepts on the held-out
# speech are wake words and near-miss words), and the training negatives are mostly sentences.
# Kept: Belarusian, Bulgarian, Catalan, Romanian, Malayalam, Brazilian Portuguese and the English
# names (animals), leaving out stamps named after a keyword (the stop sign). Left out: the languages of the validation words
# (neg_val_words.wav: da, el, es, fr, lt, nl, ru), whose speakers might be the same volunteers.
# Written as 16 kHz mono WAV, one folder per language. Not shipped.
# STAMP_LANGS: the languages to keep instead (models/README.md used STAMP_LANGS="da el es fr lt nl ru"
# for a second stream of unseen short words).
#   sh bench/fetch_stamps.sh [OUT_DIR]     (default runs/stamps)
set -eu
OUT=${1:-runs/stamps}
LANGS=${STAMP_LANGS:-be bg ca ro ml pt_BR en}
[ -f "$OUT/VERSION" ] && { echo "$OUT already there"; exit 0; }
command -v sox >/dev/null || { echo "fetch_stamps.sh: needs sox (apt-get install sox libsox-fmt-all)" >&2; exit 1; }
TMP=$(mktemp -d); chmod 755 "$TMP"; trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && apt-get download -q tuxpaint-stamps-default >/dev/null 2>&1) || { echo "cannot download tuxpaint-stamps-default (apt-get update first?)" >&2; exit 1; }
dpkg-deb -x "$TMP"/tuxpaint-stamps-default_*.deb "$TMP/x"
mkdir -p "$OUT"
cp "$TMP/x/usr/share/doc/tuxpaint-stamps-default/copyright" "$OUT/copyright"
find "$TMP/x/usr/share/tuxpaint/stamps" -name '*_desc*' -type f | sort > "$TMP/list"
while read -r f; do
  name=$(basename "$f"); stem=${name%.*}
  case "$stem" in
    *_desc) lang=en ;;
    *_desc_*) lang=${stem##*_desc_} ;;
    *) continue ;;
  esac
  case " $LANGS " in *" $lang "*) ;; *) continue ;; esac
  # a stamp named after a keyword may say it in any language (the stop sign: "стоп", "stop")
  case "_${stem%%_desc*}_" in *_yes_*|*_no_*|*_up_*|*_down_*|*_left_*|*_right_*|*_on_*|*_off_*|*_stop_*|*_go_*) continue ;; esac
  # stamps in different folders share names (frog_desc_ca in two sets): keep the folder in the name
  rel=$(dirname "${f#"$TMP"/x/usr/share/tuxpaint/stamps/}" | tr '/' '-')
  mkdir -p "$OUT/$lang"
  # -D: no dither, so two fetches give the same samples (sox's dither is random)
  sox -D -q "$f" -r 16000 -c 1 -b 16 -e signed "$OUT/$lang/$rel-$stem.wav" 2>/dev/null || echo "skipped (sox could not read): $f" >&2
done < "$TMP/list"
dpkg-deb -f "$TMP"/tuxpaint-stamps-default_*.deb Version > "$OUT/VERSION"
echo "wrote $(find "$OUT" -name '*.wav' | wc -l) recordings to $OUT"
