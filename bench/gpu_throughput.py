"""Training throughput and model FLOPs utilisation (MFU), full fine-tune against laptop mode.

Part 5 of issue 15: on a GPU, the XLS-R-300M architecture (random weights: no checkpoint can
be downloaded here) in bf16; runs on a CPU too (fp32), where the same figures say how well
the laptop path uses the machine. Each row runs in a child process of its own:

- **The workbench's training step** on fixed-length clips of noise (``--clip-seconds``, so
  padded audio = real audio): the model as ``train()`` builds it (``build_model``, the
  precision, attention kernel and fused AdamW that ``make_accelerator`` picks for the
  device), ``weighted_ctc_loss``, backward, gradient clipping, AdamW. Laptop mode's step
  runs the top layers on states of the cut's shape (what its cache holds) through the same
  ``run_top`` patch; its once-per-clip bottom pass is not in the step and is timed apart
  (``cache`` column: the bottom layers' forward, audio-seconds per second).
- **FLOPs** of one forward + backward, counted by torch's ``FlopCounterMode`` (matrix
  products, convolutions, attention; 2 per multiply-add), beside an analytic count of the
  same (``analytic_flops``) as a check. MFU = FLOPs per step / seconds per step / peak.
- **Peak**: the device's datasheet dense peak for the precision (``PEAKS``; ``--peak-tflops``
  overrides), and beside it the rate of one large matrix product measured in the same process
  and precision (a CPU has no datasheet figure here: its MFU is against that rate only).
- Audio-seconds per second and seconds per step over ``--steps`` timed steps after
  ``--warmup``; peak device memory (``max_memory_allocated``) or peak RSS on a CPU; from
  outside, each child's wall time and peak RSS (imports and model build included).

``--train-steps N`` adds the whole ``train()`` (data loading, masks, logging) on the bundled
demo corpus in each mode, whose step times come from its log; its audio-seconds per second
count real audio and its MFU the model FLOPs of the real clips (analytic, each clip alone):
padding and the loader are its cost. Layerdrop is off in every row (it makes a step's work random).

    python bench/gpu_throughput.py                                  # XLS-R-300M, the device's
    python bench/gpu_throughput.py --batch-seconds 80,160,320 --train-steps 30
    python bench/gpu_throughput.py --arch tiny --batch-seconds 4 --steps 2 --warmup 1  # smoke

Where it favours a mode: laptop mode's rows leave out its once-per-clip cache pass (shown
apart), and fixed-length clips waste nothing on padding (the ``train()`` rows show what real
clip lengths cost).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import string
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procstats import machine_line, run_child  # noqa: E402
from bench.train_memory import ARCHS, demo_workspace, random_model_dir  # noqa: E402

SAMPLE_RATE = 16000
CHARS_PER_SECOND = 12  # label length of a clip: about as many characters as speech has
# Dense (no sparsity) tensor-core peaks in TFLOP/s for bf16 and fp16, from the vendors'
# datasheets; the first name found in the device's name wins (PCIe before SXM).
PEAKS = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H200", 989.4), ("H100", 989.4),
         ("GH200", 989.4), ("B200", 2250.0), ("A100", 312.0), ("L40S", 362.0),
         ("L40", 181.0), ("L4", 121.0), ("A10G", 70.0), ("A10", 125.0))


# --------------------------------------------------------------------------- FLOPs


def conv_frames(config, samples: int) -> list[int]:
    """Frames after each layer of the convolutional feature encoder."""
    frames, lengths = samples, []
    for kernel, stride in zip(config.conv_kernel, config.conv_stride, strict=True):
        frames = (frames - kernel) // stride + 1
        lengths.append(frames)
    return lengths


def analytic_flops(config, batch: int, samples: int, mode: str, cut: int = 0,
                   vocab: int | None = None) -> dict[str, float]:
    """Forward and backward FLOPs of one training step of a wav2vec2 CTC model.

    2 FLOPs per multiply-add of every matrix product and convolution (what
    ``FlopCounterMode`` counts; norms, activations and the loss are left out). ``mode``
    "full": the frozen feature encoder runs forward only, everything above it forward and
    backward (gradients of inputs and of weights: twice the forward). "top": layers
    ``cut``.. on cached states, the final norm and the head, forward and backward.
    """
    d, f = config.hidden_size, config.intermediate_size
    vocab = vocab or config.vocab_size
    frames = conv_frames(config, samples)[-1]
    layer = 2 * frames * (4 * d * d + 2 * d * f) + 4 * frames * frames * d
    head = 2 * frames * d * vocab
    if mode == "top":
        forward = (config.num_hidden_layers - cut) * layer + head
        return {"forward": batch * forward, "backward": 2 * batch * forward}
    conv, previous = 0, 1
    for dim, kernel, out in zip(config.conv_dim, config.conv_kernel,
                                conv_frames(config, samples), strict=True):
        conv += 2 * out * dim * previous * kernel
        previous = dim
    kernel, groups = config.num_conv_pos_embeddings, config.num_conv_pos_embedding_groups
    positional = 2 * (frames + 1 - kernel % 2) * d * (d // groups) * kernel
    above = 2 * frames * config.conv_dim[-1] * d + positional + \
        config.num_hidden_layers * layer + head
    return {"forward": batch * (conv + above), "backward": 2 * batch * above}


def counted_flops(step) -> int:
    """Model FLOPs torch counts while ``step()`` runs (one forward and backward).

    Attention's backward is counted as twice its forward, as the analytic count and the
    usual MFU do (torch counts the flash kernels' recomputed scores too, 2.5 times); the
    CPU's flash-attention kernels, which torch's table lacks, are counted like the GPU's; a
    grouped convolution's weight gradient costs its forward (torch's table ignores groups).
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode, conv_flop_count, sdpa_flop_count

    aten = torch.ops.aten

    def forward(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query, key, value)

    def backward(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
        return 2 * sdpa_flop_count(query, key, value)

    def conv_backward(grad_out, x, weight, _bias, _stride, _padding, _dilation, transposed,
                      _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
        # torch's formula ignores groups for the weights' gradient (16x too many FLOPs for
        # XLS-R's positional convolution); each gradient costs what the forward does.
        return sum(output_mask[:2]) * conv_flop_count(x, weight, grad_out, transposed)

    mapping = {aten.convolution_backward: conv_backward}
    kernels = ("_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
               "_scaled_dot_product_cudnn_attention",
               "_scaled_dot_product_flash_attention_for_cpu")
    for name in kernels:
        if hasattr(aten, name):
            mapping[getattr(aten, name)] = forward
            mapping[getattr(aten, f"{name}_backward")] = backward
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        step()
    return int(counter.get_total_flops())


def datasheet_peak(device_name: str, precision: str) -> float | None:
    """TFLOP/s of the device in ``precision`` (bf16/fp16 tensor cores), if known."""
    if precision not in ("bf16", "fp16"):
        return None
    return next((peak for name, peak in PEAKS if name in device_name), None)


def matmul_rate(device, dtype, size: int, repeats: int = 5) -> float:
    """TFLOP/s of a ``size`` x ``size`` matrix product, best of ``repeats``."""
    import torch

    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = math.inf
    for _ in range(repeats + 1):
        _sync(device)
        started = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e12


# --------------------------------------------------------------------------- the step loop

VOCAB_SIZE = 40  # the head of a typical character vocabulary (the demo corpus has 33)


def character_vocab(size: int) -> dict[str, int]:
    """A vocabulary of ``size`` labels as the workbench lays one out (blank 0, unknown 1,
    the word delimiter, letters): only its size matters to the step's cost."""
    from workbench.vocab import PAD, UNK

    letters = list((string.ascii_lowercase + string.digits + string.ascii_uppercase)[:size - 3])
    return {symbol: i for i, symbol in enumerate([PAD, UNK, "|", *letters])}


def step_child(model_dir: str, mode: str, batch_seconds: float, clip_seconds: float,
               steps: int, warmup: int, top_layers: int, threads: int, compile_: bool) -> dict:
    """Time the workbench's training step in ``mode`` on synthetic clips; figures as a dict."""
    import torch

    from workbench.config import build_config, resolve_schedule
    from workbench.distributed import logit_lengths, make_accelerator, weighted_ctc_loss
    from workbench.laptop import freeze_below, run_top, top_cut
    from workbench.train import build_model, build_optimizer

    if threads:
        torch.set_num_threads(threads)
    config = build_config(preset="10min", overrides=[
        f"model.name={model_dir}", f"model.mode={mode}", f"model.top_layers={top_layers}",
        "model.layerdrop=0.0", f"run.threads={threads}"])
    accelerator, runtime = make_accelerator(config)
    device = accelerator.device
    vocab = character_vocab(VOCAB_SIZE)
    model = build_model(config, vocab, runtime.attn_implementation)
    cut = top_cut(model.config, top_layers) if mode == "top" else 0
    if mode == "top":
        freeze_below(model, cut)
    optimizer, _ = build_optimizer(model, config, resolve_schedule(config, 1),
                                   runtime.fused_adamw)
    model, optimizer = accelerator.prepare(model, optimizer)
    unwrapped = accelerator.unwrap_model(model)
    batch = max(1, round(batch_seconds / clip_seconds))
    samples = round(clip_seconds * SAMPLE_RATE)
    frames = conv_frames(unwrapped.config, samples)[-1]
    audio = torch.randn(batch, samples, device=device)
    mask = torch.ones(batch, samples, dtype=torch.long, device=device)
    labels = torch.randint(1, len(vocab), (batch, round(clip_seconds * CHARS_PER_SECOND)),
                           device=device)
    cache_rate = _time_cache_pass(unwrapped, cut, audio, mask, accelerator) if cut else 0.0
    if mode == "top":
        run_top(unwrapped, cut)
        inputs = {"input_values": torch.randn(batch, frames, unwrapped.config.hidden_size,
                                              device=device), "attention_mask": mask}
    else:
        inputs = {"input_values": audio, "attention_mask": mask}
    forward = torch.compile(model) if compile_ else model
    weights = torch.full((batch,), 1 / batch, device=device)

    def loss_of() -> torch.Tensor:
        with accelerator.autocast():
            logits = forward(**inputs).logits
        return weighted_ctc_loss(logits.float(), labels, logit_lengths(unwrapped, inputs),
                                 weights, blank=unwrapped.config.pad_token_id,
                                 zero_infinity=True)

    def train_step() -> None:
        accelerator.backward(loss_of())
        if config.optim.grad_clip > 0:
            accelerator.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    model.train()
    flops = counted_flops(lambda: accelerator.backward(loss_of()))
    optimizer.zero_grad(set_to_none=True)
    for _ in range(warmup):
        train_step()
    _sync(device)
    _reset_peak(device)
    started = time.perf_counter()
    for _ in range(steps):
        train_step()
    _sync(device)
    step_s = (time.perf_counter() - started) / steps
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(runtime.precision,
                                                                torch.float32)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    expected = analytic_flops(unwrapped.config, batch, samples, mode, cut)
    return {
        "mode": mode, "device": name, "precision": runtime.precision,
        "attention": runtime.attn_implementation, "compiled": compile_,
        "batch": batch, "clip_s": clip_seconds, "batch_audio_s": batch * clip_seconds,
        "trained_layers": unwrapped.config.num_hidden_layers - cut,
        "trainable": sum(p.numel() for p in unwrapped.parameters() if p.requires_grad),
        "step_s": step_s, "audio_s_per_s": batch * clip_seconds / step_s,
        "flops": flops, "analytic_flops": expected["forward"] + expected["backward"],
        "gflops_per_audio_s": flops / (batch * clip_seconds) / 1e9,
        "achieved_tflops": flops / step_s / 1e12,
        "peak_tflops": datasheet_peak(name, runtime.precision),
        "matmul_tflops": matmul_rate(device, dtype, 8192 if device.type == "cuda" else 2048),
        "peak_memory_gib": _peak_memory_gib(device), "cache_audio_s_per_s": cache_rate,
        "threads": torch.get_num_threads(),
    }


def _time_cache_pass(model, cut: int, audio, mask, accelerator) -> float:
    """Audio-seconds per second of laptop mode's bottom pass (feature encoder and layers
    below ``cut``, no gradients) over the batch, as its cache runs it (one clip at a time
    on a CPU, so here too), under the run's precision."""
    import torch

    from workbench.laptop_cache import states_at

    model.eval()
    clips = [{"input_values": audio[i:i + 1], "attention_mask": mask[i:i + 1]}
             for i in range(audio.shape[0])]
    with torch.no_grad(), accelerator.autocast():
        states_at(model, cut, clips[0])  # warm-up
        _sync(audio.device)
        started = time.perf_counter()
        for clip in clips:
            states_at(model, cut, clip)
        _sync(audio.device)
    model.train()
    return audio.shape[0] * audio.shape[1] / SAMPLE_RATE / (time.perf_counter() - started)


def _sync(device) -> None:
    import torch

    if getattr(device, "type", device) == "cuda":
        torch.cuda.synchronize()


def _reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_memory_gib(device) -> float:
    import torch

    from bench.procstats import vm_hwm

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return vm_hwm() / 2**30


# --------------------------------------------------------------------------- the parent


def measure_step(model_dir: Path, mode: str, batch_seconds: float, args) -> dict:
    """One step-loop row in a child process, with its whole-process wall time and RSS."""
    command = [sys.executable, __file__, "--child", json.dumps({
        "model_dir": str(model_dir), "mode": mode, "batch_seconds": batch_seconds,
        "clip_seconds": args.clip_seconds, "steps": args.steps, "warmup": args.warmup,
        "top_layers": args.top_layers, "threads": args.threads, "compile_": args.compile})]
    run = run_child(f"{mode} {batch_seconds:g} s", command, check=False)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"mode": mode, "batch_audio_s": batch_seconds,
                "error": (run.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    row = json.loads(lines[-1])
    row.update(process_s=run.seconds, process_peak_rss_gib=run.peak_rss_mib / 1024)
    if args.peak_tflops:
        row["peak_tflops"] = args.peak_tflops
    print(f"  {json.dumps(row)}", flush=True)
    return row


def mfu_text(tflops: float, peak: float | None) -> str:
    return f"{100 * tflops / peak:.1f}%" if peak else "-"


def step_table(rows: list[dict]) -> list[str]:
    lines = ["| mode (trained layers) | batch audio s | s / step | audio s / s | GFLOP / audio s "
             "(analytic) | TFLOP/s | MFU vs datasheet | vs matmul | peak memory GiB | "
             "process s, peak RSS GiB |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['mode']} | {row['batch_audio_s']:g} | failed: "
                         f"{row['error']} |||||||")
            continue
        audio = row["batch_audio_s"]
        lines.append(
            f"| {row['mode']} ({row['trained_layers']}) | {audio:g} ({row['batch']} x "
            f"{row['clip_s']:g}) | {row['step_s']:.3f} | {row['audio_s_per_s']:.1f} | "
            f"{row['gflops_per_audio_s']:.1f} ({row['analytic_flops'] / audio / 1e9:.1f}) | "
            f"{row['achieved_tflops']:.2f} | {mfu_text(row['achieved_tflops'], row['peak_tflops'])}"
            f" | {mfu_text(row['achieved_tflops'], row['matmul_tflops'])} | "
            f"{row['peak_memory_gib']:.2f} | {row['process_s']:.0f}, "
            f"{row['process_peak_rss_gib']:.2f} |")
    return lines


def train_rows(model_dir: Path, args, steps_rows: list[dict]) -> list[str]:
    """The whole ``train()`` in each mode on the demo corpus (via bench/laptop_mode.py)."""
    from transformers import Wav2Vec2Config

    from bench.laptop_mode import measure
    from workbench.laptop import top_cut
    from workbench.workspace import Workspace

    ws = demo_workspace()
    durations = [u.duration for u in Workspace.at(ws).read_split("train")]
    train_audio = sum(durations)
    config = Wav2Vec2Config.from_pretrained(model_dir)
    vocab = len(json.loads((ws / "vocab.json").read_text(encoding="utf-8")))
    lines = ["| train() mode | batch audio s (max) | s / step | real audio s / s | MFU vs "
             "datasheet (real clips' FLOPs) | vs matmul | cache s | whole run s |",
             "|---|---|---|---|---|---|---|---|"]
    batch = max(args.batch_seconds)
    for mode in args.modes:
        overrides = [f"data.max_batch_seconds={batch}", "model.layerdrop=0.0",
                     f"optim.max_steps={args.train_steps}", "optim.min_steps=1",
                     f"run.eval_every={10**6}", "model.finish_epochs=0",
                     "optim.head_only_steps=0"]
        result = measure(f"train {mode}", ws, model_dir, mode, args.top_layers, args.threads,
                         False, overrides)
        steps = result["steps"][args.warmup:]
        step_s = (steps[-1] - steps[0]) / max(1, len(steps) - 1)
        rate = train_audio / result["steps_per_epoch"] / step_s
        loop = [r for r in steps_rows if r.get("mode") == mode and "error" not in r]
        cut = top_cut(config, args.top_layers) if mode == "top" else 0
        flops = useful_flops_per_second(config, durations, mode, cut, vocab)
        peak = loop[-1]["peak_tflops"] if loop else None
        matmul = loop[-1]["matmul_tflops"] if loop else None
        cache = result.get("cache", {}).get("seconds")
        lines.append(f"| {mode} | {batch:g} | {step_s:.3f} | {rate:.1f} | "
                     f"{mfu_text(flops * rate / 1e12, peak)} | "
                     f"{mfu_text(flops * rate / 1e12, matmul)} | "
                     f"{f'{cache:.0f}' if cache is not None else '-'} | "
                     f"{result['process_s']:.0f} |")
    return lines


def useful_flops_per_second(config, durations: list[float], mode: str, cut: int,
                            vocab: int) -> float:
    """Model FLOPs of a training step per second of real audio over clips of ``durations``
    (each clip alone: what padding adds is not useful work)."""
    total = 0.0
    for seconds in durations:
        flops = analytic_flops(config, 1, round(seconds * SAMPLE_RATE), mode, cut, vocab)
        total += flops["forward"] + flops["backward"]
    return total / sum(durations)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(step_child(**json.loads(sys.argv[2]))), flush=True)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=tuple(ARCHS), default="xls-r-300m")
    parser.add_argument("--modes", type=lambda s: s.split(","), default=["full", "top"])
    parser.add_argument("--batch-seconds", type=lambda s: [float(x) for x in s.split(",")],
                        default=[80.0, 160.0, 320.0],
                        help="padded audio per step (comma-separated: one row each)")
    parser.add_argument("--clip-seconds", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--top-layers", type=int, default=0, help="0: the default")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--peak-tflops", type=float, default=0.0,
                        help="the device's peak in the run's precision (default: PEAKS)")
    parser.add_argument("--train-steps", type=int, default=0,
                        help="also the whole train() in each mode for this many steps")
    parser.add_argument("--results", type=Path, help="append the tables to this markdown file")
    args = parser.parse_args()
    model_dir = random_model_dir(args.arch)
    rows = [measure_step(model_dir, mode, seconds, args)
            for mode in args.modes for seconds in args.batch_seconds]
    device = next((r["device"] for r in rows if "device" in r), "?")
    precision = next((r["precision"] for r in rows if "precision" in r), "?")
    lines = [f"`python {' '.join(['bench/gpu_throughput.py', *sys.argv[1:]])}` ({machine_line()}; "
             f"device {device}, {precision}, {args.arch} architecture, random weights)", "",
             *step_table(rows)]
    if args.train_steps:
        lines += ["", *train_rows(model_dir, args, rows)]
    text = "\n".join(lines)
    print(text)
    if args.results:
        with open(args.results, "a", encoding="utf-8") as out:
            out.write("\n## Training throughput and MFU\n\n" + text + "\n")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
