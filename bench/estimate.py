"""The training estimate against the training it estimates: duration and peak memory.

For each model, ``workbench.estimate`` measures (a warm-up step, then ``--measure-steps``
timed steps, in a child process) and estimates a run of ``--steps`` steps; then the same run
is trained for real with ``workbench train`` in a fresh process, and both are printed side
by side with their ratio (target: within 0.7-1.3 for the duration). The trained run is the
estimated one: same settings, threads and data, one dev evaluation at its end
(``run.eval_every`` = its steps). Duration is the training loop's own ``elapsed_s`` (steps,
evaluation, checkpoint; not the model's loading, which the estimate does not cover), plus
laptop mode's cache building, which runs before the loop's clock starts; peak
memory is the training process's, polled from outside (``bench/procstats.py``).

Models: ``demo-base`` (bundled, 2.5M parameters; ``--steps 0``: its whole preset schedule)
and ``xls-r-300m`` (XLS-R 300M's architecture, random weights built here; a step takes
80-110 s on 2 cores at 16 s of audio, so measure 1 step and train 2-3). On the bundled
10-minute demo corpus.

    python bench/estimate.py --model demo-base --steps 0 --threads 2      # full run, ~15 min
    python bench/estimate.py --model xls-r-300m --steps 2 --measure-steps 1 --threads 2
    python bench/estimate.py --model demo-base --steps 20 --threads 2     # a quick check
    python bench/estimate.py --model xls-r-300m --mode top --steps 60 --measure-steps 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procstats import machine_line, others_busy_cores, run_child  # noqa: E402
from bench.train_memory import demo_workspace, random_model_dir  # noqa: E402

BATCH_SECONDS = {"demo-base": None, "xls-r-300m": 16.0}  # None: the model's preset


BUSY_LIMIT = 0.25  # cores other processes may keep busy on average for a valid row


def settings(model: str, mode: str, steps: int, threads: int) -> tuple[str, list[str]]:
    """(model argument, key=value overrides) of the run estimated and trained."""
    name = str(random_model_dir("xls-r-300m")) if model == "xls-r-300m" else model
    overrides = [f"run.threads={threads}", "run.device=cpu", f"model.mode={mode}"]
    if BATCH_SECONDS[model]:
        overrides.append(f"data.max_batch_seconds={BATCH_SECONDS[model]}")
    if steps:
        overrides += [f"optim.max_steps={steps}", f"run.eval_every={steps}"]
    return name, overrides


def estimated(ws: Path, name: str, overrides: list[str], measure_steps: int) -> dict:
    """Measure (uncached) and estimate, in this process (the measuring is a child)."""
    from workbench.config import build_config
    from workbench.estimate import estimate, measure, workload
    from workbench.workspace import Workspace

    workspace = Workspace(ws)
    minutes = sum(u.duration for u in workspace.read_split("train")) / 60
    config = build_config(preset="auto", train_minutes=minutes,
                          overrides=[f"model.name={name}", *overrides])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["WORKBENCH_CACHE"] = cache
        m = measure(workspace, config, steps=measure_steps, use_cache=False)
    seconds = time.perf_counter() - started
    work = workload(workspace, config)
    found = estimate(m, work, config.model.mode)
    return {"measure_s": seconds, "steps": found.steps, "seconds": found.seconds,
            "peak_mb": found.peak_mb, "step_s": found.step_s,
            "batch_seconds": work.batch_seconds, "measured_batch": m.batch_seconds}


def trained(ws: Path, name: str, overrides: list[str]) -> dict:
    """Train the run for real in a fresh process: its loop time and peak RSS. Laptop mode's
    cache of an earlier run is removed first: the estimate counts building it."""
    import shutil

    shutil.rmtree(ws / "cache" / "laptop", ignore_errors=True)
    child = run_child("train", [sys.executable, "-m", "workbench.cli", "train", "-w", str(ws),
                                "--model", name, "--json", "--quiet", *overrides],
                      env={"HF_HUB_OFFLINE": "1"})
    result = json.loads(child.stdout[child.stdout.index("{"):])
    # Laptop mode builds its cache before the loop's clock starts; the estimate includes it.
    metrics = Path(result["run_dir"]) / "metrics.jsonl"
    cache_s = sum(r["seconds"] for r in map(json.loads, metrics.read_text().splitlines())
                  if r["event"] == "cache")
    # The run was made for this comparison only: an XLS-R run with its checkpoint is several
    # gigabytes, which would pile up in the shared bench workspace.
    shutil.rmtree(result["run_dir"], ignore_errors=True)
    return {"seconds": result["elapsed_s"] + cache_s, "cache_s": cache_s,
            "steps": result["steps"],
            "peak_mb": child.peak_rss_mib, "wall_s": child.seconds,
            "cores_busy": child.cpu_seconds / child.seconds,
            "others_busy": others_busy_cores(child)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(BATCH_SECONDS), default="demo-base")
    parser.add_argument("--mode", choices=("full", "top"), default="full",
                        help="top: laptop mode, estimated from the full measurement")
    parser.add_argument("--steps", type=int, default=0,
                        help="steps to estimate and train (0: the preset's whole schedule)")
    parser.add_argument("--measure-steps", type=int, default=2,
                        help="timed steps of the measurement (after one warm-up step)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(machine_line())
    ws = demo_workspace()
    name, overrides = settings(args.model, args.mode, args.steps, args.threads)
    guess = estimated(ws, name, overrides, args.measure_steps)
    real = trained(ws, name, overrides)
    print(f"\n{args.model} ({args.mode}): {guess['steps']} steps, mean batch "
          f"{guess['batch_seconds']:.1f} s "
          f"(measured at {guess['measured_batch']:.1f} s), {args.threads} threads; "
          f"measuring took {guess['measure_s']:.0f} s\n")
    print(f"{'':24}{'estimate':>12}{'measured':>12}{'ratio':>8}")
    print(f"{'training time (s)':24}{guess['seconds']:12.1f}{real['seconds']:12.1f}"
          f"{guess['seconds'] / real['seconds']:8.2f}")
    print(f"{'seconds per step':24}{guess['step_s']:12.2f}"
          f"{real['seconds'] / max(1, real['steps']):12.2f}{'':8}")
    print(f"{'peak memory (MiB)':24}{guess['peak_mb']:12.0f}{real['peak_mb']:12.0f}"
          f"{guess['peak_mb'] / real['peak_mb']:8.2f}")
    valid = real["others_busy"] <= BUSY_LIMIT
    print(f"\n(measured seconds per step include the dev evaluation and checkpoint; the "
          f"training process took {real['wall_s']:.0f} s in all, model loading included, and "
          f"kept {real['cores_busy']:.2f} of {args.threads} cores busy on average; other "
          f"processes kept {real['others_busy']:.2f} cores busy: "
          + ("a quiet machine)" if valid else
             f"more than {BUSY_LIMIT}, they competed with the run and the times are not "
             "valid)"))


if __name__ == "__main__":
    main()
