"""A trained CTC model ready for inference: loading it, and its batched forward passes.

Batching. Clips are sorted by length and packed into batches of at most ``batch_seconds`` of
padded audio, then returned in input order. Whether padding is safe depends on the model's
feature encoder:

- ``feat_extract_norm == "layer"`` (XLS-R, MMS, wav2vec2-large-lv60, the workbench's own
  models): each clip is normalised over its own samples, padded, and the
  attention mask hides the padding, so a padded batch gives the same text as one clip at a
  time (up to float rounding in the last digits of the logits).
- ``"group"`` (wav2vec2-base and similar) normalises each conv channel over the whole padded
  length, so zero padding changes the output. For these models, and any model without the
  setting (data2vec-audio: its stacked positional convolutions carry padding into the last
  real frames), a batch only holds clips of exactly equal length, which need no padding;
  other clips run one by one. That keeps the results exact at the price of speed (wav2vec2-base
  style models are rarely fine-tuned for new languages; XLS-R and MMS use layer norm).

Backends. A model folder (or run) runs in torch; an ONNX export (``workbench export --onnx``,
a folder with ``model.onnx``) runs in ONNX Runtime on the CPU with as many threads as torch
uses. Both get the same processor output, batches and windows, and the same greedy decoding;
only the forward pass differs (:meth:`Recognizer.batch_logits`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.audio import SAMPLE_RATE, ctc_output_frames
from workbench.cpu_memory import without_onednn
from workbench.errors import WorkbenchError
from workbench.run import run_of_model_dir

WEIGHTS_FILES = ("model.safetensors", "model.safetensors.index.json")
# Padded audio per forward pass. 20 s beat 60 s on 2 CPU cores (bench/transcribe_speed.py:
# less padding among length-sorted clips, activations stay in cache): XLS-R int8 RTF 0.23
# against 0.27, demo-base torch 6.5 s against 8.8-10.9 s for 10 minutes of audio.
BATCH_S = 20.0


@dataclass
class Recognizer:
    """A CTC model ready for inference.

    Attributes:
        model: The ``AutoModelForCTC`` model, in eval mode, on ``device``; or an exported
            model in an ONNX Runtime session (:class:`workbench.onnx_inference.OnnxCTC`).
        processor: Its processor (feature extractor + ``Wav2Vec2CTCTokenizer``).
        device: Where the model runs (the CPU for ONNX models).
        model_dir: The directory it was loaded from.
        lm: A beam-search decoder with a language model
            (:class:`workbench.lm.beam.BeamDecoder`); None decodes greedily.
    """

    model: Any
    processor: Any
    device: torch.device
    model_dir: Path | None = None
    lm: Any = None

    @property
    def config(self) -> Any:
        """The transformers config of the model."""
        return self.model.config

    @property
    def is_onnx(self) -> bool:
        """True when the model runs in ONNX Runtime rather than torch."""
        return not isinstance(self.model, torch.nn.Module)

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

    @property
    def feature_extractor(self) -> Any:
        return self.processor.feature_extractor

    @property
    def pads_safely(self) -> bool:
        """True when padded batches give the same output as single clips (layer norm)."""
        return getattr(self.config, "feat_extract_norm", None) == "layer"

    @property
    def hop(self) -> int:
        """Input samples per output frame (320 for every wav2vec2-family model)."""
        ratio = getattr(self.config, "inputs_to_logits_ratio", None)
        if ratio:
            return int(ratio)
        return int(math.prod(getattr(self.config, "conv_stride", (320,))))

    def output_frames(self, num_samples: int) -> int:
        """Number of logit frames the model makes from ``num_samples`` samples."""
        lengths_fn = getattr(self.model, "_get_feat_extract_output_lengths", None)
        if lengths_fn is None:
            return config_output_frames(self.config, num_samples)
        frames = lengths_fn(torch.tensor([num_samples]))
        return max(int(frames[0]), 0)

    def batch_logits(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """``(batch, frames, vocab)`` float32 logits of a batch the processor made."""
        if self.is_onnx:
            return self.model.logits(inputs["input_values"], inputs.get("attention_mask"))
        tensors = {k: torch.from_numpy(v).to(self.device) for k, v in inputs.items()}
        with torch.inference_mode(), self.native_kernels():
            logits = self.model(**tensors).logits
        return logits.float().cpu().numpy()

    def native_kernels(self) -> AbstractContextManager:
        """On a CPU, torch's native kernels rather than oneDNN, which keeps a kernel for every
        batch shape it sees: over 200 clips of 1-10 s XLS-R-300M's process grew by 37 MiB and
        peaked at 2632 MiB with it, by 3 MiB and at 2462 MiB without, 5% slower; demo-base
        peaked 330 MiB lower and ran 3% faster (bench/inference_shapes.py). Nothing changes
        on a GPU."""
        return without_onednn() if torch.device(self.device).type == "cpu" else nullcontext()


def config_output_frames(config: Any, num_samples: int) -> int:
    """Output frames of a wav2vec2-family model, from its config (conv stack and adapter).

    The same arithmetic as transformers' ``_get_feat_extract_output_lengths``, for models
    that run without their torch module (ONNX).
    """
    kernels = tuple(getattr(config, "conv_kernel", ()))
    strides = tuple(getattr(config, "conv_stride", ()))
    if not kernels:
        return ctc_output_frames(num_samples)
    frames = ctc_output_frames(num_samples, kernels, strides)
    if frames and getattr(config, "add_adapter", False):
        for _ in range(int(config.num_adapter_layers)):
            frames = (frames - 1) // int(config.adapter_stride) + 1
    return frames


# ---------------------------------------------------------------------------------------------
# Loading


def load_recognizer(
    model: str | Path,
    *,
    device: str | torch.device | None = None,
    threads: int | None = None,
) -> Recognizer:
    """Load a trained CTC model for inference, from local files only.

    Args:
        model: A Hugging Face model directory, a run directory (its ``model/`` is used), or
            an ONNX export (a folder with ``model.onnx``, or the ``.onnx`` file itself) from
            ``workbench export --onnx``, which runs in ONNX Runtime on the CPU.
        device: ``"cpu"``, ``"cuda"``, ...; None picks CUDA when available (torch models).
        threads: ONNX Runtime intra-op threads; None means ``torch.get_num_threads()``, so
            both backends use the same number of cores.

    Returns:
        The recognizer, with the model in eval mode on ``device``.

    Raises:
        WorkbenchError: The directory does not exist, has no safetensors weights (nor
            ``model.onnx``), lacks its processor files, or does not hold a CTC model;
            onnxruntime is missing or the ``.onnx`` file is not an ONNX model.
    """
    from transformers import AutoModelForCTC, AutoProcessor

    from workbench.onnx_inference import find_onnx_file, load_onnx_model

    onnx_file = find_onnx_file(Path(model).expanduser())
    if onnx_file is not None:
        config = load_ctc_config(onnx_file.parent)
        processor = _load_processor(onnx_file.parent, AutoProcessor)
        runner = load_onnx_model(onnx_file, config, threads or torch.get_num_threads())
        return Recognizer(runner, processor, torch.device("cpu"), onnx_file.parent)
    model_dir = find_model_dir(model)
    config = load_ctc_config(model_dir)
    processor = _load_processor(model_dir, AutoProcessor)
    try:
        ctc_model = AutoModelForCTC.from_pretrained(
            model_dir, use_safetensors=True, trust_remote_code=False, local_files_only=True
        )
    except (OSError, ValueError) as err:
        raise WorkbenchError(
            f"{model_dir}: the model weights could not be loaded ({err})."
        ) from err
    target = torch.device(device) if device is not None else _default_device()
    ctc_model.to(target).eval()
    return Recognizer(ctc_model, processor, target, model_dir)


def load_ctc_config(model_dir: Path) -> Any:
    """The config in ``model_dir``, checked to be a raw-audio CTC model (wav2vec2 family).

    Raises:
        WorkbenchError: config.json is missing or unreadable, or describes another model.
    """
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CTC_MAPPING_NAMES

    config = _load_config(model_dir, AutoConfig)
    if config.model_type not in MODEL_FOR_CTC_MAPPING_NAMES:
        raise WorkbenchError(
            f"{model_dir} holds a {config.model_type!r} model, which is not a CTC speech "
            "recogniser. Point to the model/ folder of a workbench run, or to a wav2vec2, "
            "XLS-R, MMS, HuBERT, WavLM or data2vec-audio CTC model."
        )
    if not hasattr(config, "conv_stride"):
        raise WorkbenchError(
            f"{model_dir} holds a {config.model_type!r} CTC model, which reads spectrogram "
            "features rather than raw audio; the workbench transcribes with wav2vec2-family "
            "models (wav2vec2, XLS-R, MMS, HuBERT, WavLM, data2vec-audio) only."
        )
    return config


def find_model_dir(model: str | Path) -> Path:
    """The Hugging Face directory behind ``model`` (a model or a run directory).

    Raises:
        WorkbenchError: There is no such directory, or it has no safetensors weights.
    """
    path = Path(model).expanduser()
    if not path.is_dir():
        what = "is a file, not a model folder" if path.is_file() else "is not a folder"
        raise WorkbenchError(
            f"{path} {what}. Give the folder of a trained model (with "
            "config.json and model.safetensors), a run folder (runs/<run-id>), or an ONNX "
            "export (a folder with model.onnx, or the .onnx file)."
        )
    run = run_of_model_dir(path) if not (path / "config.json").exists() else None
    if run is not None:
        if not run.has_model:
            raise WorkbenchError(
                f"The run {run.name} has no model yet: it is saved at the run's first dev "
                "evaluation. Wait for it, or resume the run."
            )
        path = run.model_dir
    if not any((path / name).exists() for name in WEIGHTS_FILES):
        hint = ""
        if any(path.glob("*.bin")):
            hint = (
                " It has pickled .bin weights, which the workbench does not load because "
                "they can run code; convert them on a machine you trust with "
                "`model.save_pretrained(dir, safe_serialization=True)`."
            )
        raise WorkbenchError(f"{path} has no model.safetensors.{hint}")
    return path


def _load_config(model_dir: Path, auto_config: Any) -> Any:
    try:
        return auto_config.from_pretrained(
            model_dir, trust_remote_code=False, local_files_only=True
        )
    except (OSError, ValueError, KeyError) as err:
        raise WorkbenchError(
            f"{model_dir}/config.json is missing or not a transformers model config ({err})."
        ) from err


def _load_processor(model_dir: Path, auto_processor: Any) -> Any:
    try:
        processor = auto_processor.from_pretrained(model_dir, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise WorkbenchError(
            f"{model_dir} lacks readable processor files (preprocessor/processor config, "
            f"vocab.json, tokenizer_config.json): {err}. Save the processor next to the "
            "model with `processor.save_pretrained(dir)`."
        ) from err
    if not hasattr(processor, "tokenizer") or not hasattr(processor, "feature_extractor"):
        raise WorkbenchError(
            f"{model_dir} has no CTC tokenizer next to its feature extractor (vocab.json and "
            "tokenizer_config.json are missing). Save the processor with "
            "`processor.save_pretrained(dir)`."
        )
    return processor


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# ---------------------------------------------------------------------------------------------
# Batched forward passes


def clip_logits(
    recognizer: Recognizer, arrays: Sequence[np.ndarray], batch_seconds: float = BATCH_S
) -> list[np.ndarray]:
    """Frame logits of each clip, ``(frames, vocab)`` float32, padding frames removed.

    Args:
        recognizer: From :func:`load_recognizer`.
        arrays: 1-D float arrays at 16 kHz, run whole (no windowing).
        batch_seconds: Most padded audio per forward pass.
    """
    vocab = int(recognizer.config.vocab_size)
    out = [np.zeros((0, vocab), dtype=np.float32) for _ in arrays]
    lengths = [len(a) if recognizer.output_frames(len(a)) > 0 else 0 for a in arrays]
    batch_samples = int(batch_seconds * SAMPLE_RATE)
    for batch in plan_batches(lengths, batch_samples, pad=recognizer.pads_safely):
        batch_logits = _forward(recognizer, [arrays[i] for i in batch])
        for i, logits in zip(batch, batch_logits, strict=True):
            out[i] = logits
    return out


def plan_batches(lengths: Sequence[int], batch_samples: int, *, pad: bool) -> list[list[int]]:
    """Group clip indices into batches, longest first.

    Args:
        lengths: Samples per clip; clips of length 0 are left out (nothing to run).
        batch_samples: Most padded samples per batch (a longer clip still gets a batch).
        pad: Whether clips of different lengths may share a batch; if False a batch holds
            clips of one length only.

    Returns:
        Lists of indices into ``lengths``; every non-empty clip is in exactly one.
    """
    order = sorted((i for i, n in enumerate(lengths) if n > 0), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches:
            batch = batches[-1]
            longest = lengths[batch[0]]
            fits = (len(batch) + 1) * longest <= batch_samples
            if fits and (pad or lengths[i] == longest):
                batch.append(i)
                continue
        batches.append([i])
    return batches


def _forward(recognizer: Recognizer, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Run one batch; return each clip's logits without its padding frames."""
    inputs = recognizer.feature_extractor(
        arrays,
        sampling_rate=SAMPLE_RATE,
        padding=True,
        return_attention_mask=recognizer.pads_safely,
        return_tensors="np",
    )
    logits = recognizer.batch_logits(dict(inputs))
    return [logits[b, : recognizer.output_frames(len(a))] for b, a in enumerate(arrays)]
