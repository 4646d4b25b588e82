#!/usr/bin/env bash
# Set up everything the workbench needs on a fresh Debian machine (idempotent).
#   - a virtual environment in .venv with the CPU build of PyTorch and the workbench
#   - with --test: the dev tools and the system programs the tests use (ffmpeg, espeak-ng, and
#     Debian's chromium for the browser test, which Playwright drives: Playwright's own
#     browser downloads are never used, so never run `playwright install`). Tests that need a
#     missing program are skipped on a developer's machine but fail when CI is set, so under
#     CI this script stops here if it cannot install them.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test_tools=0
[ "${1:-}" = "--test" ] && want_test_tools=1

missing_test_tools() {  # Debian packages of the programs the tests run that are not here
  missing=()
  { command -v ffmpeg && command -v ffprobe; } >/dev/null || missing+=(ffmpeg)  # both in one
  command -v espeak-ng >/dev/null || missing+=(espeak-ng)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
}

if [ "$want_test_tools" = 1 ]; then
  missing_test_tools
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "Installing ${missing[*]} (Debian packages)..."
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
      missing_test_tools
      if [ "${#missing[@]}" -gt 0 ]; then
        echo "error: ${missing[*]} still missing after apt-get install." >&2
        exit 1
      fi
    elif [ -n "${CI+set}" ]; then
      echo "error: ${missing[*]} not installed and not root; the tests that need them fail" \
        "when CI is set. Run this script as root, or apt-get install ${missing[*]}." >&2
      exit 1
    else
      echo "warning: ${missing[*]} not installed; tests that need them will be skipped" \
        "(and fail when CI is set). As root: apt-get install ${missing[*]}." >&2
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
