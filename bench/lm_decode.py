"""Language-model benchmarks for issue 13 (building part; decoding parts still to come).

Build: a 4-gram from N words of text (default 1,000,000; the target is under 60 s and 1 GiB
peak RSS on 2 cores). Each side runs in a child process of its own, measured from outside
(``bench/procstats.py``: wall, CPU, peak RSS of the process tree), on the same text file:

- ``workbench``: ``workbench.lm.ngram.estimate`` + ``write_arpa`` (interpolated modified
  Kneser-Ney with <unk>), the same calls ``workbench lm build`` makes after normalisation;
- ``kaldingram`` (if installed: ``pip install kaldingram``): pure-Python backoff Kneser-Ney,
  one discount per order and no <unk>. It does less smoothing work, so the comparison favours it;
- ``lmplz`` (if ``--lmplz PATH`` is given: KenLM's C++ estimator, built as in
  ``scripts/lmplz_reference.sh``), the reference implementation.

    python bench/lm_decode.py build [--words 1000000] [--order 4] [--lmplz PATH]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.procstats import cores, run_child  # noqa: E402

SYLLABLES = ("ka ta pa ma na ri su wa yu lla chi qa ku mi hu ña rpa nku ypi sqa "
             "chu mu pi ti wi hi k'a t'i p'u q'a").split()
SUFFIXES = ["", "", "", "ta", "pi", "man", "manta", "kuna", "qa", "mi", "pas", "wan", "y", "n"]

WORKBENCH_CHILD = """
import sys, time
from workbench.lm.ngram import estimate, write_arpa
started = time.perf_counter()
def sentences():
    with open(sys.argv[1], encoding="utf-8") as f:
        for line in f:
            yield line.split()
model = estimate(sentences(), int(sys.argv[3]))
write_arpa(model, sys.argv[2])
print("ngrams", model.counts(), "in-process seconds", round(time.perf_counter() - started, 2))
"""


def make_text(path: Path, words: int, seed: int = 0) -> Path:
    """Sentences of Quechua-like words (stems x suffixes, Zipf-like), ``words`` in all."""
    rng = random.Random(seed)
    stems = sorted({"".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3)))
                    for _ in range(6000)})
    weights = [1 / (rank + 1) for rank in range(len(stems))]
    written = 0
    with open(path, "w", encoding="utf-8") as out:
        while written < words:
            n = rng.randint(3, 14)
            line = [s + rng.choice(SUFFIXES) for s in rng.choices(stems, weights, k=n)]
            out.write(" ".join(line) + "\n")
            written += n
    return path


def build(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="lm-bench-"))
    text = make_text(work / "text.txt", args.words)
    print(f"{args.words:,} words ({text.stat().st_size / 1e6:.1f} MB), order {args.order}, "
          f"{cores()} cores")
    rows = [run_child("workbench", [sys.executable, "-c", WORKBENCH_CHILD, str(text),
                                    str(work / "wb.arpa"), str(args.order)])]
    if shutil.which("kaldingram"):
        rows.append(run_child("kaldingram", ["kaldingram", "train", "--ngram-order",
                                             str(args.order), "--text", str(text), "--lm",
                                             str(work / "kg.arpa")]))
    else:
        print("kaldingram not installed: `pip install kaldingram` to compare with it")
    if args.lmplz:
        rows.append(run_child("lmplz", ["sh", "-c", f"{args.lmplz} -o {args.order} -S 1G "
                                        f"--discount_fallback < {text} > {work / 'kl.arpa'}"]))
    print(f"{'estimator':12s} {'wall s':>8s} {'CPU s':>8s} {'peak RSS MiB':>13s} {'ARPA MB':>8s}")
    files = {"workbench": "wb", "kaldingram": "kg", "lmplz": "kl"}
    for row in rows:
        arpa = work / f"{files[row.name]}.arpa"
        size = arpa.stat().st_size / 1e6 if arpa.exists() else 0.0
        print(f"{row.name:12s} {row.seconds:8.1f} {row.cpu_seconds:8.1f} "
              f"{row.peak_rss_mib:13.0f} {size:8.1f}")
    print(rows[0].stdout.strip())
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)
    p = sub.add_parser("build", help="n-gram estimation speed and memory")
    p.add_argument("--words", type=int, default=1_000_000)
    p.add_argument("--order", type=int, default=4)
    p.add_argument("--lmplz", help="path of a KenLM lmplz binary, for a reference row")
    args = parser.parse_args()
    build(args)


if __name__ == "__main__":
    main()
