"""Memory of CPU inference over clips of many lengths: native kernels (workbench) against oneDNN.

oneDNN, torch's default CPU backend for convolutions, keeps a compiled kernel (and its
scratch memory) for every input shape it sees; a batch job over clips of many lengths (dev
scoring, evaluation, ``workbench transcribe`` on a folder) gives it a new shape nearly every
batch. The workbench's :class:`~workbench.recognizer.Recognizer` runs on torch's native
kernels on a CPU; the reference row is the same code with oneDNN left on (torch's default,
and the workbench before session 9).

Both rows: the same model, the same ``--clips`` clips of noise with lengths drawn uniformly
from 1 to 10 s (one seed), ``clip_logits`` in groups of 50 clips, the same threads, each in
a fresh child process. Figures: seconds of inference, RSS growth after each group of 50
(after ``malloc_trim``, against the RSS after a 4-clip warm-up), the process's own peak
(``VmHWM``), and from outside the whole process's wall time and peak RSS.

    python bench/inference_shapes.py [--arch xls-r-300m|tiny | --model DIR] [--clips 200]

The model: the architecture with random weights (only shapes matter for memory) and the demo
workspace's processor. Where this favours a row: none known; the clips are noise, so the
decoding work (greedy, after the logits) is left out of both.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procstats import machine_line, run_child  # noqa: E402
from bench.train_memory import ARCHS, CACHE, demo_workspace, random_model_dir  # noqa: E402

GROUP = 50


def model_with_processor(arch: str) -> Path:
    """The random model of ``arch`` beside the demo workspace's processor (made once)."""
    target = CACHE / f"{arch}-random-with-processor"
    if (target / "preprocessor_config.json").is_file():
        return target
    from workbench.vocab import make_processor

    source = random_model_dir(arch)
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        link = target / name
        if not link.exists():
            link.symlink_to(source / name)
    make_processor(demo_workspace() / "vocab.json").save_pretrained(target)
    return target


def child(model: str, clips: int, threads: int, onednn: bool) -> dict:
    import contextlib

    import numpy as np
    import torch

    from bench.procstats import vm_hwm, vm_rss
    from workbench.cpu_memory import release_freed_memory
    from workbench.recognizer import Recognizer, clip_logits, load_recognizer

    torch.set_num_threads(threads)
    if onednn:  # the reference: torch's default backend, as before the change
        Recognizer.native_kernels = lambda self: contextlib.nullcontext()
    recognizer = load_recognizer(model, device="cpu")
    rng = np.random.default_rng(0)
    arrays = [(0.1 * rng.standard_normal(int(rng.uniform(1, 10) * 16000))).astype(np.float32)
              for _ in range(clips)]
    clip_logits(recognizer, arrays[:4])
    release_freed_memory()
    base = vm_rss()
    growth = []
    started = time.perf_counter()
    for first in range(0, clips, GROUP):
        clip_logits(recognizer, arrays[first:first + GROUP])
        release_freed_memory()
        growth.append((vm_rss() - base) / 2**20)
    return {"seconds": time.perf_counter() - started, "growth_mib": growth,
            "hwm_mib": vm_hwm() / 2**20, "enabled_after": torch.backends.mkldnn.enabled}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        model, clips, threads, onednn = sys.argv[2:]
        print(json.dumps(child(model, int(clips), int(threads), onednn == "1")), flush=True)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=tuple(ARCHS), default="xls-r-300m")
    parser.add_argument("--model", type=Path,
                        help="a trained model folder (a run's model/) instead of --arch")
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = args.model or model_with_processor(args.arch)
    which = f"--model {args.model}" if args.model else f"--arch {args.arch}"
    lines = [f"`python bench/inference_shapes.py {which} --clips {args.clips} "
             f"--threads {args.threads}` ({machine_line()})", "",
             f"| row | inference s | RSS growth MiB after each {GROUP} clips | peak RSS MiB "
             "(own) | whole process s, peak RSS MiB |", "|---|---|---|---|---|"]
    for name, onednn in (("oneDNN on (reference)", "1"), ("native kernels (workbench)", "0")):
        run = run_child(name, [sys.executable, __file__, "--child", str(model),
                               str(args.clips), str(args.threads), onednn])
        row = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"  {name}: {json.dumps(row)}", flush=True)
        growth = ", ".join(f"{g:.0f}" for g in row["growth_mib"])
        lines.append(f"| {name} | {row['seconds']:.1f} | {growth} | {row['hwm_mib']:.0f} | "
                     f"{run.seconds:.0f}, {run.peak_rss_mib:.0f} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
