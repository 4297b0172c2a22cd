# Sourced by the training and evaluation scripts (needs DATA): speech_commands_extra is flat
# (<word>_<speaker>_nohash_<n>.wav); runs/extra gives it a folder per word, as --data-dir expects.
# Both need it: the evaluation streams draw their validation and test speakers from it too.
# KW_DATA: the Speech Commands folder to draw keywords from (default: the shared data's copy of its
# test set). Point it at the whole v0.02 dataset (`kwsd train --data-url` fetches it where there is a
# network) to train and evaluate on all its speakers: models/README.md, "Where the targets stand".
# Use the same KW_DATA for training and for the evaluation streams, so that the speaker split agrees.
# The whole dataset already holds the clips of speech_commands_extra: runs/extra only joins the copy.
KW_DIRS=${KW_DATA:-"$DATA/speech_commands_v0.02_test,runs/extra"}
mkdir -p runs/extra
for f in "$DATA"/speech_commands_extra/toy_dataset/*/*.wav; do
  b=$(basename "$f"); w=${b%%_*}; mkdir -p "runs/extra/$w"
  ln -sf "$(realpath "$f")" "runs/extra/$w/${b#*_}"
done
