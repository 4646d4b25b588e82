"""Transcription speed on CPU: workbench batched inference and ONNX Runtime vs. pipeline().

Same model, same clips, same threads, one process:

1. workbench ``transcribe_files`` (length-sorted batches of up to ``--batch-seconds`` of padded
   audio) against the reference, ``transformers.pipeline("automatic-speech-recognition")``
   called file by file. Both start from the audio files; model loading is not timed. The
   texts must be identical (the script fails otherwise).
2. The same model exported with ``workbench export --onnx`` (fp32) and ``--onnx --int8``,
   run through the same batching code in ONNX Runtime: speed-up over torch and test CER.
3. (``--xlsr``) A random-init model of the XLS-R-300M architecture (wav2vec2 large, 315M
   parameters) with the workspace's processor, on ``--xlsr-seconds`` of audio: RTF of torch,
   pipeline(), ONNX fp32 and int8. Its exports are cached in ``--cache`` (made once: a few
   minutes and about 5.5 GB of RAM).

    python bench/transcribe_speed.py        # demo corpus; fine-tunes demo-base first (~4 min)
    python bench/transcribe_speed.py --model RUN --workspace WS   # reuse a trained run
    python bench/transcribe_speed.py --model RUN --workspace WS --xlsr --threads 2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from workbench.evaluate import error_rates  # noqa: E402
from workbench.onnx_export import METADATA_FILE, Int8Options, export_onnx  # noqa: E402
from workbench.transcribe import BATCH_S, load_recognizer, transcribe_files  # noqa: E402
from workbench.workspace import Workspace  # noqa: E402

SPLITS = ("train", "dev", "test")


@dataclass
class Timing:
    """One backend's pass over the clips."""

    name: str
    seconds: float
    audio_seconds: float
    texts: list[str]

    @property
    def rtf(self) -> float:
        return self.seconds / self.audio_seconds


# ---------------------------------------------------------------------------------------------
# Setup


def build_demo_run(root: Path) -> tuple[Workspace, Path]:
    """The demo flow: bundled Quechua corpus, vocab, demo-base fine-tuned with the 10min preset."""
    from data_recipes import prepare_sources
    from data_recipes.synthetic import DEMO_ARCHIVE, unpack_corpus
    from workbench.config import build_config
    from workbench.demo import DEMO_MODEL, DEMO_OVERRIDES
    from workbench.train import train
    from workbench.vocab import build_workspace_vocab

    source = unpack_corpus(DEMO_ARCHIVE, root / "source")
    ws = Workspace.at(root / "ws")
    prepare_sources([source], ws, progress=False)
    build_workspace_vocab(ws)
    config = build_config(preset="10min",
                          overrides=[f"model.name={DEMO_MODEL}", *DEMO_OVERRIDES])
    print(f"fine-tuning {DEMO_MODEL} on the demo corpus (10min preset) ...", flush=True)
    result = train(ws, config, progress=False)
    return ws, result.run_dir


def xlsr_model(processor_dir: Path, out: Path) -> Path:
    """A seeded random-init XLS-R-300M-architecture CTC model with the workspace processor."""
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


def exports(model_dir: Path, cache: Path, int8_options: Int8Options) -> tuple[Path, Path]:
    """fp32 and int8 ONNX exports of ``model_dir`` in ``cache`` (reused when present; the
    int8 one is made again when it was quantized with other settings)."""
    fp32, int8 = cache / "onnx", cache / "onnx-int8"
    if not (fp32 / "model.onnx").is_file():
        print(f"exporting {model_dir} to ONNX ...", flush=True)
        export_onnx(model_dir, fp32)
    if not (int8 / "model.onnx").is_file() or not same_int8_settings(int8, int8_options):
        print(f"quantizing {fp32} to int8 ...", flush=True)
        export_onnx(fp32, int8, int8=True, int8_options=int8_options)
    return fp32, int8


def same_int8_settings(export_dir: Path, options: Int8Options) -> bool:
    """Whether the export's metadata records ``options`` (JSON keeps tuples as lists)."""
    path = export_dir / METADATA_FILE
    if not path.is_file():
        return False
    recorded = json.loads(path.read_text(encoding="utf-8")).get("settings", {})
    return recorded == json.loads(json.dumps(asdict(options)))


# ---------------------------------------------------------------------------------------------
# Runs


def run_workbench(name: str, model: Path, paths: list[Path], batch_seconds: float) -> Timing:
    recognizer = load_recognizer(model, device="cpu")
    transcribe_files(paths[:1], recognizer, progress=False)  # warm-up
    started = time.perf_counter()
    results = transcribe_files(paths, recognizer, progress=False, batch_seconds=batch_seconds)
    seconds = time.perf_counter() - started
    bad = [r for r in results if not r.ok]
    if bad:
        raise SystemExit(f"{bad[0].path}: {bad[0].error}")
    return Timing(name, seconds, sum(r.duration for r in results), [r.text for r in results])


def run_pipeline(model: Path, paths: list[Path], audio_seconds: float) -> Timing:
    """The reference: transformers.pipeline() on one file at a time."""
    from transformers import pipeline

    asr = pipeline("automatic-speech-recognition", model=str(model), device="cpu")
    asr(str(paths[0]))  # warm-up
    started = time.perf_counter()
    texts = [asr(str(p))["text"] for p in paths]
    return Timing("pipeline() file by file", time.perf_counter() - started, audio_seconds, texts)


def clip_paths(ws: Workspace, splits: tuple[str, ...], max_seconds: float = 0.0
               ) -> tuple[list[Path], list[str], list[str]]:
    """Audio paths, references (normalised) and split names, up to ``max_seconds`` of audio."""
    from workbench.text import load_profile, normalize

    profile = load_profile(ws.profile_path)
    paths, refs, names, total = [], [], [], 0.0
    for split in splits:
        for utt in ws.read_split(split):
            if max_seconds and total >= max_seconds:
                break
            paths.append(ws.audio_path(utt))
            refs.append(normalize(utt.text, profile))
            names.append(split)
            total += utt.duration
    return paths, refs, names


# ---------------------------------------------------------------------------------------------
# Report


def table(rows: list[Timing], base: Timing) -> str:
    lines = [f"{'':34s} {'seconds':>8s} {'audio s':>8s} {'RTF':>7s} {'speed-up':>9s}"]
    for row in rows:
        lines.append(f"{row.name:34s} {row.seconds:8.2f} {row.audio_seconds:8.1f} "
                     f"{row.rtf:7.4f} {base.seconds / row.seconds:8.2f}x")
    return "\n".join(lines)


def test_cer(timing: Timing, refs: list[str], splits: list[str]) -> float:
    pairs = [(r, h) for r, h, s in zip(refs, timing.texts, splits, strict=True) if s == "test"]
    return error_rates([r for r, _ in pairs], [h for _, h in pairs])["cer"]


def same_texts(a: Timing, b: Timing) -> int:
    return sum(x == y for x, y in zip(a.texts, b.texts, strict=True))


def bench_model(model_dir: Path, ws: Workspace, args: argparse.Namespace) -> None:
    """Sections 1 and 2 on the trained model."""
    paths, refs, splits = clip_paths(ws, tuple(args.splits.split(",")))
    print(f"\n== {model_dir}: {len(paths)} clips ({args.splits})", flush=True)
    batched = run_workbench("workbench batched (torch)", model_dir, paths, args.batch_seconds)
    reference = run_pipeline(model_dir, paths, batched.audio_seconds)
    print(table([reference, batched], reference))
    identical = same_texts(reference, batched)
    print(f"identical texts: {identical}/{len(paths)}; throughput ratio "
          f"{reference.seconds / batched.seconds:.2f}x (target >= 2.5x)")
    if identical != len(paths):
        raise SystemExit("workbench and pipeline() texts differ")
    if args.skip_onnx:
        return
    fp32_dir, int8_dir = exports(model_dir, args.cache / cache_key(model_dir), Int8Options())
    onnx32 = run_workbench("workbench ONNX fp32", fp32_dir, paths, args.batch_seconds)
    onnx8 = run_workbench("workbench ONNX int8", int8_dir, paths, args.batch_seconds)
    print("\n" + table([batched, onnx32, onnx8], batched))
    for row in (batched, onnx32, onnx8):
        print(f"{row.name:34s} test CER {100 * test_cer(row, refs, splits):6.2f}%  "
              f"texts identical to torch {same_texts(batched, row)}/{len(paths)}")
    drift = 100 * (test_cer(onnx8, refs, splits) - test_cer(onnx32, refs, splits))
    print(f"int8 - fp32 CER: {drift:+.2f} points (required within 0.5)")


def bench_xlsr(processor_dir: Path, ws: Workspace, args: argparse.Namespace) -> None:
    """Section 3: RTF of the XLS-R-300M architecture."""
    cache = args.cache / "xlsr-300m-random"
    model_dir = xlsr_model(processor_dir, cache / "model")
    paths, _, _ = clip_paths(ws, SPLITS[::-1], args.xlsr_seconds)
    fp32_dir, int8_dir = exports(model_dir, cache, Int8Options())
    print(f"\n== XLS-R-300M architecture (random init): {len(paths)} clips", flush=True)
    torch_run = run_workbench("workbench batched (torch)", model_dir, paths, args.batch_seconds)
    rows = [torch_run]
    if not args.skip_pipeline_xlsr:
        reference = run_pipeline(model_dir, paths, torch_run.audio_seconds)
        rows.insert(0, reference)
        print(f"(pipeline texts identical to torch batched: {same_texts(reference, torch_run)}"
              f"/{len(paths)}; a random model's near-ties may flip)")
    rows.append(run_workbench("workbench ONNX fp32", fp32_dir, paths, args.batch_seconds))
    rows.append(run_workbench("workbench ONNX int8", int8_dir, paths, args.batch_seconds))
    print(table(rows, rows[0]))
    print(f"int8 RTF {rows[-1].rtf:.3f} (aim <= 0.25 on 2 cores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="trained run or model folder (default: "
                        "fine-tune demo-base on the demo corpus first)")
    parser.add_argument("--workspace", type=Path, help="the workspace of --model's clips")
    parser.add_argument("--splits", default="train,dev,test",
                        help="clips to transcribe (default: all 180 of the demo corpus)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for every backend")
    parser.add_argument("--batch-seconds", type=float, default=BATCH_S)
    parser.add_argument("--cache", type=Path,
                        default=Path(tempfile.gettempdir()) / "workbench-bench-transcribe",
                        help="where ONNX exports and the XLS-R model are kept between runs")
    parser.add_argument("--skip-onnx", action="store_true")
    parser.add_argument("--xlsr", action="store_true",
                        help="also time the XLS-R-300M architecture (random init)")
    parser.add_argument("--xlsr-seconds", type=float, default=60.0)
    parser.add_argument("--skip-pipeline-xlsr", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # ONNX Runtime follows torch.get_num_threads()
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} threads")
    if args.model:
        if not args.workspace:
            parser.error("--model needs --workspace (the clips to transcribe)")
        ws, model = Workspace.at(args.workspace), args.model
    else:
        ws, model = build_demo_run(Path(tempfile.mkdtemp(prefix="bench-transcribe-")))
    model_dir = model / "model" if (model / "model").is_dir() else model
    bench_model(model_dir, ws, args)
    if args.xlsr:
        bench_xlsr(model_dir, ws, args)


if __name__ == "__main__":
    main()
