"""Per-step times of the whole ``train()`` (full fine-tune, the bundled demo corpus): batches
padded to their longest clip against batches padded to whole seconds (``data.pad_to_seconds``).

On a GPU a batch shape not seen before stalls a step by seconds; the demo corpus's 1-6 s
clips make a new shape of almost every batch early in a run. Each variant runs in a child
process (``bench/laptop_mode.py``'s ``child``: the model built and trained as ``workbench
train`` does); the table gives the mean and the median seconds per step from the fourth step
on, the slowest step and the steps over one second. ``--profile`` adds a torch.profiler table
of five steps of the first variant (on the H200 its table did not come back within the
command's limit: allow minutes).

    python bench/gpu_train_steps.py                       # XLS-R-300M architecture
    python bench/gpu_train_steps.py --arch tiny --steps 12   # smoke, on a CPU

Where it favours a variant: padding costs compute (up to 1 s per clip), which these figures
include; on this corpus the padded batches hold fewer clips, so steps per epoch rise.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procstats import machine_line  # noqa: E402
from bench.train_memory import ARCHS, demo_workspace, random_model_dir  # noqa: E402

VARIANTS = {"longest": "data.pad_to_seconds=0", "whole seconds": "data.pad_to_seconds=1"}


def child(ws: str, model: str, variant: str, steps: int, batch_seconds: float,
          profile: bool) -> dict:
    """One train() run; its step times (and a profile table) as a dict."""
    import torch

    import workbench.train as training
    from bench.laptop_mode import child as train_child

    prof = None
    if profile:
        from torch.profiler import ProfilerActivity, schedule

        activities = [ProfilerActivity.CPU] + (
            [ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
        prof = torch.profiler.profile(activities=activities,
                                      schedule=schedule(wait=steps - 7, warmup=2, active=5))
        prof.start()
        step = training._Loop._step

        def profiled(self, *args, **kwargs):
            step(self, *args, **kwargs)
            prof.step()

        training._Loop._step = profiled
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        train_child(ws, model, "full", 0, 0, False, [
            VARIANTS[variant], f"data.max_batch_seconds={batch_seconds}", "model.layerdrop=0.0",
            f"optim.max_steps={steps}", "optim.min_steps=1", f"run.eval_every={10**6}",
            "model.finish_epochs=0", "optim.head_only_steps=0"])
    result = json.loads([line for line in out.getvalue().splitlines()
                         if line.startswith("{")][-1])
    marks = result["steps"]
    gaps = [b - a for a, b in zip(marks, marks[1:], strict=False)][3:]
    row = {"variant": variant, "steps_per_epoch": result["steps_per_epoch"],
           "mean_s": statistics.mean(gaps), "median_s": statistics.median(gaps),
           "max_s": max(gaps), "over_1s": sum(g > 1 for g in gaps), "timed": len(gaps)}
    if prof is not None:
        prof.stop()
        key = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
        row["profile"] = prof.key_averages().table(sort_by=key, row_limit=20,
                                                   max_name_column_width=50)
    return row


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(child(**json.loads(sys.argv[2]))), flush=True)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=tuple(ARCHS), default="xls-r-300m")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-seconds", type=float, default=160.0)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    ws, model = demo_workspace(), random_model_dir(args.arch)
    rows = []
    for index, variant in enumerate(VARIANTS):
        spec = {"ws": str(ws), "model": str(model), "variant": variant, "steps": args.steps,
                "batch_seconds": args.batch_seconds, "profile": args.profile and index == 0}
        run = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                             capture_output=True, text=True, check=False)
        lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise SystemExit(f"{variant} failed:\n{run.stderr[-3000:]}")
        rows.append(json.loads(lines[-1]))
        print(f"  {json.dumps({k: v for k, v in rows[-1].items() if k != 'profile'})}",
              flush=True)
        if "profile" in rows[-1]:
            print(rows[-1]["profile"], flush=True)
    print(f"`python bench/gpu_train_steps.py {' '.join(sys.argv[1:])}` ({machine_line()})\n")
    print("| batches padded to | steps / epoch | mean s / step | median | slowest | "
          "steps over 1 s |\n|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['variant']} | {row['steps_per_epoch']} | {row['mean_s']:.3f} | "
              f"{row['median_s']:.3f} | {row['max_s']:.3f} | {row['over_1s']} of "
              f"{row['timed']} |")


if __name__ == "__main__":
    main()
