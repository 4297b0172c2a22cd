# Sourced by the training and evaluation scripts (needs DATA): speech_commands_extra is flat
# (<word>_<speaker>_nohash_<n>.wav); runs/extra gives it a folder per word, as --data-dir expects.
# Both need it: the evaluation streams draw their validation and test speakers from it too.
mkdir -p runs/extra
for f in "$DATA"/speech_commands_extra/toy_dataset/*/*.wav; do
  b=$(basename "$f"); w=${b%%_*}; mkdir -p "runs/extra/$w"
  ln -sf "$(realpath "$f")" "runs/extra/$w/${b#*_}"
done
