"""Transcription speed on CPU: the workbench's batched inference against transformers' pipeline().

Same model, same clips, same number of threads on every side.

1. In one process, model loading not timed, one warm-up per row:

   - the reference row that matters: ``pipeline("automatic-speech-recognition", model,
     batch_size=N)`` over the already-decoded 16 kHz arrays (``{"raw": array,
     "sampling_rate": 16000}`` dicts), fed in the workbench's length order, with N the
     workbench's mean clips per forward pass, so both make the same number of forward passes
     over about the same padded audio (both columns are printed). pipeline() does not sort
     by length itself: the sorting is done for it here, which favours it against what a user
     gets from ``pipeline(list, batch_size=N)``; that row (clips in their own order) is
     printed too, and ``--pipeline-batch-sizes`` adds other N;
   - workbench ``transcribe_arrays`` on the same arrays (length-sorted batches of up to
     ``--batch-seconds`` of padded audio);
   - from the files: ``pipeline(path)`` file by file (each file decoded by an ffmpeg process,
     one clip per forward pass; the earlier reference) and workbench ``transcribe_files``
     (reads and decodes the files itself).

   Every row's texts are compared with the workbench's. pipeline() greedy-decodes the padding
   frames of a batched clip too (it does not cut each clip's logits to its own length, as the
   workbench does), so batched rows can differ from the unbatched ones at the end of a clip.
2. Whole process: each side a fresh child process (Python imports, model load, reading the
   files, transcription, exit), with wall time, CPU time and peak RSS of its process tree:
   ``workbench transcribe FILES --model M --json`` against a script that reads the same WAV
   files with soundfile, sorts them by length and calls pipeline(batch_size=N), and against
   ``pipeline(path)`` file by file.
3. The same model exported with ``workbench export --onnx`` (fp32) and ``--onnx --int8``,
   run through the same batching code in ONNX Runtime: speed-up over torch and test CER.
4. (``--xlsr``) A random-init model of the XLS-R-300M architecture (wav2vec2 large, 315M
   parameters) with the workspace's processor, on ``--xlsr-seconds`` of audio: RTF of torch,
   pipeline(batch_size=N) (unless ``--skip-pipeline-xlsr``), ONNX fp32 and int8. Its exports
   are cached in ``--cache`` (made once: a few minutes and about 5.5 GB of RAM).

    python bench/transcribe_speed.py        # demo corpus; fine-tunes demo-base first (~4 min)
    python bench/transcribe_speed.py --model RUN --workspace WS   # reuse a trained run
    python bench/transcribe_speed.py --model RUN --workspace WS --xlsr --threads 2
    python bench/transcribe_speed.py --train-steps 5 --clips 12 --skip-onnx  # smoke test

Only the standard library is imported at the top, so a child's timing holds nothing of the
parent's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.procstats import machine_line, run_child  # noqa: E402  (standard library only)

SPLITS = ("train", "dev", "test")
SAMPLE_RATE = 16_000


@dataclass
class Timing:
    """One row: a pass over the clips."""

    name: str
    seconds: float
    audio_seconds: float
    texts: list[str]
    passes: int = 0  # forward passes
    padded_seconds: float = 0.0  # audio seconds the forward passes ran over, padding included
    batch_size: int = 0  # pipeline(batch_size=N) rows
    whole: dict = field(default_factory=dict)  # whole-process figures

    @property
    def rtf(self) -> float:
        return self.seconds / self.audio_seconds


# ---------------------------------------------------------------------------------------------
# Setup


def build_demo_run(root: Path, train_steps: int = 0) -> tuple[object, Path]:
    """The demo flow: bundled Quechua corpus, vocab, demo-base fine-tuned with the 10min preset."""
    from data_recipes import prepare_sources
    from data_recipes.synthetic import DEMO_ARCHIVE, unpack_corpus
    from workbench.config import build_config
    from workbench.demo import DEMO_MODEL, DEMO_OVERRIDES
    from workbench.train import train
    from workbench.vocab import build_workspace_vocab
    from workbench.workspace import Workspace

    source = unpack_corpus(DEMO_ARCHIVE, root / "source")
    ws = Workspace.at(root / "ws")
    prepare_sources([source], ws, progress=False)
    build_workspace_vocab(ws)
    overrides = [f"model.name={DEMO_MODEL}", *DEMO_OVERRIDES]
    if train_steps:
        overrides += [f"optim.max_steps={train_steps}", f"run.eval_every={train_steps}"]
    config = build_config(preset="10min", overrides=overrides)
    print(f"fine-tuning {DEMO_MODEL} on the demo corpus (10min preset"
          f"{f', {train_steps} steps' if train_steps else ''}) ...", flush=True)
    result = train(ws, config, progress=False)
    return ws, result.run_dir


def xlsr_model(processor_dir: Path, out: Path) -> Path:
    """A seeded random-init XLS-R-300M-architecture CTC model with the workspace processor."""
    import torch
    from transformers import AutoProcessor, Wav2Vec2Config, Wav2Vec2ForCTC

    if (out / "model.safetensors").is_file():
        return out
    processor = AutoProcessor.from_pretrained(processor_dir, local_files_only=True)
    torch.manual_seed(0)
    config = Wav2Vec2Config(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
        intermediate_size=4096, feat_extract_norm="layer", do_stable_layer_norm=True,
        conv_bias=True, vocab_size=len(processor.tokenizer),
        pad_token_id=processor.tokenizer.pad_token_id, ctc_loss_reduction="mean")
    Wav2Vec2ForCTC(config).save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    return out


def cache_key(model_dir: Path) -> str:
    """A cache folder name that changes when the model's weights do."""
    weights = model_dir / "model.safetensors"
    digest = hashlib.sha1(f"{model_dir.resolve()}:{weights.stat().st_mtime_ns}".encode())
    return f"{model_dir.parent.name}-{digest.hexdigest()[:10]}"


def exports(model_dir: Path, cache: Path) -> tuple[Path, Path]:
    """fp32 and int8 ONNX exports of ``model_dir`` in ``cache`` (reused when present; the
    int8 one is made again when it was quantized with other settings)."""
    from workbench.onnx_export import Int8Options, export_onnx

    options = Int8Options()
    fp32, int8 = cache / "onnx", cache / "onnx-int8"
    if not (fp32 / "model.onnx").is_file():
        print(f"exporting {model_dir} to ONNX ...", flush=True)
        export_onnx(model_dir, fp32)
    if not (int8 / "model.onnx").is_file() or not same_int8_settings(int8, options):
        print(f"quantizing {fp32} to int8 ...", flush=True)
        export_onnx(fp32, int8, int8=True, int8_options=options)
    return fp32, int8


def same_int8_settings(export_dir: Path, options) -> bool:
    """Whether the export's metadata records ``options`` (JSON keeps tuples as lists)."""
    from workbench.onnx_export import METADATA_FILE

    path = export_dir / METADATA_FILE
    if not path.is_file():
        return False
    recorded = json.loads(path.read_text(encoding="utf-8")).get("settings", {})
    return recorded == json.loads(json.dumps(asdict(options)))


@dataclass
class Clips:
    """The clips of a run: files, decoded arrays, normalised references, split names."""

    paths: list[Path]
    arrays: list
    refs: list[str]
    splits: list[str]

    @property
    def audio_seconds(self) -> float:
        return sum(len(a) for a in self.arrays) / SAMPLE_RATE


def load_clips(ws, splits: tuple[str, ...], max_seconds: float = 0.0, max_clips: int = 0
               ) -> Clips:
    """Audio paths, decoded 16 kHz arrays, references (normalised) and split names."""
    from workbench.audio import load_audio
    from workbench.text import load_profile, normalize

    profile = load_profile(ws.profile_path)
    paths, refs, names, total = [], [], [], 0.0
    for split in splits:
        for utt in ws.read_split(split):
            if (max_seconds and total >= max_seconds) or (max_clips and len(paths) >= max_clips):
                break
            paths.append(ws.audio_path(utt))
            refs.append(normalize(utt.text, profile))
            names.append(split)
            total += utt.duration
    return Clips(paths, [load_audio(p) for p in paths], refs, names)


# ---------------------------------------------------------------------------------------------
# Batch plans (forward passes and padded audio of each side)


def workbench_plan(recognizer, arrays, batch_seconds: float) -> list[list[int]]:
    """The workbench's batches for ``arrays`` (clips over chunk_s are windowed: not counted)."""
    from workbench.transcribe import CHUNK_S, plan_batches

    limit = int(CHUNK_S * SAMPLE_RATE)
    lengths = [len(a) if 0 < len(a) <= limit and recognizer.output_frames(len(a)) > 0 else 0
               for a in arrays]
    return plan_batches(lengths, int(batch_seconds * SAMPLE_RATE), pad=recognizer.pads_safely)


def fixed_plan(order: list[int], batch_size: int) -> list[list[int]]:
    """pipeline(batch_size=N): consecutive groups of N in the order given."""
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def padded_seconds(arrays, batches: list[list[int]]) -> float:
    return sum(len(b) * max(len(arrays[i]) for i in b) for b in batches) / SAMPLE_RATE


def matched_sizes(clips: int, passes: int) -> list[int]:
    """pipeline() batch sizes around the workbench's mean clips per forward pass: the floor
    and the ceiling (one when it is whole)."""
    mean = clips / max(1, passes)
    return sorted({max(1, int(mean)), max(1, -(-clips // max(1, passes)))})


def length_order(arrays) -> list[int]:
    """Longest first, as the workbench orders its batches."""
    return sorted(range(len(arrays)), key=lambda i: -len(arrays[i]))


# ---------------------------------------------------------------------------------------------
# In-process rows


def run_workbench_arrays(name: str, recognizer, clips: Clips, batch_seconds: float) -> Timing:
    from workbench.transcribe import transcribe_arrays

    transcribe_arrays(recognizer, clips.arrays[:2], batch_seconds)  # warm-up
    started = time.perf_counter()
    texts = transcribe_arrays(recognizer, clips.arrays, batch_seconds)
    seconds = time.perf_counter() - started
    plan = workbench_plan(recognizer, clips.arrays, batch_seconds)
    return Timing(name, seconds, clips.audio_seconds, texts, len(plan),
                  padded_seconds(clips.arrays, plan))


def run_workbench_files(name: str, recognizer, clips: Clips, batch_seconds: float) -> Timing:
    from workbench.transcribe import transcribe_files

    transcribe_files(clips.paths[:1], recognizer, progress=False)  # warm-up
    started = time.perf_counter()
    results = transcribe_files(clips.paths, recognizer, progress=False,
                               batch_seconds=batch_seconds)
    seconds = time.perf_counter() - started
    bad = [r for r in results if not r.ok]
    if bad:
        raise SystemExit(f"{bad[0].path}: {bad[0].error}")
    plan = workbench_plan(recognizer, clips.arrays, batch_seconds)
    return Timing(name, seconds, sum(r.duration for r in results), [r.text for r in results],
                  len(plan), padded_seconds(clips.arrays, plan))


def make_pipeline(model_dir: Path):
    from transformers import pipeline

    return pipeline("automatic-speech-recognition", model=str(model_dir), device="cpu")


def pipeline_arrays(asr, arrays, order: list[int], batch_size: int) -> list[str]:
    """pipeline() over decoded arrays fed in ``order``; texts back in input order."""
    # pipeline() pops "raw" from the dicts it is given: fresh ones on every call.
    inputs = [{"raw": arrays[i], "sampling_rate": SAMPLE_RATE} for i in order]
    outputs = asr(inputs, batch_size=batch_size)
    texts = [""] * len(arrays)
    for i, out in zip(order, outputs, strict=True):
        texts[i] = out["text"]
    return texts


def run_pipeline_arrays(name: str, asr, clips: Clips, batch_size: int, sort: bool) -> Timing:
    order = length_order(clips.arrays) if sort else list(range(len(clips.arrays)))
    pipeline_arrays(asr, clips.arrays, order[:batch_size], batch_size)  # warm-up
    started = time.perf_counter()
    texts = pipeline_arrays(asr, clips.arrays, order, batch_size)
    seconds = time.perf_counter() - started
    plan = fixed_plan(order, batch_size)
    return Timing(name, seconds, clips.audio_seconds, texts, len(plan),
                  padded_seconds(clips.arrays, plan), batch_size)


def run_pipeline_files(name: str, asr, clips: Clips) -> Timing:
    """The earlier reference: pipeline() on one file at a time (ffmpeg decodes each)."""
    asr(str(clips.paths[0]))  # warm-up
    started = time.perf_counter()
    texts = [asr(str(p))["text"] for p in clips.paths]
    return Timing(name, time.perf_counter() - started, clips.audio_seconds, texts,
                  len(clips.paths), clips.audio_seconds)


# ---------------------------------------------------------------------------------------------
# Whole-process rows (children)


def child_pipeline(model: str, list_file: str, batch_size: str, threads: str,
                   mode: str) -> dict:
    """A fresh process doing what a pipeline() user does: read the files, transcribe.

    ``mode`` "arrays": read the WAVs with soundfile, sort by length, pipeline(batch_size=N);
    "files": pipeline(path) file by file.
    """
    import soundfile as sf
    import torch
    from transformers import pipeline

    torch.set_num_threads(int(threads))
    paths = json.loads(Path(list_file).read_text(encoding="utf-8"))
    asr = pipeline("automatic-speech-recognition", model=model, device="cpu")
    loaded = time.perf_counter()
    if mode == "files":
        texts = [asr(p)["text"] for p in paths]
    else:
        arrays = []
        for path in paths:
            samples, rate = sf.read(path, dtype="float32")
            if rate != SAMPLE_RATE or samples.ndim != 1:
                raise SystemExit(f"{path}: not 16 kHz mono (the workspace cache should be)")
            arrays.append(samples)
        texts = pipeline_arrays(asr, arrays, length_order(arrays), int(batch_size))
    return {"texts": texts, "after_load_s": time.perf_counter() - loaded,
            "threads": torch.get_num_threads()}


def child_workbench(model: str, list_file: str, batch_seconds: str) -> dict:
    """``transcribe_files`` in a fresh process (when --batch-seconds is not the CLI's)."""
    from workbench.transcribe import load_recognizer, transcribe_files

    paths = json.loads(Path(list_file).read_text(encoding="utf-8"))
    recognizer = load_recognizer(model, device="cpu")
    loaded = time.perf_counter()
    results = transcribe_files(paths, recognizer, progress=False,
                               batch_seconds=float(batch_seconds))
    return {"texts": [r.text for r in results], "after_load_s": time.perf_counter() - loaded}


def whole_process_rows(model_dir: Path, clips: Clips, args, batch_size: int) -> list[Timing]:
    """Each side as a fresh child process; wall time, CPU time and peak RSS."""
    env = {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    me = [sys.executable, str(Path(__file__).resolve()), "--child"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-transcribe-") as tmp:
        list_file = Path(tmp) / "paths.json"
        list_file.write_text(json.dumps([str(p) for p in clips.paths]), encoding="utf-8")
        if args.batch_seconds == args.library_batch_s:  # what the CLI uses
            script = Path(sys.executable).with_name("workbench")
            cli = str(script) if script.exists() else "workbench"
            name = "workbench transcribe (CLI)"
            command = [cli, "transcribe", *map(str, clips.paths), "--model", str(model_dir),
                       "--json", "-q"]
        else:
            name = f"workbench transcribe_files({args.batch_seconds:g} s)"
            command = [*me, "workbench", str(model_dir), str(list_file), str(args.batch_seconds)]
        sides = [
            (name, command),
            (f"pipeline(batch_size={batch_size}), sorted arrays",
             [*me, "pipeline", str(model_dir), str(list_file), str(batch_size),
              str(args.threads), "arrays"]),
        ]
        if not args.skip_file_by_file:
            sides.append(("pipeline(path) file by file",
                          [*me, "pipeline", str(model_dir), str(list_file), "1",
                           str(args.threads), "files"]))
        for label, cmd in sides:
            run = run_child(label, cmd, env)
            try:
                data = json.loads(run.stdout)
            except json.JSONDecodeError:
                data = json.loads(run.stdout.strip().splitlines()[-1])
            texts = (data["texts"] if "texts" in data
                     else [r["text"] for r in data["results"]])
            row = Timing(label, run.seconds, clips.audio_seconds, texts)
            row.whole = {"cpu_s": run.cpu_seconds, "peak_mib": run.peak_rss_mib,
                         "after_load_s": data.get("after_load_s")}
            rows.append(row)
            print(f"  {label}: {run.seconds:.2f} s", flush=True)
    return rows


# ---------------------------------------------------------------------------------------------
# Report


def same_texts(a: Timing, b: Timing) -> int:
    return sum(x == y for x, y in zip(a.texts, b.texts, strict=True))


def table(rows: list[Timing], base: Timing, same_as: Timing) -> str:
    """Markdown: seconds, RTF, forward passes, padded audio, ratio, identical texts."""
    head = (f"| {'in one process, model loaded':<48} | seconds | RTF    | passes | padded s | "
            f"{'speed-up vs first row':<34} | same text as {same_as.name.split()[0]:<24} |")
    lines = [head, "|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|"]
    for row in rows:
        lines.append(f"| {row.name:<48} | {row.seconds:7.2f} | {row.rtf:.4f} | {row.passes:6d} |"
                     f" {row.padded_seconds:8.1f} | {base.seconds / row.seconds:33.2f}x | "
                     f"{same_texts(same_as, row):>20d}/{len(row.texts):<16d} |")
    return "\n".join(lines)


def whole_table(rows: list[Timing], same_as: Timing) -> str:
    head = (f"| {'whole process (imports, load, read, transcribe)':<48} | seconds | "
            f"after load | CPU s  | peak RSS MiB | {'speed-up vs pipeline batched':<34} | "
            f"same text as workbench |")
    lines = [head, "|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|"]
    for row in rows:
        after = row.whole.get("after_load_s")
        after_text = f"{after:10.2f}" if after is not None else f"{'-':>10}"
        lines.append(f"| {row.name:<48} | {row.seconds:7.2f} | {after_text} | "
                     f"{row.whole['cpu_s']:6.1f} | {row.whole['peak_mib']:12.0f} | "
                     f"{rows[1].seconds / row.seconds:33.2f}x | "
                     f"{same_texts(same_as, row):>14d}/{len(row.texts):<7d} |")
    return "\n".join(lines)


def show_differences(rows: list[Timing], base: Timing, limit: int = 3) -> None:
    for row in rows:
        diffs = [(a, b) for a, b in zip(base.texts, row.texts, strict=True) if a != b]
        for a, b in diffs[:limit]:
            print(f"  differs ({row.name}): workbench {a!r}\n{'':14}{'':{len(row.name)}}"
                  f"   this {b!r}")


def test_cer(timing: Timing, clips: Clips) -> float:
    from workbench.evaluate import error_rates

    pairs = [(r, h) for r, h, s in zip(clips.refs, timing.texts, clips.splits, strict=True)
             if s == "test"]
    if not pairs:
        return float("nan")
    return error_rates([r for r, _ in pairs], [h for _, h in pairs])["cer"]


def bench_model(model_dir: Path, ws, args) -> bool:
    """Sections 1-3 on the trained model; False when the workbench and the unbatched
    pipeline() do not give the same texts."""
    from workbench.transcribe import CHUNK_S, load_recognizer

    clips = load_clips(ws, tuple(args.splits.split(",")), max_clips=args.clips)
    recognizer = load_recognizer(model_dir, device="cpu")
    plan = workbench_plan(recognizer, clips.arrays, args.batch_seconds)
    matched = matched_sizes(len(clips.arrays), len(plan))
    print(f"\n== {model_dir}: {len(clips.paths)} clips ({args.splits}), "
          f"{clips.audio_seconds:.1f} s of audio; workbench: {len(plan)} forward passes of up "
          f"to {args.batch_seconds:g} s padded audio, {len(clips.arrays) / len(plan):.2f} clips "
          f"each -> pipeline batch_size {' and '.join(map(str, matched))}", flush=True)
    long_clips = sum(len(a) > CHUNK_S * SAMPLE_RATE for a in clips.arrays)
    if long_clips:
        print(f"note: {long_clips} clips are longer than {CHUNK_S:g} s: the workbench cuts them "
              "into overlapping windows, pipeline() (no chunk_length_s) runs them whole, so "
              "their texts may differ")
    asr = make_pipeline(model_dir)
    sizes = sorted({*matched, *(int(n) for n in args.pipeline_batch_sizes.split(",") if n)})
    rows: dict[str, Timing] = {}
    for round_ in range(args.repeat):
        runs = [("workbench transcribe_arrays (sorted batches)",
                 lambda n: run_workbench_arrays(n, recognizer, clips, args.batch_seconds))]
        for size in sizes:
            label = ("arrays sorted by length" if size > 1 else "arrays, one per pass")
            runs.append((f"pipeline(batch_size={size}), {label}",
                         lambda n, s=size: run_pipeline_arrays(n, asr, clips, s, True)))
        runs.append((f"pipeline(batch_size={matched[-1]}), arrays in clip order",
                     lambda n: run_pipeline_arrays(n, asr, clips, matched[-1], False)))
        runs.append(("workbench transcribe_files (reads the files)",
                     lambda n: run_workbench_files(n, recognizer, clips, args.batch_seconds)))
        if not args.skip_file_by_file:
            runs.append(("pipeline(path) file by file (ffmpeg per file)",
                         lambda n: run_pipeline_files(n, asr, clips)))
        for name, fn in (runs if round_ % 2 == 0 else runs[::-1]):
            timing = fn(name)
            if name not in rows or timing.seconds < rows[name].seconds:
                rows[name] = timing
            print(f"  round {round_ + 1} {name}: {timing.seconds:.2f} s", flush=True)
    ours = rows["workbench transcribe_arrays (sorted batches)"]
    # The headline reference: the faster of the matched batch sizes (the one that favours it).
    reference = min((rows[f"pipeline(batch_size={n}), arrays sorted by length"] for n in matched
                     if n > 1), key=lambda r: r.seconds,
                    default=rows.get("pipeline(batch_size=1), arrays, one per pass"))
    ordered = [reference, *[r for r in rows.values() if r is not reference]]
    print(f"\nbest of {args.repeat}; {args.threads} threads everywhere; passes = forward passes,"
          " padded s = audio the forward passes ran over, padding included\n")
    print(table(ordered, reference, ours))
    show_differences(ordered, ours)
    print(f"\nworkbench / {reference.name.split(',')[0]} (the faster matched size) on the same "
          "sorted arrays: "
          f"{reference.seconds / ours.seconds:.2f}x ({ours.passes} and {reference.passes} "
          f"forward passes over {ours.padded_seconds:.1f} and {reference.padded_seconds:.1f} s "
          "of padded audio). The sorted order is given to pipeline() here; it does not sort "
          "itself (see the clip-order row).")
    unbatched = rows.get("pipeline(path) file by file (ffmpeg per file)") or rows.get(
        "pipeline(batch_size=1), arrays, one per pass")
    exact = unbatched is None or same_texts(ours, unbatched) == len(clips.paths)
    if unbatched is not None:
        print(f"workbench texts identical to {unbatched.name}: "
              f"{same_texts(ours, unbatched)}/{len(clips.paths)}")

    if not args.skip_whole:
        print("\nwhole process, one fresh child per side ...", flush=True)
        size = reference.batch_size
        whole = whole_process_rows(model_dir, clips, args, size)
        print()
        print(whole_table(whole, ours))
        show_differences(whole, ours)
        print(f"whole process, workbench / pipeline(batch_size={size}): "
              f"{whole[1].seconds / whole[0].seconds:.2f}x wall, "
              f"{whole[1].whole['cpu_s'] / whole[0].whole['cpu_s']:.2f}x CPU seconds, peak RSS "
              f"{whole[0].whole['peak_mib']:.0f} against {whole[1].whole['peak_mib']:.0f} MiB "
              "(the workbench child is the CLI; the pipeline child is a minimal script that "
              "imports only transformers and soundfile)")

    if not args.skip_onnx:
        bench_onnx(model_dir, clips, ours, args)
    return exact


def bench_onnx(model_dir: Path, clips: Clips, torch_row: Timing, args) -> None:
    from workbench.transcribe import load_recognizer

    fp32_dir, int8_dir = exports(model_dir, args.cache / cache_key(model_dir))
    onnx32 = run_workbench_arrays("workbench ONNX fp32", load_recognizer(fp32_dir), clips,
                                  args.batch_seconds)
    onnx8 = run_workbench_arrays("workbench ONNX int8", load_recognizer(int8_dir), clips,
                                 args.batch_seconds)
    rows = [torch_row, onnx32, onnx8]
    print("\n" + table(rows, torch_row, torch_row))
    for row in rows:
        print(f"{row.name:48s} test CER {100 * test_cer(row, clips):6.2f}%")
    drift = 100 * (test_cer(onnx8, clips) - test_cer(onnx32, clips))
    print(f"int8 - fp32 CER: {drift:+.2f} points (required within 0.5)")


def bench_xlsr(processor_dir: Path, ws, args) -> None:
    """Section 4: RTF of the XLS-R-300M architecture."""
    from workbench.transcribe import load_recognizer

    cache = args.cache / "xlsr-300m-random"
    model_dir = xlsr_model(processor_dir, cache / "model")
    clips = load_clips(ws, SPLITS[::-1], args.xlsr_seconds)
    fp32_dir, int8_dir = exports(model_dir, cache)
    print(f"\n== XLS-R-300M architecture (random init): {len(clips.paths)} clips, "
          f"{clips.audio_seconds:.1f} s", flush=True)
    recognizer = load_recognizer(model_dir, device="cpu")
    torch_run = run_workbench_arrays("workbench batched (torch)", recognizer, clips,
                                     args.batch_seconds)
    rows = [torch_run]
    if not args.skip_pipeline_xlsr:
        asr = make_pipeline(model_dir)
        for size in matched_sizes(len(clips.arrays), torch_run.passes)[::-1]:
            reference = run_pipeline_arrays(f"pipeline(batch_size={size}), sorted arrays",
                                            asr, clips, size, True)
            rows.insert(0, reference)
        del asr
        print("(pipeline texts can differ from the workbench's on a random model: near-ties "
              "flip, and pipeline() decodes the padding frames of a batch too)")
    del recognizer
    rows.append(run_workbench_arrays("workbench ONNX fp32", load_recognizer(fp32_dir), clips,
                                     args.batch_seconds))
    rows.append(run_workbench_arrays("workbench ONNX int8", load_recognizer(int8_dir), clips,
                                     args.batch_seconds))
    print(table(rows, rows[0], torch_run))
    print(f"int8 RTF {rows[-1].rtf:.3f} (aim <= 0.25 on 2 cores)")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        kind, *rest = sys.argv[2:]
        result = child_pipeline(*rest) if kind == "pipeline" else child_workbench(*rest)
        print(json.dumps(result, ensure_ascii=False))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="trained run or model folder (default: "
                        "fine-tune demo-base on the demo corpus first)")
    parser.add_argument("--workspace", type=Path, help="the workspace of --model's clips")
    parser.add_argument("--train-steps", type=int, default=0,
                        help="without --model: train this many steps (0: the preset's schedule)")
    parser.add_argument("--splits", default="train,dev,test",
                        help="clips to transcribe (default: all 180 of the demo corpus)")
    parser.add_argument("--clips", type=int, default=0, help="at most this many clips (0: all)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for every backend")
    parser.add_argument("--batch-seconds", type=float,
                        help="workbench padded audio per forward pass (default: the library's "
                        "BATCH_S, which the CLI uses)")
    parser.add_argument("--pipeline-batch-sizes", default="1",
                        help="pipeline() batch sizes besides the matched one (comma-separated)")
    parser.add_argument("--repeat", type=int, default=1, help="best of N per in-process row")
    parser.add_argument("--cache", type=Path,
                        default=Path(tempfile.gettempdir()) / "workbench-bench-transcribe",
                        help="where ONNX exports and the XLS-R model are kept between runs")
    parser.add_argument("--skip-onnx", action="store_true")
    parser.add_argument("--skip-whole", action="store_true", help="skip the child processes")
    parser.add_argument("--skip-file-by-file", action="store_true",
                        help="skip the pipeline(path) rows (slow: one ffmpeg per file)")
    parser.add_argument("--xlsr", action="store_true",
                        help="also time the XLS-R-300M architecture (random init)")
    parser.add_argument("--xlsr-seconds", type=float, default=60.0)
    parser.add_argument("--skip-pipeline-xlsr", action="store_true")
    args = parser.parse_args()

    import torch

    from workbench.transcribe import BATCH_S
    from workbench.workspace import Workspace

    args.library_batch_s = BATCH_S
    if args.batch_seconds is None:
        args.batch_seconds = BATCH_S
    torch.set_num_threads(args.threads)  # ONNX Runtime follows torch.get_num_threads()
    print(f"# Transcription speed ({machine_line()}; torch {torch.__version__}, "
          f"{args.threads} threads; command: python bench/transcribe_speed.py "
          f"{' '.join(sys.argv[1:])})")
    if args.model:
        if not args.workspace:
            parser.error("--model needs --workspace (the clips to transcribe)")
        ws, model = Workspace.at(args.workspace), args.model
    else:
        ws, model = build_demo_run(Path(tempfile.mkdtemp(prefix="bench-transcribe-")),
                                   args.train_steps)
    from workbench.transcribe import find_model_dir

    model_dir = find_model_dir(model)  # a run folder's model/, or the model folder itself
    exact = bench_model(model_dir, ws, args)
    if args.xlsr:
        bench_xlsr(model_dir, ws, args)
    if not exact:
        raise SystemExit("workbench and unbatched pipeline() texts differ")


if __name__ == "__main__":
    main()
