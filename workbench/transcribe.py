"""Audio -> text with a trained CTC model: arrays, files, and recordings of any length.

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

Long recordings. A clip longer than ``chunk_s`` is cut into windows of ``chunk_s`` seconds
that overlap by ``stride_s = (left, right)`` seconds, as the transformers ASR pipeline does
with ``chunk_length_s`` / ``stride_length_s``. Each window's logits lose the frames of its
left and right context (except at the ends of the recording); the rest are concatenated into
one logit sequence with exactly as many frames as the model would give for the whole
recording, and that is greedy-decoded once, so a word cut by a window border is neither lost
nor doubled. Window starts are multiples of the model's hop (320 samples = one frame), so
frame ``i`` of every window is frame ``start / hop + i`` of the recording.

Long files are never held whole: :func:`transcribe_files` decodes a file longer than one
window as a stream of blocks (:func:`workbench.audio.open_audio`), cuts the same windows as
it goes (:func:`stream_windows`, the length becoming known only at the end) and keeps only
each window's argmax token ids (:func:`stream_ids`); greedy decoding reads nothing else of
the logits, so the text is that of :func:`transcribe_long` on the whole array.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.audio import (
    SAMPLE_RATE,
    AudioDecodeError,
    AudioStream,
    ctc_output_frames,
    open_audio,
)
from workbench.decode import best_path, collapse_repeats, greedy_decode
from workbench.errors import WorkbenchError
from workbench.run import run_of_model_dir

WEIGHTS_FILES = ("model.safetensors", "model.safetensors.index.json")
CHUNK_S = 20.0  # window length for long recordings (XLS-R was pretrained on <= 15-30 s crops)
STRIDE_S = (4.0, 2.0)  # left / right context dropped from each window's output
# Padded audio per forward pass. 20 s beat 60 s on 2 CPU cores (bench/transcribe_speed.py:
# less padding among length-sorted clips, activations stay in cache): XLS-R int8 RTF 0.23
# against 0.27, demo-base torch 6.5 s against 8.8-10.9 s for 10 minutes of audio.
BATCH_S = 20.0
GROUP_S = 600.0  # audio read from disk before it is transcribed (bounds memory for many files)


@dataclass
class Recognizer:
    """A CTC model ready for inference.

    Attributes:
        model: The ``AutoModelForCTC`` model, in eval mode, on ``device``; or an exported
            model in an ONNX Runtime session (:class:`workbench.onnx_inference.OnnxCTC`).
        processor: Its processor (feature extractor + ``Wav2Vec2CTCTokenizer``).
        device: Where the model runs (the CPU for ONNX models).
        model_dir: The directory it was loaded from.
    """

    model: Any
    processor: Any
    device: torch.device
    model_dir: Path | None = None

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
        with torch.inference_mode():
            logits = self.model(**tensors).logits
        return logits.float().cpu().numpy()


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


@dataclass(frozen=True)
class TranscriptionResult:
    """The transcription of one file.

    Attributes:
        path: The audio file.
        text: The transcription ("" when the file failed).
        duration: Seconds of audio (0.0 when the file could not be read).
        error: Why the file could not be transcribed, or None.
    """

    path: Path
    text: str
    duration: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the path as a string) for JSON output."""
        return {"path": str(self.path), "text": self.text, "duration": self.duration,
                "error": self.error}


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
# Batched inference


def transcribe_arrays(
    recognizer: Recognizer,
    arrays: Sequence[np.ndarray],
    batch_seconds: float = BATCH_S,
    *,
    chunk_s: float = CHUNK_S,
    stride_s: tuple[float, float] = STRIDE_S,
) -> list[str]:
    """Transcribe 16 kHz mono clips; texts come back in input order.

    Clips up to ``chunk_s`` seconds are batched by length (see the module docstring for
    when padding is used); longer ones go through :func:`transcribe_long`.

    Args:
        recognizer: From :func:`load_recognizer`.
        arrays: 1-D float arrays at 16 kHz.
        batch_seconds: Most padded audio per forward pass.
        chunk_s: Clips longer than this are transcribed in overlapping windows.
        stride_s: (left, right) context of each window, in seconds.

    Returns:
        One text per clip ("" for clips too short to make a single frame).
    """
    arrays = [_as_mono(a) for a in arrays]
    texts = [""] * len(arrays)
    limit = _seconds_to_samples(chunk_s, recognizer.hop)
    short = [i for i, a in enumerate(arrays) if len(a) <= limit]
    logits_list = clip_logits(recognizer, [arrays[i] for i in short], batch_seconds)
    for i, logits in zip(short, logits_list, strict=True):
        texts[i] = greedy_decode(logits, recognizer.tokenizer)[0]
    for i, array in enumerate(arrays):
        if len(array) > limit:
            texts[i] = transcribe_long(recognizer, array, chunk_s, stride_s,
                                       batch_seconds=batch_seconds)
    return texts


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


def _as_mono(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    if array.ndim != 1:
        raise WorkbenchError(
            f"Expected 1-D 16 kHz mono audio, got an array of shape {array.shape}; decode "
            "files with workbench.audio.load_audio first."
        )
    return array


def _seconds_to_samples(seconds: float, hop: int) -> int:
    """Seconds as a whole number of model frames' worth of samples."""
    return int(round(seconds * SAMPLE_RATE / hop)) * hop


# ---------------------------------------------------------------------------------------------
# Long recordings


@dataclass(frozen=True)
class Chunk:
    """One window of a long recording and the frames it contributes.

    Attributes:
        start: First sample of the window.
        end: One past its last sample.
        first_frame: First frame of the recording taken from this window.
        last_frame: One past the last frame taken.
        offset: Recording frame of the window's frame 0 (``start // hop``).
    """

    start: int
    end: int
    first_frame: int
    last_frame: int
    offset: int

    @property
    def keep(self) -> slice:
        """The window's own frames to keep."""
        return slice(self.first_frame - self.offset, self.last_frame - self.offset)


def plan_chunks(
    num_samples: int,
    chunk_samples: int,
    stride_samples: tuple[int, int],
    hop: int,
    frames_fn: Callable[[int], int] = ctc_output_frames,
) -> list[Chunk]:
    """Cut a recording into overlapping windows, as the transformers ASR pipeline does.

    Windows start every ``chunk - left - right`` samples; the last one ends at the end of the
    recording. A window keeps the frames after its left context (the first window keeps from
    frame 0) up to where the next window's kept frames begin, so consecutive windows hand
    over exactly at ``next.start + left``, in the middle of their overlap.

    Args:
        num_samples: Length of the recording.
        chunk_samples: Window length; a multiple of ``hop``.
        stride_samples: (left, right) context in samples; multiples of ``hop``.
        hop: Samples per output frame.
        frames_fn: Output frames for a given number of input samples.

    Returns:
        The windows, in order; their kept frames tile ``[0, total)`` with no gap or overlap.

    Raises:
        WorkbenchError: The lengths are not multiples of ``hop``, the context leaves no room
            for output, or the right context is too short for the model's receptive field.
    """
    step = _window_step(chunk_samples, stride_samples, hop)
    starts = []
    for start in range(0, max(num_samples, 1), step):
        starts.append(start)
        if start + chunk_samples >= num_samples:
            break
    return [
        _chunk(k, start, min(start + chunk_samples, num_samples),
               starts[k + 1] if k + 1 < len(starts) else None, stride_samples, hop, frames_fn)
        for k, start in enumerate(starts)
    ]


def _window_step(chunk_samples: int, stride_samples: tuple[int, int], hop: int) -> int:
    """Samples from one window start to the next (see :func:`plan_chunks` for the errors)."""
    left, right = stride_samples
    if any(x % hop for x in (chunk_samples, left, right)) or min(left, right) < 0:
        raise WorkbenchError(
            f"Chunk and stride lengths must be non-negative multiples of {hop} samples "
            f"(one model frame); got chunk {chunk_samples}, stride ({left}, {right})."
        )
    step = chunk_samples - left - right
    if step <= 0:
        raise WorkbenchError(
            f"The window ({chunk_samples / SAMPLE_RATE:g} s) must be longer than its left and "
            f"right context together ({(left + right) / SAMPLE_RATE:g} s)."
        )
    return step


def _chunk(k: int, start: int, end: int, next_start: int | None,
           stride_samples: tuple[int, int], hop: int, frames_fn: Callable[[int], int]) -> Chunk:
    """Window ``k`` of a plan: samples ``[start, end)``; ``next_start`` None for the last."""
    left, right = stride_samples
    offset = start // hop
    first = 0 if k == 0 else offset + left // hop
    available = offset + frames_fn(end - start)
    last = available if next_start is None else (next_start + left) // hop
    if last > available or first > last:
        raise WorkbenchError(
            f"A right context of {right / SAMPLE_RATE:g} s is too short for this model "
            f"(window frames end at {available}, {last} needed); use a longer stride."
        )
    return Chunk(start, end, first, last, offset)


def stream_windows(
    blocks: Iterable[np.ndarray],
    chunk_samples: int,
    stride_samples: tuple[int, int],
    hop: int,
    frames_fn: Callable[[int], int] = ctc_output_frames,
) -> Iterator[tuple[Chunk, np.ndarray]]:
    """The windows of :func:`plan_chunks` with their samples, cut from a stream of blocks.

    The length of the recording need not be known in advance: window ``k`` starts at
    ``k * step``, and it is not the last one once more samples than it holds have arrived;
    the last window ends where the stream ends. Only the current window's samples (and the
    block being read) are held.

    Args:
        blocks: 1-D 16 kHz sample blocks of any sizes, in order.
        chunk_samples, stride_samples, hop, frames_fn: As for :func:`plan_chunks`.

    Yields:
        (window, its samples), in order; the windows equal ``plan_chunks`` on the total length.
    """
    step = _window_step(chunk_samples, stride_samples, hop)
    buffer, start, k = np.zeros(0, dtype=np.float32), 0, 0
    for block in blocks:
        buffer = np.concatenate((buffer, _as_mono(block)))
        while len(buffer) > chunk_samples:  # more audio follows: not the last window
            yield (_chunk(k, start, start + chunk_samples, start + step, stride_samples, hop,
                          frames_fn), buffer[:chunk_samples])
            buffer, start, k = buffer[step:], start + step, k + 1
    yield _chunk(k, start, start + len(buffer), None, stride_samples, hop, frames_fn), buffer


def _kept(logits: np.ndarray, chunk: Chunk) -> np.ndarray:
    """The frames of a window's logits that its plan keeps."""
    piece = logits[chunk.keep]
    if len(piece) != chunk.last_frame - chunk.first_frame:
        raise WorkbenchError(
            f"Window at sample {chunk.start} gave {len(logits)} frames, fewer than the "
            f"{chunk.keep.stop} its plan needs."
        )
    return piece


def stitch_logits(chunk_logits: Sequence[np.ndarray], chunks: Sequence[Chunk]) -> np.ndarray:
    """Join window logits into one ``(frames, vocab)`` array, dropping the contexts.

    Args:
        chunk_logits: Logits of each window, ``(window frames, vocab)``, padding removed.
        chunks: The plan from :func:`plan_chunks`.

    Raises:
        WorkbenchError: The logits and the plan do not match.
    """
    if len(chunk_logits) != len(chunks):
        raise WorkbenchError(f"{len(chunk_logits)} logit arrays for {len(chunks)} windows.")
    pieces = [_kept(logits, chunk) for logits, chunk in zip(chunk_logits, chunks, strict=True)]
    return np.concatenate(pieces, axis=0)


def long_logits(
    recognizer: Recognizer,
    samples: np.ndarray,
    chunk_s: float = CHUNK_S,
    stride_s: tuple[float, float] = STRIDE_S,
    *,
    batch_seconds: float = BATCH_S,
) -> np.ndarray:
    """Frame logits of a recording of any length, computed window by window.

    Args:
        recognizer: From :func:`load_recognizer`.
        samples: 1-D 16 kHz audio.
        chunk_s: Window length in seconds.
        stride_s: (left, right) context of each window in seconds.
        batch_seconds: Most padded audio per forward pass (windows are batched).

    Returns:
        ``(frames, vocab)`` float32 logits, as many frames as the whole recording has.
    """
    samples = _as_mono(samples)
    hop = recognizer.hop
    chunks = plan_chunks(
        len(samples),
        _seconds_to_samples(chunk_s, hop),
        (_seconds_to_samples(stride_s[0], hop), _seconds_to_samples(stride_s[1], hop)),
        hop,
        recognizer.output_frames,
    )
    windows = [samples[c.start : c.end] for c in chunks]
    return stitch_logits(clip_logits(recognizer, windows, batch_seconds), chunks)


def transcribe_long(
    recognizer: Recognizer,
    samples: np.ndarray,
    chunk_s: float = CHUNK_S,
    stride_s: tuple[float, float] = STRIDE_S,
    *,
    batch_seconds: float = BATCH_S,
) -> str:
    """Transcribe a recording of any length in overlapping windows (see module docstring).

    Args:
        recognizer: From :func:`load_recognizer`.
        samples: 1-D 16 kHz audio.
        chunk_s: Window length in seconds.
        stride_s: (left, right) context of each window in seconds; each must be at least a
            few frames (the default 4 s / 2 s gives every kept frame that much context).
        batch_seconds: Most padded audio per forward pass.

    Returns:
        The text, decoded once from the stitched logits.
    """
    logits = long_logits(recognizer, samples, chunk_s, stride_s, batch_seconds=batch_seconds)
    return greedy_decode(logits, recognizer.tokenizer)[0]


def stream_ids(
    recognizer: Recognizer,
    blocks: Iterable[np.ndarray],
    chunk_s: float = CHUNK_S,
    stride_s: tuple[float, float] = STRIDE_S,
    *,
    batch_seconds: float = BATCH_S,
) -> tuple[np.ndarray, int]:
    """Best-path token ids of every frame of a streamed recording, window by window.

    The windows (:func:`stream_windows`) run in the batches :func:`long_logits` makes of
    them, and only the argmax ids of each window's kept frames are kept, not the logits:
    memory holds one window batch and 4 bytes per 20 ms frame, whatever the length.
    Greedy decoding of stitched logits only reads their argmax, so the ids give the text of
    :func:`transcribe_long`.

    Args:
        recognizer: From :func:`load_recognizer`.
        blocks: 1-D 16 kHz sample blocks of any sizes, in order.
        chunk_s, stride_s, batch_seconds: As for :func:`transcribe_long`.

    Returns:
        The ids (int32, as many as the model's frames for the whole recording) and the
        recording's length in samples.
    """
    hop = recognizer.hop
    chunk = _seconds_to_samples(chunk_s, hop)
    stride = (_seconds_to_samples(stride_s[0], hop), _seconds_to_samples(stride_s[1], hop))
    # long_logits' batches: full windows in order, per_batch at a time, the last with them.
    per_batch = max(1, int(batch_seconds * SAMPLE_RATE) // chunk)
    ids: list[np.ndarray] = []
    pending: list[tuple[Chunk, np.ndarray]] = []
    total = 0
    for window in stream_windows(blocks, chunk, stride, hop, recognizer.output_frames):
        pending.append(window)
        total = window[0].end
        if len(pending) == per_batch:
            ids += _window_ids(recognizer, pending, batch_seconds)
            pending = []
    ids += _window_ids(recognizer, pending, batch_seconds)
    return np.concatenate(ids), total


def _window_ids(recognizer: Recognizer, windows: list[tuple[Chunk, np.ndarray]],
                batch_seconds: float) -> list[np.ndarray]:
    """Argmax ids of the kept frames of each window, run as :func:`clip_logits` batches."""
    logits = clip_logits(recognizer, [samples for _, samples in windows], batch_seconds)
    return [best_path(_kept(window_logits, chunk))[0].astype(np.int32)
            for window_logits, (chunk, _) in zip(logits, windows, strict=True)]


def transcribe_stream(
    recognizer: Recognizer,
    blocks: Iterable[np.ndarray],
    chunk_s: float = CHUNK_S,
    stride_s: tuple[float, float] = STRIDE_S,
    *,
    batch_seconds: float = BATCH_S,
) -> tuple[str, int]:
    """Transcribe a recording read as a stream of blocks, in bounded memory.

    The text equals :func:`transcribe_long` on the whole recording (see :func:`stream_ids`).

    Returns:
        The text and the recording's length in samples.
    """
    ids, total = stream_ids(recognizer, blocks, chunk_s, stride_s, batch_seconds=batch_seconds)
    # greedy_decode's last step, on ids instead of logits
    return recognizer.tokenizer.decode(collapse_repeats(ids).tolist()), total


# ---------------------------------------------------------------------------------------------
# Files


def transcribe_files(
    paths: Iterable[str | Path],
    model: str | Path | Recognizer,
    *,
    progress: bool = True,
    batch_seconds: float = BATCH_S,
    chunk_s: float = CHUNK_S,
    stride_s: tuple[float, float] = STRIDE_S,
) -> list[TranscriptionResult]:
    """Transcribe audio files; a file that cannot be read gets an error entry.

    Memory stays bounded however many files there are and however long they are: files up
    to ``chunk_s`` are read (decoded to 16 kHz mono) a group at a time and batched; a longer
    file is decoded as a stream and transcribed window by window as it is read
    (:func:`transcribe_stream`, the text of :func:`transcribe_long`), never held whole.

    Args:
        paths: Audio files in any format :func:`workbench.audio.open_audio` reads.
        model: A model or run directory, or a loaded :class:`Recognizer`.
        progress: Show a progress bar (files done).
        batch_seconds: Most padded audio per forward pass.
        chunk_s: Files longer than this are transcribed in overlapping windows.
        stride_s: (left, right) context of each window, in seconds.

    Returns:
        One result per path, in the order given.
    """
    from tqdm.auto import tqdm

    paths = [Path(p) for p in paths]
    recognizer = model if isinstance(model, Recognizer) else load_recognizer(model)
    options = {"chunk_s": chunk_s, "stride_s": stride_s, "batch_seconds": batch_seconds}
    results: list[TranscriptionResult] = []
    with tqdm(total=len(paths), unit="file", desc="Transcribing", disable=not progress) as bar:
        for group in _read_groups(recognizer, paths, GROUP_S, options):
            clips = [item for _, item in group if isinstance(item, np.ndarray)]
            texts = iter(transcribe_arrays(recognizer, clips, batch_seconds, chunk_s=chunk_s,
                                           stride_s=stride_s))
            for path, item in group:
                if isinstance(item, TranscriptionResult):
                    results.append(item)
                elif isinstance(item, str):
                    results.append(TranscriptionResult(path, "", 0.0, item))
                else:
                    results.append(TranscriptionResult(path, next(texts), len(item) / SAMPLE_RATE))
            bar.update(len(group))
    return results


def _read_groups(
    recognizer: Recognizer, paths: Sequence[Path], group_seconds: float, options: dict[str, Any]
) -> Iterator[list[tuple[Path, np.ndarray | str | TranscriptionResult]]]:
    """Yield lists of (path, samples, error message or result) in the order of ``paths``.

    Files up to ``options["chunk_s"]`` come as samples, gathered up to about
    ``group_seconds`` of audio per list; a longer file comes alone, already transcribed as a
    stream (the short files before it are yielded first, so they are not held meanwhile).
    """
    limit = _seconds_to_samples(options["chunk_s"], recognizer.hop)
    group: list[tuple[Path, np.ndarray | str | TranscriptionResult]] = []
    seconds = 0.0
    for path in paths:
        item = _read_start(path, limit)
        if isinstance(item, tuple):  # a long file, open
            if group:
                yield group
                group, seconds = [], 0.0
            yield [(path, _transcribe_open(recognizer, path, *item, options))]
            continue
        group.append((path, item))
        seconds += len(item) / SAMPLE_RATE if isinstance(item, np.ndarray) else 0.0
        if seconds >= group_seconds:
            yield group
            group, seconds = [], 0.0
    if group:
        yield group


def _read_start(path: Path, limit: int) -> np.ndarray | str | tuple[AudioStream, deque]:
    """A file's samples when it has at most ``limit``, an error message, or for a longer file
    its open stream and the blocks read from it so far."""
    try:
        stream = open_audio(path)
    except (WorkbenchError, OSError, ValueError, RuntimeError) as err:
        return _read_error(path, err)
    head: deque[np.ndarray] = deque()
    try:
        for block in stream:
            head.append(block)
            if stream.samples_read > limit:
                return stream, head
    except (WorkbenchError, OSError, ValueError, RuntimeError) as err:
        stream.close()
        return _read_error(path, err)
    stream.close()
    return np.concatenate(head) if head else np.zeros(0, dtype=np.float32)


def _transcribe_open(recognizer: Recognizer, path: Path, stream: AudioStream, head: deque,
                     options: dict[str, Any]) -> TranscriptionResult:
    """Transcribe a long file from its open stream (``head``: the blocks already read)."""

    def blocks() -> Iterator[np.ndarray]:
        while head:  # popped, so that a block read is not held after its windows
            yield head.popleft()
        yield from stream

    with stream:
        try:
            text, total = transcribe_stream(recognizer, blocks(), **options)
        except AudioDecodeError as err:  # reading failed part-way
            return TranscriptionResult(path, "", 0.0, _read_error(path, err))
    return TranscriptionResult(path, text, total / SAMPLE_RATE)


def _read_error(path: Path, err: Exception) -> str:
    """The message for a file that could not be read, naming it."""
    if isinstance(err, WorkbenchError):
        return str(err) if str(path) in str(err) else f"{path}: {err}"
    return f"{path}: could not be read ({err})."
