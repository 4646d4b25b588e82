#!/usr/bin/env bash
# Reference ARPA files for tests/workbench/lm/test_ngram.py, written by KenLM's own lmplz:
# the independent implementation that workbench/lm/ngram.py is checked against. Not part of
# set-up or CI (lmplz needs a C++ build with Boost); run it once when the sample text or the
# reference orders change, and commit tests/data/lm/.
#   apt-get install cmake g++ libboost-program-options-dev libboost-system-dev \
#       libboost-thread-dev libboost-test-dev zlib1g-dev
#   bash scripts/lmplz_reference.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-/tmp/kenlm-build}
mkdir -p "$build"
if [ ! -x "$build/bin/lmplz" ]; then  # about 15 minutes on 2 busy cores
  (cd "$build" && pip download --no-deps --no-binary :all: kenlm==0.3.0 -d . >/dev/null \
     && tar xzf kenlm-0.3.0.tar.gz && cmake -S kenlm-0.3.0 -B . -DCMAKE_BUILD_TYPE=Release >/dev/null \
     && make -j2 lmplz >/dev/null)
fi
data=tests/data/lm
.venv/bin/python -m tests.workbench.lm.sample_text > "$data/sample.txt"
# Each .log keeps lmplz's "Statistics" lines: its discounts per order.
lmplz() { "$build/bin/lmplz" "$@" 2> >(grep -E '^[0-9]+ [0-9]+ D1=' > "$log"); }
log=$data/sample.o3.log lmplz -o 3 --discount_fallback < "$data/sample.txt" > "$data/sample.o3.arpa"
log=$data/sample.o4.log lmplz -o 4 --discount_fallback < "$data/sample.txt" > "$data/sample.o4.arpa"
# Character 5-gram over the same text: letters separated by spaces, "|" between words.
sed -e 's/ /|/g' -e 's/./& /g' -e 's/ $//' "$data/sample.txt" > /tmp/sample.chars.txt
log=$data/sample.chars.o5.log lmplz -o 5 --discount_fallback < /tmp/sample.chars.txt \
  > "$data/sample.chars.o5.arpa"
sleep 1  # the log writers run in the background
