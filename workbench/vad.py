"""Speech regions of a long recording without the recogniser: an energy detector and Silero VAD.

The workbench cuts long recordings at the model's own blank frames (``workbench.segments``),
which costs nothing extra because the same pass gives the text. The two detectors here are
the alternatives that pass was measured against (``bench/segmenters.py``); their regions go
through the same grouping into 1-20 s utterances (:func:`segment_regions`), so only the
detector differs.

- **energy**: RMS of 10 ms frames (smoothed over 30 ms) in dB, after a gentle high-pass that
  takes out rumble (wind, traffic, handling) but not speech; judged against the floor (a low
  percentile of the frames, so a steady noise sets it) and the peak (a high percentile, so
  one click does not) of the 30 s around each frame (the floor: the higher of the 15 s
  before and after), so a noise that starts halfway through moves the thresholds with it.
  A region is a run of frames above the lower threshold that reaches the upper one
  somewhere (hysteresis: a word's quiet edges stay in, a bump of noise that never reaches
  the upper threshold stays out).
- **silero**: Silero VAD's per-32-ms speech probability (the ONNX "sequence" model shipped
  inside the ``silero-vad`` wheel, run through ONNX Runtime: no download, and the package's
  torch code is never imported), with Silero's own thresholds (0.5 in, 0.35 out) and the
  same hysteresis.

Both read the recording as a stream of blocks and keep one small number per frame.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.audio import SAMPLE_RATE
from workbench.errors import WorkbenchError
from workbench.segments import (
    MAX_S,
    MIN_PAUSE_S,
    MIN_S,
    Segment,
    Word,
    frame_track,
    segment_words,
    timed_words,
)

ENERGY_FRAME = SAMPLE_RATE // 100  # 160 samples: 10 ms frames
HIGH_PASS = 160  # samples (10 ms) of moving average taken out first: rumble, not speech
ENERGY_SMOOTH = 3  # frames of power averaged (30 ms): a stop closure is not a pause
FLOOR_PERCENTILE = 5.0  # the quietest 5 % of frames: the noise (or silence) between words
PEAK_PERCENTILE = 99.0  # loud speech, ignoring the loudest 1 % (clicks, plosives)
MAX_RANGE_DB = 60.0  # digital silence has no floor: treat it as 60 dB under the peak
ON_FRACTION = 0.3  # upper threshold: this far from the floor towards the peak ...
MIN_ON_DB = 6.0  # ... and at least this far above the floor
OFF_FRACTION = 0.5  # lower threshold: this far from the floor towards the upper one
LOCAL_S = 30.0  # floor and peak from the 30 s around each frame: noise comes and goes
LOCAL_HOP_S = 1.0  # ... estimated once a second
MIN_SPEECH_S = 0.1  # a region shorter than this, alone, is a click or a bump of noise
BRIDGE_S = 0.1  # gaps shorter than this inside speech are closed before that check

SILERO_FRAME = 512  # samples per Silero frame at 16 kHz (32 ms)
SILERO_CONTEXT = 64  # samples of the previous frame each frame sees
SILERO_BLOCK = 512  # frames per ONNX Runtime call (16 s of audio)
SILERO_ON, SILERO_OFF = 0.5, 0.35  # Silero's own defaults (threshold, neg_threshold)
SILERO_MODEL = "silero_vad_16k_sequence.onnx"

DETECTORS = ("energy", "silero")


@dataclass(frozen=True)
class SpeechTrack:
    """A detector's score per frame and what turns it into regions.

    Attributes:
        score: One number per frame (dB for energy, probability for silero), float32.
        frame_s: Seconds per frame.
        on: A region must reach this score somewhere (one value, or one per frame).
        off: A region is a run of frames at or above this score (likewise).
        samples: The recording's length in samples.
    """

    score: np.ndarray
    frame_s: float
    on: float | np.ndarray
    off: float | np.ndarray
    samples: int

    def regions(self, min_speech_s: float = MIN_SPEECH_S,
                bridge_s: float = BRIDGE_S) -> list[tuple[float, float]]:
        """Speech regions in seconds: see :func:`hysteresis_regions`."""
        return hysteresis_regions(self.score, self.on, self.off, self.frame_s,
                                  min_speech_s=min_speech_s, bridge_s=bridge_s)


def hysteresis_regions(score: np.ndarray, on: float | np.ndarray, off: float | np.ndarray,
                       frame_s: float, *, min_speech_s: float = MIN_SPEECH_S,
                       bridge_s: float = BRIDGE_S) -> list[tuple[float, float]]:
    """Runs of frames with ``score >= off`` that reach ``on`` somewhere, gaps shorter than
    ``bridge_s`` closed, runs shorter than ``min_speech_s`` dropped; (start s, end s) each.
    The thresholds are one number or one per frame."""
    score = np.asarray(score, np.float64)
    above = score >= off
    if not above.any():
        return []
    edges = np.diff(np.concatenate([[0], above.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep = np.maximum.reduceat(score - on, starts) >= 0  # reduceat: up to the next start
    starts, ends = starts[keep], ends[keep]
    regions: list[list[int]] = []
    bridge = int(round(bridge_s / frame_s))
    for start, end in zip(starts, ends, strict=True):
        if regions and start - regions[-1][1] < bridge:
            regions[-1][1] = int(end)
        else:
            regions.append([int(start), int(end)])
    shortest = int(round(min_speech_s / frame_s))
    return [(round(s * frame_s, 3), round(e * frame_s, 3)) for s, e in regions
            if e - s >= shortest]


def energy_track(blocks: Iterable[np.ndarray]) -> SpeechTrack:
    """Frame energies of a streamed recording and thresholds from its own floor and peak."""
    powers, total = [], 0
    rest = np.zeros(0, np.float32)
    for block in _high_passed(blocks):
        total += len(block)
        samples = np.concatenate([rest, block])
        whole = len(samples) // ENERGY_FRAME * ENERGY_FRAME
        frames = samples[:whole].reshape(-1, ENERGY_FRAME).astype(np.float64)
        powers.append(np.mean(frames ** 2, axis=1).astype(np.float32))
        rest = samples[whole:]
    if len(rest):
        powers.append(np.array([np.mean(rest.astype(np.float64) ** 2)], np.float32))
    power = np.concatenate(powers) if powers else np.zeros(0, np.float32)
    if ENERGY_SMOOTH > 1 and len(power) >= ENERGY_SMOOTH:
        power = np.convolve(power, np.ones(ENERGY_SMOOTH) / ENERGY_SMOOTH, mode="same")
    db = (10 * np.log10(power + 1e-12)).astype(np.float32)
    on, off = energy_thresholds(db)
    return SpeechTrack(db, ENERGY_FRAME / SAMPLE_RATE, on, off, total)


def _high_passed(blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """The samples less their centred moving average over ``HIGH_PASS`` samples: a gentle
    high-pass (nothing at 0 Hz, -20 dB at 25 Hz, -9 dB at 50 Hz, full from 100 Hz) that takes
    rumble out of the energy, not speech. As many samples out as in (the blocks shifted by
    half the window, which is read ahead)."""
    half = HIGH_PASS // 2
    history = np.zeros(HIGH_PASS, np.float64)  # the last samples read (zeros before the first)
    total = 0
    for block in blocks:
        out, history = _less_mean(history, np.asarray(block, np.float64))
        out = out[max(0, half - total):]  # outputs centred before the first sample: none
        total += len(block)
        if len(out):
            yield out.astype(np.float32)
    if total:  # the last samples, read ahead into zeros
        out, _ = _less_mean(history, np.zeros(half))
        yield out[half - min(half, total):].astype(np.float32)


def _less_mean(history: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each new sample, the sample ``HIGH_PASS // 2`` before it less the mean of the
    ``HIGH_PASS`` samples up to it; and the history for the next block."""
    x = np.concatenate([history, new])
    sums = np.cumsum(x)
    means = (sums[HIGH_PASS:] - sums[:-HIGH_PASS]) / HIGH_PASS
    return x[HIGH_PASS - HIGH_PASS // 2:len(x) - HIGH_PASS // 2] - means, x[-HIGH_PASS:]


def energy_thresholds(db: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(upper, lower) thresholds in dB per frame (module docstring). The floor is the higher
    of the ``LOCAL_S / 2`` before and the ``LOCAL_S / 2`` after each moment, so a noise that
    starts (or stops) raises the floor from where it is heard, not half a window later."""
    if not len(db):
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    frames = len(db)
    half = int(LOCAL_S / 2 * SAMPLE_RATE / ENERGY_FRAME)
    hop = int(LOCAL_HOP_S * SAMPLE_RATE / ENERGY_FRAME)
    floors, peaks = [], []
    for centre in range(hop // 2, frames + hop // 2, hop):
        centre = min(centre, frames - 1)
        before, after = db[max(0, centre - half):centre + 1], db[centre:centre + half]
        peak = np.percentile(db[max(0, centre - half):centre + half], PEAK_PERCENTILE)
        floor = max(np.percentile(before, FLOOR_PERCENTILE),
                    np.percentile(after, FLOOR_PERCENTILE))
        peaks.append(peak)
        floors.append(min(max(floor, peak - MAX_RANGE_DB), peak))
    floor = np.repeat(floors, hop)[:frames]
    peak = np.repeat(peaks, hop)[:frames]
    on = floor + np.maximum(MIN_ON_DB, ON_FRACTION * (peak - floor))
    return on.astype(np.float32), (floor + OFF_FRACTION * (on - floor)).astype(np.float32)


def silero_model_path() -> Path:
    """The Silero VAD ONNX model inside the installed ``silero-vad`` wheel.

    Found without importing the package (its ``__init__`` imports torch and sets torch to one
    thread, which would slow the recogniser in the same process).

    Raises:
        WorkbenchError: silero-vad is not installed, or its wheel lacks the model.
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise WorkbenchError("The silero segmenter needs the silero-vad package: "
                             "pip install silero-vad (its weights ship inside the wheel).")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / SILERO_MODEL
    if not path.is_file():
        raise WorkbenchError(f"{path} is missing: this silero-vad version does not ship the "
                             f"{SILERO_MODEL} model; install silero-vad 6.2 or later.")
    return path


def silero_track(blocks: Iterable[np.ndarray], session: Any = None) -> SpeechTrack:
    """Silero VAD's speech probability per 32 ms frame of a streamed recording.

    Args:
        blocks: 16 kHz mono float32 blocks of any size.
        session: An ``onnxruntime.InferenceSession`` of :func:`silero_model_path` (one is
            made when None; pass one to reuse it across files).
    """
    session = session or silero_session()
    state = (np.zeros((1, 1, 128), np.float32), np.zeros((1, 1, 128), np.float32))
    context = np.zeros(SILERO_CONTEXT, np.float32)
    probs, total = [], 0
    rest = np.zeros(0, np.float32)
    step = SILERO_FRAME * SILERO_BLOCK
    for block in blocks:
        total += len(block)
        rest = np.concatenate([rest, np.asarray(block, np.float32)])
        while len(rest) >= step:
            context, state = _silero_run(session, rest[:step], context, state, probs)
            rest = rest[step:]
    if len(rest):
        padded = np.zeros(-(-len(rest) // SILERO_FRAME) * SILERO_FRAME, np.float32)
        padded[:len(rest)] = rest
        _silero_run(session, padded, context, state, probs)
    score = np.concatenate(probs) if probs else np.zeros(0, np.float32)
    return SpeechTrack(score.astype(np.float32), SILERO_FRAME / SAMPLE_RATE, SILERO_ON,
                       SILERO_OFF, total)


def silero_session() -> Any:
    """An ONNX Runtime session of the Silero model, on one CPU thread (it is a small LSTM)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(silero_model_path()), sess_options=options,
                                providers=["CPUExecutionProvider"])


def _silero_run(session: Any, samples: np.ndarray, context: np.ndarray,
                state: tuple[np.ndarray, np.ndarray], probs: list[np.ndarray]
                ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """One ONNX call over whole frames; each frame is prefixed with the end of the one before."""
    frames = samples.reshape(-1, SILERO_FRAME)
    before = np.concatenate([context[None, :], frames[:-1, -SILERO_CONTEXT:]])
    values, hidden, cell = session.run(["speech_probs", "hn", "cn"], {
        "input": np.concatenate([before, frames], axis=1), "h": state[0], "c": state[1]})
    probs.append(np.asarray(values).reshape(-1))
    return frames[-1, -SILERO_CONTEXT:].copy(), (hidden, cell)


def speech_track(blocks: Iterable[np.ndarray], detector: str) -> SpeechTrack:
    """The frame scores of ``detector`` ("energy" or "silero") over a streamed recording."""
    if detector == "energy":
        return energy_track(blocks)
    if detector == "silero":
        return silero_track(blocks)
    raise WorkbenchError(f"Unknown speech detector {detector!r}; choose one of "
                         f"{', '.join(DETECTORS)}.")


def segment_regions(regions: list[tuple[float, float]], duration: float, *,
                    min_pause_s: float = MIN_PAUSE_S, **options: float) -> list[Segment]:
    """Speech regions grouped into utterances by the CTC segmenter's own rules
    (:func:`workbench.segments.segment_words`: pauses of ``min_pause_s``, 1-20 s, margins);
    the segments have no text until they are recognised."""
    spans = [Word("", start, end, 1.0) for start, end in regions]
    segments = segment_words(spans, duration, min_pause_s=min_pause_s, **options)
    return [Segment(s.start, s.end, "", 0.0) for s in segments]


def split_long(regions: list[tuple[float, float]], track: SpeechTrack, max_s: float = MAX_S,
               min_s: float = MIN_S) -> list[tuple[float, float]]:
    """Regions longer than ``max_s`` cut at their least speech-like moment (the lowest score,
    averaged over 0.1 s, at least ``min_s`` from either end), until every part fits: in
    babble or steady noise a detector may hear no pause for a minute."""
    out: list[tuple[float, float]] = []
    width = max(1, int(round(0.1 / track.frame_s)))
    todo = list(regions)
    while todo:
        a, b = todo.pop()
        first = int(round((a + min_s) / track.frame_s))
        last = int(round((b - min_s) / track.frame_s))
        if b - a <= max_s or last <= first:
            out.append((a, b))
            continue
        low = max(0, first - width)
        score = np.convolve(track.score[low:last + width], np.ones(width) / width, mode="same")
        score = score[first - low:last - low]
        cut = round((first + int(np.argmin(score))) * track.frame_s, 3)
        todo += [(round(cut + track.frame_s, 3), b), (a, cut)]  # a frame of pause between
    return sorted(out)


def detect_segments(blocks: Iterable[np.ndarray], detector: str, **options: float
                    ) -> tuple[list[Segment], int]:
    """Utterances (without text) of a streamed recording by ``detector``, and its length in
    samples: regions, long ones split, grouped as the CTC segmenter groups words."""
    track = speech_track(blocks, detector)
    regions = split_long(track.regions(), track, options.get("max_s", MAX_S),
                         options.get("min_s", MIN_S))
    return segment_regions(regions, track.samples / SAMPLE_RATE, **options), track.samples


def cut_segments(blocks: Iterable[np.ndarray], segments: list[Segment]
                 ) -> Iterator[tuple[Segment, np.ndarray]]:
    """Each segment (in time order, not overlapping) with its samples, cut from a stream;
    only the audio from the current segment's start on is held."""
    buffer, base, i = np.zeros(0, np.float32), 0, 0
    for block in blocks:
        buffer = np.concatenate([buffer, np.asarray(block, np.float32)])
        while i < len(segments) and _sample(segments[i].end) <= base + len(buffer):
            yield segments[i], buffer[_sample(segments[i].start) - base:
                                      _sample(segments[i].end) - base]
            i += 1
        drop = len(buffer)  # what no segment still needs: up to the next one's start
        if i < len(segments):
            drop = min(max(0, _sample(segments[i].start) - base), len(buffer))
        buffer, base = buffer[drop:], base + drop
    for segment in segments[i:]:  # past the end of a stream shorter than its length said
        yield segment, buffer[max(0, _sample(segment.start) - base):]


def _sample(seconds: float) -> int:
    return int(round(seconds * SAMPLE_RATE))


def recognise_segments(recognizer: Any, blocks: Iterable[np.ndarray],
                       segments: list[Segment]) -> list[Segment]:
    """The second pass a detector needs: each segment recognised on its own, its words timed
    (from the recording's start) and its text and confidence filled in. With a language
    model the words are the beam search's, timed on its own path (as ``segment_with_lm``)."""
    from workbench.transcribe import stream_frames, stream_log_probs

    tokenizer = getattr(recognizer.tokenizer, "tokenizer", recognizer.tokenizer)
    lm = getattr(recognizer, "lm", None)
    for segment, samples in cut_segments(blocks, segments):
        if not len(samples):
            continue
        if lm is None:
            track = stream_frames(recognizer, [samples])
        else:
            log_probs, count = stream_log_probs(recognizer, [samples])
            track = frame_track(log_probs, tokenizer.pad_token_id,
                                recognizer.hop / SAMPLE_RATE, count, lm.frame_tokens(log_probs))
        words = [Word(w.text, round(w.start + segment.start, 3), round(w.end + segment.start, 3),
                      w.confidence) for w in timed_words(track, tokenizer)]
        segment.words = words
        segment.text = " ".join(w.text for w in words)
        if words:
            lengths = [max(w.end - w.start, 1e-3) for w in words]
            segment.confidence = round(float(np.average([w.confidence for w in words],
                                                        weights=lengths)), 4)
    return segments


def segment_file_detected(recognizer: Any, path: Path, detector: str, *,
                          model_name: str = "workbench", **options: float) -> Any:
    """:func:`workbench.segments.segment_file` with ``detector`` ("energy" or "silero")
    finding the utterances: the file is streamed twice, once to detect, once to recognise
    the utterances found (only they, not the pauses).

    Raises:
        WorkbenchError: The file cannot be read, or the detector is unknown or missing.
    """
    from workbench.audio import open_audio
    from workbench.writers import TimedTranscript

    if detector not in DETECTORS:
        raise WorkbenchError(f"Unknown segmenter {detector!r}; choose ctc, "
                             f"{', '.join(DETECTORS)}.")
    if detector == "silero":
        silero_model_path()  # before reading anything: a missing package is said at once
    with open_audio(path) as stream:
        segments, samples = detect_segments(stream, detector, **options)
    with open_audio(path) as stream:
        segments = recognise_segments(recognizer, stream, segments)
    return TimedTranscript(Path(path), samples / SAMPLE_RATE, segments, model_name)
