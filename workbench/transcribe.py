"""Audio -> text with a trained CTC model: arrays, files, and recordings of any length.

The model, its loading and its batched forward passes are in :mod:`workbench.recognizer`.

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

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.audio import (
    SAMPLE_RATE,
    AudioDecodeError,
    AudioStream,
    ctc_output_frames,
    open_audio,
)
from workbench.decode import best_path, decode_best_path, decode_utterance, log_softmax
from workbench.errors import WorkbenchError
from workbench.recognizer import (  # noqa: F401  (re-exported: what callers import from here)
    BATCH_S,
    WEIGHTS_FILES,
    Recognizer,
    clip_logits,
    config_output_frames,
    find_model_dir,
    load_ctc_config,
    load_recognizer,
    plan_batches,
)

CHUNK_S = 20.0  # window length for long recordings (XLS-R was pretrained on <= 15-30 s crops)
STRIDE_S = (4.0, 2.0)  # left / right context dropped from each window's output
GROUP_S = 600.0  # audio read from disk before it is transcribed (bounds memory for many files)


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
        texts[i] = decode_utterance(logits, recognizer.tokenizer, recognizer.lm)
    for i, array in enumerate(arrays):
        if len(array) > limit:
            texts[i] = transcribe_long(recognizer, array, chunk_s, stride_s,
                                       batch_seconds=batch_seconds)
    return texts


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
    return decode_utterance(logits, recognizer.tokenizer, recognizer.lm)


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
    parts, total = _stream_windows(recognizer, blocks, chunk_s, stride_s, batch_seconds,
                                   _window_ids)
    return np.concatenate(parts), total


@dataclass(frozen=True)
class FrameTrack:
    """What segmenting and timing need of each 20 ms frame, and no more (12 bytes a frame).

    Attributes:
        ids: Best-path token id per frame (int32).
        confidence: Probability of that token (float32).
        blank: Probability of the CTC blank (float32).
        frame_s: Seconds per frame.
        samples: The recording's length in samples.
    """

    ids: np.ndarray
    confidence: np.ndarray
    blank: np.ndarray
    frame_s: float
    samples: int


def stream_frames(
    recognizer: Recognizer,
    blocks: Iterable[np.ndarray],
    chunk_s: float = CHUNK_S,
    stride_s: tuple[float, float] = STRIDE_S,
    *,
    batch_seconds: float = BATCH_S,
) -> FrameTrack:
    """:func:`stream_ids` plus each frame's confidence and blank probability, for
    segmenting a long recording at pauses and timing its words (``workbench.segments``)."""
    blank_id = getattr(recognizer.tokenizer, "tokenizer", recognizer.tokenizer).pad_token_id

    def collect(rec: Recognizer, windows: list, seconds: float) -> list[np.ndarray]:
        return _window_frames(rec, windows, seconds, blank_id)

    parts, total = _stream_windows(recognizer, blocks, chunk_s, stride_s, batch_seconds,
                                   collect)
    stacked = np.concatenate(parts, axis=1) if parts else np.zeros((3, 0), np.float32)
    return FrameTrack(stacked[0].astype(np.int32), stacked[1], stacked[2],
                      recognizer.hop / SAMPLE_RATE, total)


def stream_log_probs(
    recognizer: Recognizer,
    blocks: Iterable[np.ndarray],
    chunk_s: float = CHUNK_S,
    stride_s: tuple[float, float] = STRIDE_S,
    *,
    batch_seconds: float = BATCH_S,
) -> tuple[np.ndarray, int]:
    """Log-probabilities of every frame (frames, vocab) of a streamed recording, for forced
    alignment (``workbench.align``); and the recording's length in samples."""

    def collect(rec: Recognizer, windows: list, seconds: float) -> list[np.ndarray]:
        logits = clip_logits(rec, [samples for _, samples in windows], seconds)
        return [log_softmax(_kept(window_logits, chunk))
                for window_logits, (chunk, _) in zip(logits, windows, strict=True)]

    parts, total = _stream_windows(recognizer, blocks, chunk_s, stride_s, batch_seconds,
                                   collect)
    return (np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)), total


def _stream_windows(recognizer: Recognizer, blocks: Iterable[np.ndarray], chunk_s: float,
                    stride_s: tuple[float, float], batch_seconds: float,
                    collect) -> tuple[list[np.ndarray], int]:
    """Run the windows of a streamed recording in batches; ``collect`` keeps what is needed
    of each batch's kept frames. Returns the collected parts and the length in samples."""
    hop = recognizer.hop
    chunk = _seconds_to_samples(chunk_s, hop)
    stride = (_seconds_to_samples(stride_s[0], hop), _seconds_to_samples(stride_s[1], hop))
    # long_logits' batches: full windows in order, per_batch at a time, the last with them.
    per_batch = max(1, int(batch_seconds * SAMPLE_RATE) // chunk)
    parts: list[np.ndarray] = []
    pending: list[tuple[Chunk, np.ndarray]] = []
    total = 0
    for window in stream_windows(blocks, chunk, stride, hop, recognizer.output_frames):
        pending.append(window)
        total = window[0].end
        if len(pending) == per_batch:
            parts += collect(recognizer, pending, batch_seconds)
            pending = []
    parts += collect(recognizer, pending, batch_seconds)
    return parts, total


def _window_frames(recognizer: Recognizer, windows: list[tuple[Chunk, np.ndarray]],
                   batch_seconds: float, blank_id: int) -> list[np.ndarray]:
    """(3, frames) per window: best id, its probability, the blank's probability."""
    logits = clip_logits(recognizer, [samples for _, samples in windows], batch_seconds)
    parts = []
    for window_logits, (chunk, _) in zip(logits, windows, strict=True):
        probs = np.exp(log_softmax(_kept(window_logits, chunk)))
        ids = probs.argmax(axis=-1)
        parts.append(np.stack([ids.astype(np.float32), probs.max(axis=-1),
                               probs[:, blank_id]]).astype(np.float32))
    return parts


def _window_ids(recognizer: Recognizer, windows: list[tuple[Chunk, np.ndarray]],
                batch_seconds: float) -> list[np.ndarray]:
    """Argmax ids of the kept frames of each window, run as :func:`clip_logits` batches; with
    a language model, their log-probabilities (4 bytes per token per 20 ms frame), which the
    beam search needs whole."""
    logits = clip_logits(recognizer, [samples for _, samples in windows], batch_seconds)
    if recognizer.lm is not None:
        return [log_softmax(_kept(window_logits, chunk))
                for window_logits, (chunk, _) in zip(logits, windows, strict=True)]
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
    if recognizer.lm is not None:  # ids are log-probabilities here
        return recognizer.lm.decode(ids), total
    return decode_best_path(ids, recognizer.tokenizer), total


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
