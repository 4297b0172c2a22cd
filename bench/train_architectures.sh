#!/bin/sh
# Train every architecture the same way on the shared Speech Commands copy, plus DS-CNN with
# synthetic espeak-ng speech added to training, then print the comparison table.
#   sh bench/train_architectures.sh [DATA_DIR] [STEPS]     (defaults: ../shared/data 4000,1000)
# Needs the [train] extra (and espeak-ng for the synthetic run). Outputs go to runs/ (ignored by git).
set -e
DATA=${1:-../shared/data}
STEPS=${2:-4000,1000}
KWSD=${KWSD:-.venv/bin/kwsd}
PYTHON=${PYTHON:-.venv/bin/python}
common="--data-dir $DATA/speech_commands_v0.02_test \
  --background-dir $DATA/speech_commands_background_noise/_background_noise_ --split-salt kwsd \
  --spec-augment --how-many-training-steps $STEPS --learning-rate 0.001,0.0001 \
  --eval-step-interval 1000 --save-step-interval 1000"
[ -d runs/tts_data ] || $PYTHON -m kwsd.train.tts --out runs/tts_data --per-word 150 --unknown-per-word 20
[ -f runs/ds_cnn/report.json ] || $KWSD train $common --model-architecture ds_cnn --out runs/ds_cnn
[ -f runs/ds_cnn_tts/report.json ] || $KWSD train $common --model-architecture ds_cnn \
  --extra-training-dir runs/tts_data --out runs/ds_cnn_tts
for arch in tiny_conv low_latency_conv tc_resnet8 conv; do
  [ -f runs/$arch/report.json ] || $KWSD train $common --model-architecture $arch --out runs/$arch
done
$PYTHON bench/arch_table.py runs/*/report.json
