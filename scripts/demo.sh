#!/usr/bin/env bash
# The main job, offline: set up, then build the demo workspace from the bundled Quechua corpus,
# fine-tune the bundled demo-base model, evaluate and print WER/CER; then open the browser
# workbench on the demo workspace (http://127.0.0.1:7860, Ctrl+C to stop).
#   bash scripts/demo.sh [-w DIR] [--max-steps N] [--no-ui]
set -euo pipefail
cd "$(dirname "$0")/.."
open_ui=1
workspace=demo_workspace
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-ui) open_ui=0 ;;
    -w|--workspace) workspace=$2; args+=("$1" "$2"); shift ;;
    *) args+=("$1") ;;
  esac
  shift
done
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 GRADIO_ANALYTICS_ENABLED=False
.venv/bin/workbench demo -w "$workspace" "${args[@]}"
if [ "$open_ui" = 1 ]; then
  echo "Opening the browser workbench on $workspace: http://127.0.0.1:7860 (Ctrl+C to stop)"
  exec .venv/bin/workbench ui -w "$workspace"
fi
