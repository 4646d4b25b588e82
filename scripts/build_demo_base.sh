#!/usr/bin/env bash
# Rebuild the bundled demo-base checkpoint (workbench/assets/demo-base) from nothing:
# a synthetic multilingual corpus made with espeak-ng, then the workbench's own `train`
# from random initialisation (stage 1, about 55 minutes on 2 CPU cores), then a broader,
# augmented continuation (stage 2, about 90 more minutes). The bundled model is stage 2.
#   bash scripts/build_demo_base.sh [WORKDIR] [--stage1-only]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/demo-base-build}
only=${2:-}
bash scripts/setup.sh --test          # needs espeak-ng
export HF_HUB_OFFLINE=1
mkdir -p "$work"
latest_run() { ls -d "$1"/runs/* | tail -n 1; }

# Stage 1: 18 Latin-script languages x 8 minutes, 12 espeak voices, from random weights.
# The bundled checkpoint is the model at step 2500 of this 5000-step schedule (53 minutes on
# 2 cores; dev CER 0.52, 0.39, 0.32, 0.29 at steps 1000-2500).
.venv/bin/python -c "
from pathlib import Path
from data_recipes.synthetic import generate_multilingual_corpus
stage1 = 'ca cs de eo es et eu fi hr hu id it nl pl pt ro sw tr'.split()
generate_multilingual_corpus(Path('$work/corpus1'), languages=stage1,
                             minutes_per_language=8.0, seed=1)
"
.venv/bin/workbench prepare "$work/corpus1" -w "$work/ws1" --seed 0
.venv/bin/workbench vocab -w "$work/ws1"
.venv/bin/workbench train -w "$work/ws1" --model small --max-steps 5000 \
  data.max_batch_seconds=20 optim.learning_rate=5e-4 optim.warmup_fraction=0.08 \
  run.eval_every=500 run.log_every=50 run.threads=2 run.stop_at_step=2500
.venv/bin/python -m workbench.base_export "$(latest_run "$work/ws1")" "$work/stage1"
if [ "$only" = "--stage1-only" ]; then cp "$work"/stage1/* workbench/assets/demo-base/; exit 0; fi

# Stage 2: every pretraining language (the 18 above, the same utterances, plus Vietnamese,
# Setswana, Tamil, Bengali and Arabic), continued from stage 1 with a fresh CTC head, the
# feature encoder trained, waveform augmentation (speed, reverberation, band-limiting, noise;
# each with probability 0.3) and a full 6000-step schedule (about 90 minutes on 2 cores).
# Fine-tuning figures of the bundled model: bench/RESULTS.md and scripts/demo_base_figures.md.
.venv/bin/python -c "
from pathlib import Path
from data_recipes.synthetic import generate_multilingual_corpus
generate_multilingual_corpus(Path('$work/corpus2'), minutes_per_language=8.0, seed=1)
"
.venv/bin/workbench prepare "$work/corpus2" -w "$work/ws2" --seed 0
.venv/bin/workbench vocab -w "$work/ws2"
.venv/bin/workbench train -w "$work/ws2" --model "$work/stage1" --max-steps 6000 \
  model.freeze_feature_encoder=false model.layerdrop=0.0 model.mask_time_prob=0.05 \
  data.max_batch_seconds=20 data.augment=0.3 optim.learning_rate=5e-4 \
  optim.warmup_fraction=0.05 run.eval_every=1000 run.log_every=50 run.threads=2
.venv/bin/python -m workbench.base_export "$(latest_run "$work/ws2")" "$work/stage2" \
  --figures scripts/demo_base_figures.md
cp "$work"/stage2/* workbench/assets/demo-base/
