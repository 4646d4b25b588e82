"""Language-model benchmarks for issue 13: building n-gram models, and decoding with them.

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

Decode: a trained run's test split, logits computed once, then greedy and beam search with an
LM of the workspace at several beam widths, single-threaded like the acoustic model's share of
the comparison: WER, CER and the decoding time per second of audio (real-time factor added on
top of the acoustic model, whose own RTF is printed beside it).

    python bench/lm_decode.py decode -w WS --lm NAME [--run RUN] [--beams 1,10,50,100]
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


def decode(args: argparse.Namespace) -> None:
    import time

    import torch

    from workbench.audio import load_audio
    from workbench.decode import greedy_decode, log_softmax
    from workbench.evaluate import error_rates, scoring_set
    from workbench.lm.beam import BeamSettings
    from workbench.lm.store import find_lm, load_decoder, read_info
    from workbench.recognizer import clip_logits, load_recognizer
    from workbench.run import find_run
    from workbench.text import load_profile, normalize
    from workbench.workspace import Workspace

    torch.set_num_threads(args.threads)
    ws = Workspace.at(args.workspace)
    run = find_run(ws, args.run, with_model=True)
    recognizer = load_recognizer(run.model_dir)
    test = scoring_set(ws, "test")
    profile = load_profile(ws.profile_path)
    refs = [normalize(u.text, profile) for u in test.utterances]
    arrays = [load_audio(ws.audio_path(u)) for u in test.utterances]
    seconds = sum(len(a) for a in arrays) / 16_000
    started = time.perf_counter()
    logits = clip_logits(recognizer, arrays)
    acoustic = time.perf_counter() - started
    folder = find_lm(ws, args.lm)
    info = read_info(folder)
    tuned = (info.get("tuned") or {}).get("settings", info["decoding"])
    print(f"run {run.name}, {len(arrays)} test clips, {seconds:.0f} s of audio; LM {info['name']} "
          f"({info['unit']} {info['order']}-gram), alpha {tuned['alpha']}, beta {tuned['beta']}; "
          f"{args.threads} thread(s); acoustic model RTF {acoustic / seconds:.4f}")
    print(f"{'decoder':16s} {'WER':>7s} {'CER':>7s} {'decode s':>9s} {'added RTF':>10s}")
    started = time.perf_counter()
    texts = [greedy_decode(x, recognizer.tokenizer)[0] for x in logits]
    _row("greedy", error_rates(refs, texts), time.perf_counter() - started, seconds)
    log_probs = [log_softmax(x) for x in logits]
    for beam in [int(b) for b in args.beams.split(",")]:
        decoder = load_decoder(folder, recognizer.tokenizer,
                               BeamSettings(alpha=tuned["alpha"], beta=tuned["beta"], beam=beam))
        started = time.perf_counter()
        texts = [decoder.decode(x) for x in log_probs]
        _row(f"LM, beam {beam}", error_rates(refs, texts), time.perf_counter() - started,
             seconds)


def _row(name: str, rates: dict, elapsed: float, seconds: float) -> None:
    print(f"{name:16s} {rates['wer']:7.3f} {rates['cer']:7.3f} {elapsed:9.2f} "
          f"{elapsed / seconds:10.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)
    p = sub.add_parser("build", help="n-gram estimation speed and memory")
    p.add_argument("--words", type=int, default=1_000_000)
    p.add_argument("--order", type=int, default=4)
    p.add_argument("--lmplz", help="path of a KenLM lmplz binary, for a reference row")
    p = sub.add_parser("decode", help="greedy against LM decoding: error rates and speed")
    p.add_argument("-w", "--workspace", required=True)
    p.add_argument("--lm", default="default")
    p.add_argument("--run")
    p.add_argument("--beams", default="1,10,50,100")
    p.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    build(args) if args.part == "build" else decode(args)


if __name__ == "__main__":
    main()
