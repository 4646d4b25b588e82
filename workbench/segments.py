"""A long recording as timed utterances and words, from the model's own frame-level output.

The frames where the model is sure of the blank are where it hears nothing it could write,
and the same pass gives the text. That holds while the model writes blanks in noise: one
fine-tuned on clean speech only writes letters there, pauses vanish and utterances merge, and
then a detector that cuts first (``segmenter="energy"`` or ``"silero"``, ``workbench.vad``)
does better, its utterances recognised in a second pass over the speech only
(``bench/segmenters.py``; boundaries on clean audio: ``bench/long_audio.py``).

From a :class:`~workbench.transcribe.FrameTrack` (best token, its probability and the blank's,
per 20 ms frame):

- **words**: the best path split at the word delimiter (``|``); a word runs from the first
  to the last frame of its letters (the CTC best path is the Viterbi path of the model's
  own output without a language model), its confidence the mean probability of those frames;
- **utterances**: words grouped where the gap between them (frames of blank) is at least
  ``min_pause_s``; an utterance longer than ``max_s`` is split at its longest gap, one
  shorter than ``min_s`` joins the neighbour across the shorter gap when the result still
  fits and that gap is under 2 s (a lone "yes" after a long silence stays alone). Each gets
  ``pad_s`` of margin (never past half the gap to its neighbour).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from workbench.audio import SAMPLE_RATE
from workbench.decode import decode_best_path

MIN_PAUSE_S = 0.3
MIN_S, MAX_S = 1.0, 20.0
PAD_S = 0.1
MAX_JOIN_GAP_S = 2.0  # a short utterance alone after a longer silence stays alone


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float
    confidence: float


@dataclass
class Segment:
    """One utterance: times in seconds from the start of the recording."""

    start: float
    end: float
    text: str
    confidence: float
    words: list[Word] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "words": [asdict(w) for w in self.words]}


def timed_words(track: Any, tokenizer: Any, min_pause_s: float = MIN_PAUSE_S) -> list[Word]:
    """The words of the best path with their times and confidences.

    A word ends at a word delimiter, and also at a pause of ``min_pause_s`` or more: a model
    trained on single utterances often writes no delimiter between the last word of one
    sentence and the first of the next, only blanks.
    """
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    ids = np.asarray(track.ids)
    delimiter = tokenizer.convert_tokens_to_ids(tokenizer.word_delimiter_token)
    letters = np.flatnonzero((ids != tokenizer.pad_token_id) & (ids != delimiter))
    if not letters.size:
        return []
    delimiters_before = np.cumsum(ids == delimiter)
    pause = max(1, int(round(min_pause_s / track.frame_s)))
    breaks = (np.diff(delimiters_before[letters]) > 0) | (np.diff(letters) >= pause)
    bounds = np.split(letters, np.flatnonzero(breaks) + 1)
    words = [_word(track, tokenizer, int(span[0]), int(span[-1])) for span in bounds]
    return [w for w in words if w.text]


def _word(track: Any, tokenizer: Any, first: int, last: int) -> Word:
    ids = np.asarray(track.ids)[first:last + 1]
    letters = ids != tokenizer.pad_token_id
    confidence = float(np.asarray(track.confidence)[first:last + 1][letters].mean())
    return Word(decode_best_path(ids, tokenizer).strip(), round(first * track.frame_s, 3),
                round((last + 1) * track.frame_s, 3), round(confidence, 4))


def segment_words(words: list[Word], duration: float, *, min_pause_s: float = MIN_PAUSE_S,
                  min_s: float = MIN_S, max_s: float = MAX_S, pad_s: float = PAD_S
                  ) -> list[Segment]:
    """Group timed words into utterances at pauses (see the module docstring)."""
    groups: list[list[Word]] = []
    for word in words:
        if groups and word.start - groups[-1][-1].end < min_pause_s:
            groups[-1].append(word)
        else:
            groups.append([word])
    groups = [part for group in groups for part in _split_long(group, max_s)]
    groups = _join_short(groups, min_s, max_s)
    return _padded([_segment(g) for g in groups], duration, pad_s)


def _split_long(group: list[Word], max_s: float) -> list[list[Word]]:
    """Split at the longest gap until every part fits (a single long word stays whole)."""
    if len(group) < 2 or group[-1].end - group[0].start <= max_s:
        return [group]
    gaps = [group[i + 1].start - group[i].end for i in range(len(group) - 1)]
    cut = int(np.argmax(gaps)) + 1
    return _split_long(group[:cut], max_s) + _split_long(group[cut:], max_s)


def _join_short(groups: list[list[Word]], min_s: float, max_s: float) -> list[list[Word]]:
    """Join each too-short group to the nearer neighbour when the result still fits."""
    groups = [list(g) for g in groups]
    i = 0
    while i < len(groups):
        group = groups[i]
        if group[-1].end - group[0].start >= min_s or len(groups) == 1:
            i += 1
            continue
        gap_before = group[0].start - groups[i - 1][-1].end if i > 0 else np.inf
        gap_after = groups[i + 1][0].start - group[-1].end if i + 1 < len(groups) else np.inf
        j = i - 1 if gap_before <= gap_after else i + 1
        first, second = sorted((i, j))
        fits = groups[second][-1].end - groups[first][0].start <= max_s
        if fits and min(gap_before, gap_after) < MAX_JOIN_GAP_S:
            groups[first:second + 1] = [groups[first] + groups[second]]
            i = first
        else:
            i += 1
    return groups


def _segment(words: list[Word]) -> Segment:
    lengths = np.array([max(w.end - w.start, 1e-3) for w in words])
    confidence = float(np.average([w.confidence for w in words], weights=lengths))
    return Segment(words[0].start, words[-1].end, " ".join(w.text for w in words),
                   round(confidence, 4), list(words))


def _padded(segments: list[Segment], duration: float, pad_s: float) -> list[Segment]:
    """Margins around the speech, never past half the gap to a neighbour or the file."""
    spans = [(seg.start, seg.end) for seg in segments]  # the speech, before any margin
    for i, seg in enumerate(segments):
        start, end = spans[i]
        low = (spans[i - 1][1] + start) / 2 if i else 0.0
        high = (end + spans[i + 1][0]) / 2 if i + 1 < len(spans) else duration
        seg.start = round(max(start - pad_s, low, 0.0), 3)
        seg.end = round(min(end + pad_s, high, duration), 3)
    return segments


def with_margins(segments: list[Segment], duration: float, pad_s: float = PAD_S
                 ) -> list[Segment]:
    """Copies of ``segments`` (in time order) with ``pad_s`` of margin, never past half the
    gap to a neighbour or the ends of the recording (a CTC model's last letter often fires
    before the sound ends: a clip cut there loses it)."""
    return _padded([replace(s) for s in segments], duration, pad_s)


def segment_track(track: Any, tokenizer: Any, **options: float) -> list[Segment]:
    """Timed utterances and words of a recording's :class:`FrameTrack`."""
    duration = track.samples / SAMPLE_RATE
    pause = options.get("min_pause_s", MIN_PAUSE_S)
    return segment_words(timed_words(track, tokenizer, pause), duration, **options)


SEGMENTERS = ("energy", "silero", "ctc")  # where utterances are cut: see segment_file
# The default, by measurement (bench/segmenters.py, bench/RESULTS.md): the energy detector
# merged the fewest utterances in 8 of 9 recordings (clean, pink, brown, babble, music noise)
# and gave the lowest or near-lowest CER; the model's own blanks cut tightest on clean audio
# but merged 16-77 of 111 utterances in noise, where a model trained on clean speech writes
# letters into the pauses.
DEFAULT_SEGMENTER = "energy"


def segment_file(recognizer: Any, path: Path, *, model_name: str = "workbench",
                 segmenter: str = DEFAULT_SEGMENTER, **options: float) -> Any:
    """A recording of any length as a :class:`~workbench.writers.TimedTranscript`: read as a
    stream of blocks (never whole), its frames kept at 12 bytes each, then segmented.

    With a language model (``recognizer.lm``), see :func:`segment_with_lm`.

    Args:
        segmenter: ``"ctc"``: cut at the model's own blank frames, one pass gives cuts and
            text. ``"energy"`` or ``"silero"``: cut where a detector hears speech, then
            recognise each utterance (``workbench.vad``: a second pass, over the speech
            only); better where noise makes the model write letters in the pauses
            (``bench/segmenters.py``).

    Raises:
        WorkbenchError: The file cannot be read (the message names it); the segmenter is
            unknown, or silero-vad is not installed.
    """
    from workbench.audio import open_audio
    from workbench.transcribe import stream_frames
    from workbench.writers import TimedTranscript

    if segmenter != "ctc":
        from workbench.vad import segment_file_detected

        return segment_file_detected(recognizer, path, segmenter, model_name=model_name,
                                     **options)
    if getattr(recognizer, "lm", None) is not None:
        return segment_with_lm(recognizer, path, model_name=model_name, **options)
    with open_audio(path) as stream:
        track = stream_frames(recognizer, stream)
    segments = segment_track(track, recognizer.tokenizer, **options)
    return TimedTranscript(Path(path), track.samples / SAMPLE_RATE, segments, model_name)


def segment_with_lm(recognizer: Any, path: Path, *, model_name: str = "workbench",
                    **options: float) -> Any:
    """Like :func:`segment_file`, the words decoded with the recognizer's language model.

    The recording is cut where the model hears pauses (as without an LM), then each
    utterance's frames are beam-searched with the LM; the best hypothesis's own path (a
    token per frame) times its words, so the times and the text come from the same
    decoding. Needs the frames' log-probabilities (4 bytes per label per frame: about
    60 MB an hour for a 40-label model) instead of 12 bytes a frame.
    """
    from workbench.audio import open_audio
    from workbench.transcribe import stream_log_probs
    from workbench.writers import TimedTranscript

    with open_audio(path) as stream:
        log_probs, samples = stream_log_probs(recognizer, stream)
    segments = segment_log_probs(log_probs, recognizer.tokenizer, recognizer.hop / SAMPLE_RATE,
                                 samples, recognizer.lm, **options)
    return TimedTranscript(Path(path), samples / SAMPLE_RATE, segments, model_name)


def segment_log_probs(log_probs: np.ndarray, tokenizer: Any, frame_s: float, samples: int,
                      decoder: Any, **options: float) -> list[Segment]:
    """Utterances cut at the greedy path's pauses, their words from ``decoder``'s
    (:class:`~workbench.lm.beam.BeamDecoder`) best path over each utterance's frames."""
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    blank = tokenizer.pad_token_id
    track = frame_track(log_probs, blank, frame_s, samples)
    pause = options.get("min_pause_s", MIN_PAUSE_S)
    segments = []
    for cut in segment_track(track, tokenizer, **options):
        first, last = int(cut.start / frame_s), int(np.ceil(cut.end / frame_s))
        piece = log_probs[first:last]
        piece_track = frame_track(piece, blank, frame_s, samples, decoder.frame_tokens(piece))
        words = [replace(w, start=round(w.start + first * frame_s, 3),
                         end=round(w.end + first * frame_s, 3))
                 for w in timed_words(piece_track, tokenizer, pause)]
        if words:
            segment = _segment(words)
            segment.start, segment.end = cut.start, cut.end
            segments.append(segment)
    return segments


def frame_track(log_probs: np.ndarray, blank: int, frame_s: float, samples: int,
                ids: np.ndarray | None = None) -> Any:
    """A :class:`~workbench.transcribe.FrameTrack` from log-probabilities: the best path
    (or the token path ``ids``, such as an LM decoding's) with each token's probability."""
    from workbench.transcribe import FrameTrack

    ids = np.asarray(log_probs.argmax(axis=1) if ids is None else ids, np.int32)
    frames = np.arange(len(ids))
    confidence = np.exp(log_probs[frames, ids]).astype(np.float32)
    return FrameTrack(ids, confidence, np.exp(log_probs[:, blank]).astype(np.float32),
                      frame_s, samples)
