#!/usr/bin/env bash
# Set up everything the workbench needs on a fresh Debian machine (idempotent).
#   - a virtual environment in .venv with the CPU build of PyTorch and the workbench
#   - with --test: the dev tools and the system programs the tests use (ffmpeg, espeak-ng, and
#     Debian's chromium for the browser test, which Playwright drives: Playwright's own
#     browser downloads are never used, so never run `playwright install`)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test_tools=0
[ "${1:-}" = "--test" ] && want_test_tools=1

if [ "$want_test_tools" = 1 ]; then
  missing=()
  command -v ffmpeg >/dev/null || missing+=(ffmpeg)
  command -v espeak-ng >/dev/null || missing+=(espeak-ng)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "Installing ${missing[*]} (Debian packages)..."
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "warning: ${missing[*]} not installed; tests that need them will be skipped" \
        "(the browser test fails without chromium when CI is set)." >&2
    fi
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
# The CPU build of PyTorch first: left to a dependency resolver, a bare `torch` may pull a
# multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
extras=""
[ "$want_test_tools" = 1 ] && extras="[dev]"
.venv/bin/python -m pip install -q -e ".${extras}" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import workbench, torch, transformers" >/dev/null
