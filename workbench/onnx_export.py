"""Export a trained CTC model to ONNX for ONNX Runtime on CPU, optionally with int8 weights.

An export folder is self-contained; ``workbench transcribe --model FOLDER`` (and
:func:`workbench.transcribe.load_recognizer`) runs it without the torch weights::

    model.onnx         input_values (batch, samples) float32
                       [+ attention_mask (batch, samples) int64, layer-norm models]
                       -> logits (batch, frames, vocab) float32; batch and time are dynamic
    config.json        the model config (frame arithmetic, vocabulary size, feature norm)
    processor files    preprocessor/processor config, vocab.json, tokenizer_config.json
    onnx_export.json   what was exported, how, and how closely it matches the source

Exporter: ``torch.onnx.export(dynamo=True)`` (torch.export, then onnxscript). The older
TorchScript exporter (``dynamo=False``) traces the frame-length arithmetic of the feature
encoder into constants and gives wrong logits for other input lengths (max |diff| about 10
on the demo model), so it is not used. Every export is checked: ONNX Runtime and torch run a
padded batch of other lengths than the one traced, and the logits must agree.

Int8 (``int8=True``): ONNX Runtime dynamic quantization of the matrix multiplications
(transformer projections and feed-forward, the output layer). Weights are stored as int8
once; activations are quantized per batch at run time. The erf GELUs are fused into single
operators first (about 7% faster on XLS-R-300M). The convolutional feature encoder and the
positional convolution stay fp32: ONNX Runtime's x86 ConvInteger is slower than its fp32
Conv (the whole XLS-R-300M graph ran 1.8x slower with it, AVX2), and a MatMul rewrite of the
encoder convolutions was no faster. An int8 export is made from the fp32 one (kept alongside
when both are asked for), or from an existing fp32 export folder without torch. The activation scale
is taken over the whole padded batch, so an int8 model's text can depend slightly on which
clips share a batch (fp32 exports give the torch text whatever the batching).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.audio import SAMPLE_RATE
from workbench.errors import WorkbenchError
from workbench.fsio import staged_dir
from workbench.onnx_inference import ONNX_FILE, find_onnx_file, import_onnxruntime
from workbench.run import run_of_model_dir

OPSET = 18
METADATA_FILE = "onnx_export.json"
CHECK_SECONDS = (2.0, 1.3, 0.7)  # the check batch: padded, none of the traced lengths
TRACE_SECONDS = (1.6, 1.1)  # the example batch torch.export traces (batch and time dynamic)
LOGIT_TOLERANCE = 1e-3  # most |onnx - torch| logit difference, relative to the largest logit


@dataclass(frozen=True)
class Int8Options:
    """How ONNX Runtime quantizes the weights (``onnxruntime.quantization``).

    Attributes:
        op_types: Operators whose weights become int8.
        per_channel: One scale per output channel (more accurate) instead of per tensor.
        reduce_range: 7-bit weights: avoids int16 overflow in the AVX2 u8s8 kernels of CPUs
            without VNNI, at a small cost in precision.
        fuse_gelu: Fuse the erf GELUs into single operators first (about 7% faster on
            XLS-R-300M, same arithmetic).
    """

    op_types: tuple[str, ...] = ("MatMul", "Gemm")
    per_channel: bool = True
    reduce_range: bool = False
    fuse_gelu: bool = True


@dataclass
class ExportResult:
    """What :func:`export_onnx` wrote.

    Attributes:
        out_dir: The export folder.
        onnx_path: Its ``model.onnx``.
        source: The model or export folder it was made from.
        int8: Whether the weights are int8.
        max_logit_diff: Largest |onnx - torch| logit on the check batch (fp32 exports).
        greedy_agreement: Share of check-batch frames whose best token matches fp32 (int8).
        size_mb: Size of ``model.onnx`` (and its external data) in MB.
        seconds: Time the export took.
    """

    out_dir: Path
    onnx_path: Path
    source: Path
    int8: bool
    max_logit_diff: float | None = None
    greedy_agreement: float | None = None
    size_mb: float = 0.0
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("out_dir", "onnx_path", "source"):
            data[key] = str(data[key])
        return data


# ---------------------------------------------------------------------------------------------
# Entry point


def export_onnx(
    model: str | Path,
    out_dir: str | Path | None = None,
    *,
    int8: bool = False,
    int8_options: Int8Options | None = None,
    keep_fp32: bool = False,
    opset: int = OPSET,
    lm: Path | None = None,
    language: str = "und",
) -> ExportResult:
    """Export a trained model (or quantize an fp32 export) to a self-contained ONNX folder.

    Args:
        model: A run folder, a Hugging Face model folder, or (with ``int8``) an fp32 ONNX
            export folder from an earlier call.
        out_dir: Where to write; by default next to the model (see :func:`default_out_dir`).
        int8: Quantize the matrix multiplications to int8 (see the module docstring).
        int8_options: Quantization settings (default :class:`Int8Options`).
        keep_fp32: With ``int8`` from a torch model, also keep the fp32 export, in
            ``<out_dir>-fp32`` (saves a second export when both are wanted).
        opset: ONNX opset of the graph.
        lm: A language model folder to carry in ``lm/`` (an int8 export of an fp32 export
            carries the fp32 export's own ``lm/`` unless another is given).
        language: The card's language code (ISO 639; ``und`` when not given).

    Returns:
        What was written, with the check results.

    Raises:
        WorkbenchError: The model cannot be loaded, the output folder is the model folder,
            onnx/onnxruntime is missing, or the exported graph does not match the model.
    """
    started = time.monotonic()
    source = Path(model).expanduser()
    onnx_source = find_onnx_file(source)
    if onnx_source is not None and not int8:
        raise WorkbenchError(
            f"{source} is already an ONNX export; add --int8 to quantize it, or give the run "
            "or model folder to export again."
        )
    out = _resolve_out_dir(source, out_dir, int8=int8)
    # Built under a staging name and swapped in whole: a failed or interrupted export (or a
    # full disk) leaves the previous export as it was.
    with staged_dir(out, what="the ONNX export", needed=_needed_bytes(source),
                    fault="onnx") as staging:
        if onnx_source is not None:
            result = _quantize_export(onnx_source.parent, staging,
                                      int8_options or Int8Options())
        elif int8:
            fp32_dir = out.with_name(out.name + "-fp32") if keep_fp32 else None
            result = _export_int8_from_torch(source, staging, fp32_dir, int8_options, opset)
        else:
            result = _export_fp32(source, staging, opset)
        result.out_dir, result.onnx_path = out, out / ONNX_FILE
        result.seconds = round(time.monotonic() - started, 1)
        _write_metadata(result, staging)
        _write_lm_and_card(source, onnx_source, staging, lm, language)
    return result


def _write_lm_and_card(source: Path, onnx_source: Path | None, staging: Path,
                       lm: Path | None, language: str) -> None:
    """Carry the language model (if any) and write the Hugging Face model card."""
    from workbench.lm.store import bundle_lm, read_info
    from workbench.model_card import model_card
    from workbench.run import run_of_model_dir

    if lm is None and onnx_source is not None and (onnx_source.parent / "lm").is_dir():
        lm = onnx_source.parent / "lm"
    info = None
    if lm is not None:
        bundle_lm(Path(lm), staging / "lm")
        info = read_info(staging / "lm")
    run = run_of_model_dir(source) or run_of_model_dir(source.parent)
    card = model_card(run.root if run else None, language=language, lm=info)
    (staging / "README.md").write_text(card, encoding="utf-8")


def _needed_bytes(source: Path) -> int:
    """About what an export writes: the model once more, and as much again while checking."""
    weights = [p for p in source.rglob("*.safetensors")] if source.is_dir() else []
    onnx = [p for p in source.rglob("*.onnx")] if source.is_dir() else [source]
    return 2 * sum(p.stat().st_size for p in (weights or onnx) if p.is_file())


def default_out_dir(model_dir: Path, *, int8: bool) -> Path:
    """``runs/<id>/onnx[-int8]`` for a run's model, else ``<model>-onnx[-int8]`` beside it."""
    if find_onnx_file(model_dir) is not None:
        return model_dir.with_name(f"{model_dir.name}-int8")
    run = run_of_model_dir(model_dir.parent)
    if run is not None and run.model_dir.resolve() == model_dir.resolve():
        return run.onnx_dir(int8)
    return model_dir.with_name(f"{model_dir.name}-{'onnx-int8' if int8 else 'onnx'}")


def _resolve_out_dir(source: Path, out_dir: str | Path | None, *, int8: bool) -> Path:
    from workbench.recognizer import find_model_dir

    if find_onnx_file(source) is not None:
        model_dir = find_onnx_file(source).parent
    else:
        model_dir = find_model_dir(source)
    out = Path(out_dir).expanduser() if out_dir else default_out_dir(model_dir, int8=int8)
    if out.resolve() == model_dir.resolve():
        raise WorkbenchError(
            f"The export folder {out} is the model folder itself; choose another with -o."
        )
    if out.is_file():
        raise WorkbenchError(f"{out} is a file; give a folder for the export with -o.")
    return out


# ---------------------------------------------------------------------------------------------
# fp32 export from torch


def _export_fp32(source: Path, out: Path, opset: int) -> ExportResult:
    from workbench.recognizer import load_recognizer

    recognizer = load_recognizer(source, device="cpu")
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / ONNX_FILE
    inputs = _example_inputs(recognizer, CHECK_SECONDS)
    expected = recognizer.batch_logits(inputs)  # before export folds the weight norm
    _torch_to_onnx(recognizer, onnx_path, opset)
    _copy_support_files(recognizer, out)
    diff = check_logits(recognizer, onnx_path, inputs, expected)
    return ExportResult(out, onnx_path, recognizer.model_dir, False, max_logit_diff=diff,
                        size_mb=_size_mb(onnx_path), settings={"opset": opset})


def _export_int8_from_torch(source: Path, out: Path, fp32_dir: Path | None,
                            options: Int8Options | None, opset: int) -> ExportResult:
    if fp32_dir is not None:
        with staged_dir(fp32_dir, what="the fp32 ONNX export", fault="onnx") as staging:
            fp32 = _export_fp32(source, staging, opset)
            fp32.out_dir, fp32.onnx_path = fp32_dir, fp32_dir / ONNX_FILE
            _write_metadata(fp32, staging)
        return _quantize_export(fp32_dir, out, options or Int8Options())
    with tempfile.TemporaryDirectory(prefix="workbench-onnx-") as tmp:
        _export_fp32(source, Path(tmp), opset)
        result = _quantize_export(Path(tmp), out, options or Int8Options())
    result.source = source
    return result


def _logits_module(model: Any) -> Any:
    """The module export traces: audio (and mask) in, logits out."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_values: Any, attention_mask: Any = None) -> Any:
            return self.inner(input_values=input_values, attention_mask=attention_mask).logits

    return Logits(model).eval()


def _torch_to_onnx(recognizer: Any, path: Path, opset: int) -> None:
    """Trace the model with dynamic batch and time axes and save the ONNX graph."""
    import torch

    _require_exporter()
    _fold_weight_norm(recognizer.model)
    inputs = _example_inputs(recognizer, TRACE_SECONDS)
    names = list(inputs)
    dims = {name: {0: torch.export.Dim.DYNAMIC, 1: torch.export.Dim.DYNAMIC} for name in names}
    args = tuple(torch.from_numpy(inputs[name]) for name in names)
    with torch.inference_mode(False), torch.no_grad():
        try:
            program = torch.onnx.export(
                _logits_module(recognizer.model), args, dynamo=True, opset_version=opset,
                input_names=names, output_names=["logits"], dynamic_shapes=dims,
                verbose=False,
            )
        except Exception as err:  # noqa: BLE001 - exporter failures come in many types
            raise WorkbenchError(
                f"ONNX export of {recognizer.model_dir} failed ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''})."
            ) from err
    program.save(str(path))


def _fold_weight_norm(model: Any) -> None:
    """Store weight-normed weights (the positional convolution) as plain tensors.

    Otherwise the graph recomputes ``g * v / |v|`` on every call, and the weight is not an
    initializer, which quantization needs.
    """
    from torch.nn.utils import parametrize

    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)


def _require_exporter() -> None:
    """onnx and onnxscript, which the dynamo exporter needs, or a clear message."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise WorkbenchError(
            f"ONNX export needs {' and '.join(missing)}: `pip install onnx onnxscript "
            "onnxruntime`, or install the workbench with its onnx extra."
        )
    import_onnxruntime()


def _example_inputs(recognizer: Any, seconds: tuple[float, ...]) -> dict[str, np.ndarray]:
    """A padded batch of seeded noise, as the processor makes it."""
    rng = np.random.default_rng(0)
    arrays = [(0.1 * rng.standard_normal(int(s * SAMPLE_RATE))).astype(np.float32)
              for s in seconds]
    inputs = recognizer.feature_extractor(
        arrays, sampling_rate=SAMPLE_RATE, padding=True, return_tensors="np",
        return_attention_mask=recognizer.pads_safely,
    )
    out = {"input_values": inputs["input_values"].astype(np.float32)}
    if recognizer.pads_safely:
        out["attention_mask"] = inputs["attention_mask"].astype(np.int64)
    return out


def check_logits(recognizer: Any, onnx_path: Path, inputs: dict[str, np.ndarray],
                 expected: np.ndarray) -> float:
    """Largest |onnx - torch| logit on the padded check batch; raise if they disagree.

    Args:
        recognizer: The torch model (for frame arithmetic and config).
        onnx_path: The exported graph.
        inputs: The check batch (:func:`_example_inputs` of ``CHECK_SECONDS``).
        expected: The torch logits of ``inputs``.

    Raises:
        WorkbenchError: The shapes differ or the difference exceeds ``LOGIT_TOLERANCE``
            times the largest logit (the export is wrong).
    """
    from workbench.onnx_inference import load_onnx_model

    got = load_onnx_model(onnx_path, recognizer.config).logits(
        inputs["input_values"], inputs.get("attention_mask"))
    if got.shape != expected.shape:
        raise WorkbenchError(
            f"The ONNX export gives logits of shape {got.shape}, torch {expected.shape}; the "
            "export is wrong for this model."
        )
    valid = [recognizer.output_frames(n) for n in inputs.get(
        "attention_mask", np.ones(inputs["input_values"].shape)).sum(axis=1)]
    diff = max(float(np.abs(got[b, :n] - expected[b, :n]).max(initial=0.0))
               for b, n in enumerate(valid))
    scale = max(1.0, float(np.abs(expected).max()))
    if not diff <= LOGIT_TOLERANCE * scale:
        raise WorkbenchError(
            f"The ONNX export differs from the torch model by up to {diff:.3g} in the logits "
            f"(largest logit {scale:.3g}); the export is wrong for this model."
        )
    return diff


def _copy_support_files(recognizer: Any, out: Path) -> None:
    """config.json and the processor, so the folder loads on its own."""
    recognizer.config.save_pretrained(out)
    recognizer.processor.save_pretrained(out)


# ---------------------------------------------------------------------------------------------
# int8


def _quantize_export(fp32_dir: Path, out: Path, options: Int8Options) -> ExportResult:
    """Quantize ``fp32_dir/model.onnx`` into ``out`` with the support files."""
    from workbench.recognizer import load_recognizer

    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / ONNX_FILE
    quantize_int8(fp32_dir / ONNX_FILE, onnx_path, options)
    for item in fp32_dir.iterdir():
        if item.is_file() and item.suffix in (".json", ".txt") and item.name != METADATA_FILE:
            shutil.copy2(item, out / item.name)
    fp32 = load_recognizer(fp32_dir)
    agreement = greedy_agreement(fp32, load_recognizer(out))
    return ExportResult(out, onnx_path, fp32_dir, True, greedy_agreement=agreement,
                        size_mb=_size_mb(onnx_path), settings=asdict(options))


def quantize_int8(src: Path, dst: Path, options: Int8Options) -> None:
    """Dynamic int8 quantization of the weights of ``options.op_types`` in ``src``.

    With ``options.fuse_gelu`` the erf GELUs are first fused into single operators.
    """
    import_onnxruntime()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="workbench-onnx-fuse-") as tmp:
        if options.fuse_gelu:
            src = fuse_gelu(src, Path(tmp) / ONNX_FILE)
        quantize_dynamic(
            str(src), str(dst), op_types_to_quantize=list(options.op_types),
            per_channel=options.per_channel, reduce_range=options.reduce_range,
            weight_type=QuantType.QInt8,
            extra_options={"MatMulConstBOnly": True},
        )


def fuse_gelu(src: Path, dst: Path) -> Path:
    """Save ``src`` to ``dst`` with each erf GELU (``x * 0.5 * (1 + erf(x / sqrt 2))``, seven
    operators) fused into one ``Gelu``/``BiasGelu`` (onnxruntime.transformers; the graph
    optimizations of a session do not match the exporter's pattern). Nothing else changes.
    """
    import logging

    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    fusions = FusionOptions("bert")
    for name in ("enable_attention", "enable_skip_layer_norm", "enable_embed_layer_norm",
                 "enable_bias_skip_layer_norm", "enable_layer_norm", "enable_rotary_embeddings"):
        if hasattr(fusions, name):
            setattr(fusions, name, False)
    quiet = logging.getLogger("onnxruntime.transformers")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "shape inference failed" notes: shapes are not needed
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            model = optimizer.optimize_model(str(src), model_type="bert", num_heads=0,
                                             hidden_size=0, opt_level=0,
                                             optimization_options=fusions)
    finally:
        quiet.setLevel(level)
    model.save_model_to_file(str(dst), use_external_data_format=True,
                             all_tensors_to_one_file=True)
    return dst


def greedy_agreement(reference: Any, other: Any) -> float:
    """Share of check-batch frames where ``other``'s best token is ``reference``'s."""
    inputs = _example_inputs(reference, CHECK_SECONDS)
    a = reference.batch_logits(inputs).argmax(-1)
    b = other.batch_logits(inputs).argmax(-1)
    return round(float((a == b).mean()), 4)


# ---------------------------------------------------------------------------------------------
# Metadata


def _size_mb(onnx_path: Path) -> float:
    files = [onnx_path, *onnx_path.parent.glob(onnx_path.name + ".data")]
    return round(sum(f.stat().st_size for f in files if f.is_file()) / 1e6, 1)


def _write_metadata(result: ExportResult, folder: Path) -> None:
    """The export's facts and check results, in ``folder`` (the export being built)."""
    import onnxruntime
    import torch

    data = {**result.to_dict(), "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__}
    (folder / METADATA_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
