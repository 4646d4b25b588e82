#!/usr/bin/env bash
# The main job, offline: set up, then build the demo workspace from the bundled Quechua corpus,
# train the offline model briefly, evaluate and print WER/CER.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
exec .venv/bin/workbench demo "$@"
