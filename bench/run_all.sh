#!/usr/bin/env bash
# Every benchmark in bench/, one after another, into one log: the figures of each table of
# bench/RESULTS.md from one run. Run it on an otherwise idle machine (nothing else training,
# load average near 0), from any folder:
#
#   bash bench/run_all.sh [LOG]        # the full run: about 90 minutes on 2 cores (see below)
#   bash bench/run_all.sh --smoke [LOG]   # every script on tiny settings (a check, not figures)
#
# LOG defaults to /tmp/workbench-bench/run_all-<UTC time>.log. A step that fails is logged
# with its exit status and the run goes on; the summary at the end lists every step's status
# and minutes. Set EXTRA=1 to add the CER curve on a corpus whose every voice is outside
# demo-base's pretraining voices (about 22 minutes more).
#
# Expected minutes on 2 x86_64 cores (AVX2), idle, from the last figures of each script:
#   mixed corpora (first run only; kept in /tmp/workbench-bench)    1 h: 2,  10 h: 15-20
#   1 prepare_speed --repeat 2                                      3
#   2 prepare_speed --hours 10 --skip-ui                            2
#   3 input_pipeline (padding + throughput, 45 steps, 2 rounds)     4
#   4 input_pipeline padding on the 1 h corpus                      1
#   5 transcribe_speed (fine-tunes demo-base ~5, ONNX, XLS-R)       20 (25 the first time:
#                                                                   XLS-R export, 5.5 GB RAM)
#   6 train_memory --steps 3                                        14 (needs ~7 GB RAM)
#   7 train_memory --steps 3 --long-clips                           14
#   8 finetune_curve --minutes 10                                   23
#   9 transcribe_memory --hours 2 (builds the recording once)        12
#   total                                                           about 85-90 (105-115 with
#                                                                   the 10 h corpus to build)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}

smoke=0
if [ "${1:-}" = "--smoke" ]; then smoke=1; shift; fi
DATA=${BENCH_DATA:-/tmp/workbench-bench}
mkdir -p "$DATA"
LOG=${1:-$DATA/run_all-$(date -u +%Y%m%d-%H%M%S)$([ $smoke = 1 ] && echo -smoke).log}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export TRANSFORMERS_VERBOSITY=error  # model-load reports only clutter the log

summary=()
log() { echo "$@" | tee -a "$LOG"; }

step() {  # step NAME COMMAND...: run, log output, exit status and minutes
  local name=$1; shift
  log ""
  log "================================================================================"
  log "== $name"
  log "== \$ $*"
  log "== started $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  log "================================================================================"
  local start=$SECONDS
  "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  local minutes
  minutes=$(awk "BEGIN {printf \"%.1f\", ($SECONDS - $start) / 60}")
  log "== $name: exit $rc after $minutes min"
  summary+=("$(printf '%-58s exit %3s  %6s min' "$name" "$rc" "$minutes")")
}

preflight() {  # what the reference side and the corpora need; stop early, not after an hour
  local missing=()
  "$PY" -c "import torchcodec, datasets, psutil" 2>/dev/null \
    || missing+=("torchcodec/datasets/psutil: .venv/bin/pip install -e '.[bench]'")
  for tool in sox ffmpeg espeak-ng; do
    command -v $tool >/dev/null || missing+=("$tool: apt-get install $tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    printf 'missing: %s\n' "${missing[@]}" | tee -a "$LOG" >&2
    exit 1
  fi
}

preflight
log "# bench/run_all.sh$([ $smoke = 1 ] && echo ' --smoke'), $(date -u +%FT%TZ)"
log "commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
log "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) usable cores," \
    "$(awk '/MemTotal/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo)," \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
log "$("$PY" -c 'import sys, torch, transformers, datasets, onnxruntime as o
print(f"Python {sys.version.split()[0]}, torch {torch.__version__}, transformers "
      f"{transformers.__version__}, datasets {datasets.__version__}, onnxruntime {o.__version__}")')"
log "log: $LOG"

if [ $smoke = 1 ]; then
  S=$DATA/smoke
  rm -rf "$S"
  mkdir -p "$S"
  step "mixed corpus, 29 clips" "$PY" bench/mixed_corpus.py --hours 0.02 --out "$S/mixed"
  step "prepare_speed (tiny corpus)" "$PY" bench/prepare_speed.py --corpus "$S/mixed" --skip-ui
  step "input_pipeline (17 steps, 1 round)" "$PY" bench/input_pipeline.py --seeds 1 --epochs 1 \
    --steps 17 --rounds 1
  step "transcribe_speed (5 training steps, 12 clips)" "$PY" bench/transcribe_speed.py \
    --train-steps 5 --clips 12 --skip-onnx
  step "train_memory (tiny model, 2 steps)" "$PY" bench/train_memory.py --arch tiny --steps 2
  step "finetune_curve (0.2 min, demo-base)" "$PY" bench/finetune_curve.py --minutes 0.2 \
    --eval-every 5 --new-voices-minutes 0.3 --models demo-base
else
  step "mixed corpus 1 h (made once, not a benchmark)" "$PY" bench/mixed_corpus.py --hours 1 \
    --out "$DATA/mixed_1h"
  step "mixed corpus 10 h (made once, not a benchmark)" "$PY" bench/mixed_corpus.py --hours 10 \
    --out "$DATA/mixed_10h"
  step "1 preparation: reference vs workbench, 1 h" "$PY" bench/prepare_speed.py --repeat 2 \
    --data-root "$DATA"
  step "2 preparation: workbench 1 h vs 10 h" "$PY" bench/prepare_speed.py --hours 10 --skip-ui \
    --data-root "$DATA"
  step "3 training input pipeline: padding and throughput" "$PY" bench/input_pipeline.py
  step "4 padding on the 1 h corpus" "$PY" bench/input_pipeline.py padding \
    --corpus "$DATA/mixed_1h"
  step "5 transcription (demo-base fine-tuned here, ONNX, XLS-R)" "$PY" \
    bench/transcribe_speed.py --repeat 2 --xlsr --xlsr-seconds 60
  step "6 memory: XLS-R-300M, short clips" "$PY" bench/train_memory.py --steps 3
  step "7 memory: XLS-R-300M, 16 s clips" "$PY" bench/train_memory.py --steps 3 --long-clips
  step "8 CER against time, demo corpus + new voices" "$PY" bench/finetune_curve.py \
    --minutes 10 --eval-every 50
  step "9 memory: transcribing a 2-hour recording" "$PY" bench/transcribe_memory.py --hours 2
  if [ "${EXTRA:-0}" = 1 ]; then
    step "9 CER against time, every voice outside pretraining" "$PY" bench/finetune_curve.py \
      --language qu --corpus-voices m6,m8,f5,klatt2,klatt3,klatt5,Annie,benjamin,linda,Andy \
      --new-voices david,steph,klatt6,Gene --minutes 10 --eval-every 50
  fi
fi

log ""
log "# summary ($(date -u +%FT%TZ), $(awk "BEGIN {printf \"%.0f\", $SECONDS / 60}") min in all)"
for line in "${summary[@]}"; do log "$line"; done
log "log: $LOG"
