"""How much of a difference in `bench/untranscribed.py` is the fine-tune's own seed?

Fine-tunes demo-base and each pretrained base of a workspace kept by `bench/untranscribed.py
--keep DIR` again with other seeds (``run.seed``: data order, head initialisation), with the
bench's own settings and scoring, and prints each run's held-out and demo test CER with the
mean and range per base. A change smaller than the spread between seeds of one base is not
evidence that a method helped.

    python bench/untranscribed.py --keep /tmp/ub                      # first, once
    python bench/untranscribed_seeds.py --keep /tmp/ub --seeds 1 2    # then
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.finetune_curve import new_voice_set  # noqa: E402
from bench.procstats import machine_line  # noqa: E402
from bench.untranscribed import HELD_OUT_VOICES, finetune, scored  # noqa: E402
from workbench.workspace import Workspace  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, required=True,
                        help="the folder `bench/untranscribed.py --keep` worked in")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--held-out-minutes", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    ws = Workspace(args.keep / "demo" / "ws")
    bases = ["demo-base", *sorted(str(p) for p in (ws.root / "bases").iterdir())]
    print(machine_line(), flush=True)
    with tempfile.TemporaryDirectory() as scratch:  # the same held-out set, made again
        held_out = new_voice_set(Path(scratch), "qu-demo", HELD_OUT_VOICES,
                                 args.held_out_minutes, 0, ws)
        results: dict[str, list[dict]] = {}
        for seed in args.seeds:
            for base in bases:
                row = scored(ws, finetune(ws, base, 0, args.threads, [f"run.seed={seed}"]),
                             held_out)
                results.setdefault(Path(base).name, []).append({**row, "seed": seed})
                print(f"seed {seed} {Path(base).name}: held-out {row['held_out_cer']:.4f}, "
                      f"demo test {row['test_cer']:.4f}, {row['seconds']:.0f} s", flush=True)
    print("\n| base | seeds | held-out CER, each | mean | range | demo test CER, mean |\n"
          "|---|---|---|---|---|---|")
    for name, rows in results.items():
        held = [r["held_out_cer"] for r in rows]
        print(f"| {name} | {', '.join(str(r['seed']) for r in rows)} | "
              f"{', '.join(f'{h:.4f}' for h in held)} | {statistics.mean(held):.4f} | "
              f"{min(held):.4f}-{max(held):.4f} | "
              f"{statistics.mean(r['test_cer'] for r in rows):.4f} |")


if __name__ == "__main__":
    main()
