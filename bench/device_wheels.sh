#!/usr/bin/env bash
# Wheels that bench/gpu_throughput.py needs on the lent GPU machine (tool `device`) beyond
# what its image holds (torch, accelerate, numpy, ... : /work/.library/device/KINDS.md), for
# its Python 3.12 on x86-64; the machine reaches no package registry, so they travel with
# the working tree (`carry: [".whl"]`, under 64 MiB). The versions are this venv's, so
# the device runs the code the tests ran. Usage, in the repo's root:
#   bash bench/device_wheels.sh           # fills .whl/ (ignored through .git/info/exclude)
# then, in the device's command:
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
#     --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
grep -qxF "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
rm -rf .whl && mkdir -p .whl
# Imported by the training step's modules and not in the image, or newer here than there
# (transformers 5.17 and huggingface_hub 1.33 there).
NAMES="transformers huggingface_hub httpx2 httpcore2 truststore kernels tokenizers accelerate
       soundfile cffi pycparser soxr jiwer rapidfuzz click defusedxml dill brotli"
specs=()
for name in $NAMES; do
  version=$("$PY" -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')
  [ -n "$version" ] || { echo "$name is not installed here: run scripts/setup.sh" >&2; exit 1; }
  specs+=("$name==$version")
done
platforms=()
for n in 17 24 27 28 31 34 35; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp "${platforms[@]}" --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 -d .whl "${specs[@]}"
du -sh .whl
