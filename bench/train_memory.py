"""Peak memory of a short XLS-R-300M training run on CPU, with and without gradient checkpointing.

Both rows are the workbench's own training (``workbench.train.train``), each in a fresh
process, on the bundled 10-minute corpus with a randomly initialised model of the XLS-R-300M
architecture (``facebook/wav2vec2-xls-r-300m``'s configuration: 24 layers, hidden 1024,
315M parameters), ``data.max_batch_seconds=16``, AdamW, fp32. They differ only in
``model.gradient_checkpointing``; there is no outside reference here (the earlier
"reference" row was the workbench without checkpointing).

The whole ``train()`` call is measured: ``--steps`` optimiser steps, then (``run.eval_every``
= ``--steps``) one dev evaluation, the export of the model it finds best (``model/``) and a
checkpoint save (weights, AdamW state): everything a real run does between two evaluations.
The child checks that the model and the checkpoint were written. Figures per row:

- peak RSS after the last training step (``VmHWM`` then: the optimiser state exists),
- peak RSS over the whole ``train()`` call (``VmHWM`` when it returns),
- peak RSS of the whole child process as polled from outside (imports and the model's
  first load included; see ``bench/procstats.py``),
- seconds per step, and the seconds of the evaluation + export and of the checkpoint save.

    python bench/train_memory.py [--steps 3] [--threads 2] [--long-clips] [--results FILE]
    python bench/train_memory.py --arch tiny --steps 2          # smoke test (a tiny model)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procstats import machine_line, run_child, vm_hwm, vm_rss  # noqa: E402

CACHE = Path(tempfile.gettempdir()) / "workbench-bench"

# facebook/wav2vec2-xls-r-300m config.json (architecture only; the weights are random here).
XLSR_300M = dict(
    hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
    conv_dim=(512,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
    conv_bias=True, feat_extract_norm="layer", do_stable_layer_norm=True,
    num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, feat_proj_dropout=0.0,
)
# The same family at toy size, for smoke tests of this script only.
TINY = dict(XLSR_300M, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=128, conv_dim=(32,) * 7, num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=4)
ARCHS = {"xls-r-300m": XLSR_300M, "tiny": TINY}

SETTINGS = {
    "workbench, no gradient checkpointing": ["model.gradient_checkpointing=false"],
    "workbench, gradient checkpointing": ["model.gradient_checkpointing=true"],
}
MIB = 2**20


def random_model_dir(arch: str) -> Path:
    """A saved random-init CTC model of ``arch`` (built once, in a subprocess)."""
    target = CACHE / ("xlsr-300m-random" if arch == "xls-r-300m" else f"{arch}-random")
    if (target / "model.safetensors").is_file():
        return target
    code = (
        "import sys, json, torch; from transformers import Wav2Vec2Config, Wav2Vec2ForCTC;"
        "torch.manual_seed(0);"
        f"c = Wav2Vec2Config(**json.loads({json.dumps(json.dumps(ARCHS[arch]))}), "
        "vocab_size=40);"
        "Wav2Vec2ForCTC(c).save_pretrained(sys.argv[1], safe_serialization=True)"
    )
    subprocess.run([sys.executable, "-c", code, str(target)], check=True)
    return target


def demo_workspace() -> Path:
    """The bundled 10-minute demo corpus, prepared with a vocabulary (built once)."""
    ws = CACHE / "demo-ws"
    if (ws / "vocab.json").is_file():
        return ws
    tar = ROOT / "data_recipes" / "demo" / "quechua_demo.tar"
    cli = [sys.executable, "-m", "workbench.cli"]
    subprocess.run([*cli, "prepare", str(tar), "-w", str(ws)], check=True)
    subprocess.run([*cli, "audit", "-w", str(ws)], check=True)
    subprocess.run([*cli, "vocab", "-w", str(ws)], check=True)
    return ws


def long_clip_workspace(seconds: float = 15.9) -> Path:
    """The demo corpus re-cut into clips of ``seconds`` (consecutive clips of one speaker joined).

    With one 16-second clip per batch the transformer sees 800 frames, the case where
    activation memory (and so gradient checkpointing) matters most. Every split is re-cut,
    so the dev evaluation runs on long clips too.
    """
    ws = CACHE / "demo-ws-long"
    if (ws / "vocab.json").is_file():
        return ws
    import numpy as np
    import soundfile as sf

    from workbench.workspace import Workspace

    short = Workspace(demo_workspace())
    folder = CACHE / "demo-long-source"
    folder.mkdir(parents=True, exist_ok=True)
    rows, current, texts, speaker = [], [], [], None

    def flush() -> None:
        if current:
            name = f"long{len(rows):04d}.wav"
            sf.write(folder / name, np.concatenate(current), 16000)
            rows.append(f"{name},{' '.join(texts)},{speaker}")

    utterances = [u for split in ("train", "dev", "test") for u in short.read_split(split)]
    for u in sorted(utterances, key=lambda u: (u.speaker, u.id)):
        samples, _ = sf.read(short.root / u.audio, dtype="float32")
        if u.speaker != speaker or sum(map(len, current)) + len(samples) > seconds * 16000:
            flush()
            current, texts, speaker = [], [], u.speaker
        current.append(samples)
        texts.append(u.text)
    flush()
    (folder / "metadata.csv").write_text("file_name,transcription,speaker\n" + "\n".join(rows)
                                         + "\n", encoding="utf-8")
    cli = [sys.executable, "-m", "workbench.cli"]
    subprocess.run([*cli, "prepare", str(folder), "-w", str(ws)], check=True)
    subprocess.run([*cli, "audit", "-w", str(ws)], check=True)
    subprocess.run([*cli, "vocab", "-w", str(ws)], check=True)
    return ws


def child(ws: str, model: str, steps: int, threads: int, overrides: list[str]) -> None:
    """One short run through ``train()``; print the figures as JSON."""
    from workbench.config import build_config
    from workbench.run import Run
    from workbench.train import train
    from workbench.workspace import Workspace

    config = build_config(preset="10min", overrides=[
        f"model.name={model}", "data.max_batch_seconds=16", f"optim.max_steps={steps}",
        f"run.eval_every={steps}", "run.log_every=1", f"run.threads={threads}",
        "model.layerdrop=0.0", *overrides])
    started = time.monotonic()
    marks: dict = {"step_times": []}

    def on_event(record: dict) -> None:
        now = time.monotonic() - started
        if record.get("event") == "train":
            marks["step_times"].append(now)
            if record["step"] >= steps:
                marks["after_steps_mib"] = vm_hwm() / MIB
        elif record.get("event") == "eval":  # logged after the export, before the save
            marks["eval_done_s"] = now
            marks["after_eval_export_mib"] = vm_hwm() / MIB

    with tempfile.TemporaryDirectory(prefix="train-memory-") as runs:
        run_dir = Path(runs) / "run"
        run_dir.mkdir()
        train(Workspace(Path(ws)), config, run_dir=run_dir, progress=False, on_event=on_event)
        marks["end_s"] = time.monotonic() - started
        marks["whole_train_mib"] = vm_hwm() / MIB
        marks["rss_at_end_mib"] = vm_rss() / MIB
        run = Run(run_dir)
        marks["model_exported"] = run.has_model
        marks["checkpoint_saved"] = run.has_checkpoint
    print(json.dumps(marks), flush=True)


def measure(name: str, ws: Path, model: Path, steps: int, threads: int,
            overrides: list[str]) -> dict:
    command = [sys.executable, __file__, "--child", str(ws), str(model), str(steps),
               str(threads), *overrides]
    run = run_child(name, command, check=False)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"{name} failed:\n{run.stderr[-3000:]}")
    result = json.loads(lines[-1])
    if not (result.get("model_exported") and result.get("checkpoint_saved")
            and "eval_done_s" in result):
        raise SystemExit(f"{name}: the run did not evaluate, export and save ({result})")
    times = result["step_times"]
    result["step_s"] = (times[-1] - times[0]) / max(1, len(times) - 1)
    result["eval_export_s"] = result["eval_done_s"] - times[-1]
    result["save_s"] = result["end_s"] - result["eval_done_s"]
    result["process_peak_mib"] = run.peak_rss_mib
    result["process_s"] = run.seconds
    return result


def table(results: dict[str, dict], args) -> str:
    flag = " --long-clips" if args.long_clips else ""
    arch = "" if args.arch == "xls-r-300m" else f" --arch {args.arch}"
    clips = ("one 15.9 s clip per batch" if args.long_clips
             else "about five 3 s clips per batch")
    lines = [f"`python bench/train_memory.py --steps {args.steps} --threads {args.threads}"
             f"{flag}{arch}` ({args.arch}, {clips}; {machine_line()})", "",
             "| run | peak RSS after the steps (GiB) | peak RSS whole train() (GiB) | "
             "whole process, polled (GiB) | s / step | eval + export s | checkpoint save s |",
             "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['after_steps_mib'] / 1024:.2f} | "
                     f"{r['whole_train_mib'] / 1024:.2f} | {r['process_peak_mib'] / 1024:.2f} | "
                     f"{r['step_s']:.1f} | {r['eval_export_s']:.1f} | {r['save_s']:.1f} |")
    plain, checkpointed = results.values()
    lines.append("")
    lines.append(
        f"Both rows are the workbench; {args.steps} steps, then one dev evaluation, the model "
        "export and a checkpoint save (all checked to have happened). Whole-run peak ratio "
        f"checkpointing / none: {checkpointed['whole_train_mib'] / plain['whole_train_mib']:.2f}"
        f"; step time ratio: {checkpointed['step_s'] / plain['step_s']:.2f}.")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        ws, model, steps, threads, *overrides = sys.argv[2:]
        child(ws, model, int(steps), int(threads), overrides)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--long-clips", action="store_true",
                        help="one 16-second clip per batch instead of several short ones")
    parser.add_argument("--arch", choices=tuple(ARCHS), default="xls-r-300m",
                        help="tiny: a toy model of the same family, to smoke-test the script")
    parser.add_argument("--results", type=Path, help="append the table to this markdown file")
    args = parser.parse_args()
    ws = long_clip_workspace() if args.long_clips else demo_workspace()
    model = random_model_dir(args.arch)
    results = {}
    for name, overrides in SETTINGS.items():
        results[name] = measure(name, ws, model, args.steps, args.threads, overrides)
        shown = {k: v for k, v in results[name].items() if k != "step_times"}
        print(f"  {name}: {json.dumps(shown)}", flush=True)
    text = table(results, args)
    print(text)
    if args.results:
        with open(args.results, "a", encoding="utf-8") as out:
            out.write("\n## Training memory, XLS-R-300M architecture on CPU\n\n" + text + "\n")


if __name__ == "__main__":
    main()
