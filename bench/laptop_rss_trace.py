"""Where a laptop-mode run's memory goes: RSS over time beside the run's own events.

Runs ``workbench train --mode top`` in a fresh process on a copy of the demo workspace (no
earlier cache, so the cache is built) and samples the process's resident memory every
``--every`` seconds; prints the peak and a line every few seconds, with the run's events
(cache built, start, first steps, dev evaluations, end) where they happened.

    python bench/laptop_rss_trace.py --arch xls-r-300m --steps 20 --eval-every 10
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.train_memory import ARCHS, demo_workspace, random_model_dir  # noqa: E402


def rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            line = next(x for x in status if x.startswith("VmRSS"))
    except (OSError, StopIteration):
        return None
    return int(line.split()[1]) / 1024


def trace(command: list[str], every: float) -> tuple[list[tuple[float, float]], float, int]:
    """Samples (seconds since start, RSS MiB), the start time, the exit status."""
    started = time.time()
    child = subprocess.Popen(command, env=dict(os.environ, HF_HUB_OFFLINE="1"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = []
    while child.poll() is None:
        rss = rss_mib(child.pid)
        if rss is not None:
            samples.append((time.time() - started, rss))
        time.sleep(every)
    return samples, started, child.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=tuple(ARCHS), default="xls-r-300m")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--batch-seconds", type=float, default=16.0)
    parser.add_argument("--every", type=float, default=0.3, help="seconds between samples")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = random_model_dir(args.arch)
    with tempfile.TemporaryDirectory(prefix="rss-trace-") as tmp:
        ws = Path(tmp) / "ws"
        shutil.copytree(demo_workspace(), ws, ignore=shutil.ignore_patterns("runs", "cache"))
        command = [sys.executable, "-m", "workbench.cli", "train", "-w", str(ws), "--model",
                   str(model), "--mode", "top", "--max-steps", str(args.steps),
                   f"run.eval_every={args.eval_every}", f"run.threads={args.threads}",
                   f"data.max_batch_seconds={args.batch_seconds}", "--quiet"]
        samples, started, code = trace(command, args.every)
        if code != 0 or not samples:
            raise SystemExit(f"the run failed (exit {code})")
        [metrics] = ws.glob("runs/*/metrics.jsonl")
        events = [json.loads(line) for line in metrics.read_text().splitlines()]
    marks = sorted((r["time"] - started, f"{r['event']} {r.get('step', '')}".strip())
                   for r in events if r["event"] != "train" or r["step"] in (1, 2))
    peak = max(samples, key=lambda s: s[1])
    print(f"{args.arch}, top mode, {args.steps} steps, dev evaluation every {args.eval_every}: "
          f"peak RSS {peak[1]:.0f} MiB at {peak[0]:.1f} s")
    shown = -1e9
    for seconds, rss in samples:
        while marks and marks[0][0] <= seconds:
            print(f"        --- {marks[0][1]} at {marks[0][0]:.1f} s")
            marks.pop(0)
        if seconds - shown >= 4:
            print(f"{seconds:7.1f} s {rss:7.0f} MiB")
            shown = seconds


if __name__ == "__main__":
    main()
