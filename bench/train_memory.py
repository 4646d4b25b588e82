"""Peak memory of an XLS-R-300M training step on CPU, with and without gradient checkpointing.

Each setting runs the workbench's own training (``workbench.train.train``) in a fresh process
on the bundled 10-minute corpus with a randomly initialised model of the XLS-R-300M
architecture (``facebook/wav2vec2-xls-r-300m``'s configuration: 24 layers, hidden 1024,
315M parameters), ``data.max_batch_seconds=16``, AdamW, fp32. The child records its own
peak RSS (``VmHWM``) when step ``--steps`` has been logged, i.e. after the optimiser
state exists, and exits before the end-of-run evaluation and checkpoint writing.

    python bench/train_memory.py [--steps 3] [--threads 2] [--long-clips] [--results FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(tempfile.gettempdir()) / "workbench-bench"

# facebook/wav2vec2-xls-r-300m config.json (architecture only; the weights are random here).
XLSR_300M = dict(
    hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
    conv_dim=(512,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
    conv_bias=True, feat_extract_norm="layer", do_stable_layer_norm=True,
    num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, feat_proj_dropout=0.0,
)

SETTINGS = {
    "reference (no checkpointing)": ["model.gradient_checkpointing=false"],
    "workbench (gradient checkpointing)": ["model.gradient_checkpointing=true"],
}


def xlsr_random_dir() -> Path:
    """A saved random-init XLS-R-300M-architecture CTC model (built once, in a subprocess)."""
    target = CACHE / "xlsr-300m-random"
    if (target / "model.safetensors").is_file():
        return target
    code = (
        "import sys, json, torch; from transformers import Wav2Vec2Config, Wav2Vec2ForCTC;"
        "torch.manual_seed(0);"
        f"c = Wav2Vec2Config(**json.loads({json.dumps(json.dumps(XLSR_300M))}), vocab_size=40);"
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
    activation memory (and so gradient checkpointing) matters most.
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

    for u in sorted(short.read_split("train"), key=lambda u: (u.speaker, u.id)):
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


def peak_rss_mib() -> float:
    """This process's peak RSS (VmHWM; ru_maxrss would include the parent's pages at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(ws: str, model: str, steps: int, threads: int, overrides: list[str]) -> None:
    """Train until ``steps`` are logged, print peak RSS and step times as JSON, exit."""
    from workbench.config import build_config
    from workbench.train import train
    from workbench.workspace import Workspace

    config = build_config(preset="10min", overrides=[
        f"model.name={model}", "data.max_batch_seconds=16", "optim.max_steps=100",
        "run.eval_every=1000", "run.log_every=1", f"run.threads={threads}",
        "model.layerdrop=0.0", *overrides])
    started = time.monotonic()
    times: list[float] = []

    def on_event(record: dict) -> None:
        if record.get("event") != "train":
            return
        times.append(time.monotonic() - started)
        if record["step"] >= steps:
            print(json.dumps({"peak_mib": peak_rss_mib(), "step_times": times}), flush=True)
            os._exit(0)

    with tempfile.TemporaryDirectory() as runs:
        train(Workspace(Path(ws)), config, run_dir=Path(runs), progress=False,
              on_event=on_event)


def measure(ws: Path, model: Path, steps: int, threads: int, overrides: list[str]) -> dict:
    command = [sys.executable, __file__, "--child", str(ws), str(model), str(steps),
               str(threads), *overrides]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(overrides)} failed:\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1])
    times = result["step_times"]
    result["step_s"] = (times[-1] - times[0]) / max(1, len(times) - 1)
    return result


def table(results: dict[str, dict], steps: int, threads: int, long_clips: bool) -> str:
    flag = " --long-clips" if long_clips else ""
    clips = ("one 15.9 s clip per batch" if long_clips
             else "about five 3 s clips per batch")
    lines = [f"`python bench/train_memory.py --steps {steps} --threads {threads}{flag}` "
             f"({clips})", "",
             "| setting | peak RSS (GiB) | s / step (16 s audio) |", "|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['peak_mib'] / 1024:.2f} | {r['step_s']:.1f} |")
    ref, ours = results.values()
    lines.append("")
    lines.append(f"Peak RSS ratio workbench / reference: {ours['peak_mib'] / ref['peak_mib']:.2f}; "
                 f"step time ratio: {ours['step_s'] / ref['step_s']:.2f}.")
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
    parser.add_argument("--results", type=Path, help="append the table to this markdown file")
    args = parser.parse_args()
    ws = long_clip_workspace() if args.long_clips else demo_workspace()
    model = xlsr_random_dir()
    results = {name: measure(ws, model, args.steps, args.threads, overrides)
               for name, overrides in SETTINGS.items()}
    text = table(results, args.steps, args.threads, args.long_clips)
    print(text)
    if args.results:
        with open(args.results, "a", encoding="utf-8") as out:
            out.write("\n## Training memory, XLS-R-300M architecture on CPU\n\n" + text + "\n")


if __name__ == "__main__":
    main()
