"""Forced alignment: a plain-text transcript (one utterance a line) timed against a long
recording, with the model's own frame probabilities.

Why this and not the ``ctc-segmentation`` package: it ships as a source archive only (Cython,
a C compiler at install time), which the workbench's set-up does not require; and the
Viterbi alignment it needs is a few lines of numpy once the search is kept in windows.

How: the recording's frame log-probabilities are computed once, streamed in windows (4 bytes
per label per 20 ms frame). The lines are then aligned in order. Each line is searched for
in a window that starts where the previous line ended and is a few times longer than the
line should take; within it, a CTC Viterbi alignment with a free start and a free end (the
line may begin and end anywhere in the window; a frame left outside it scores as the
frame's best label, a hair less, so the line keeps its first and last letters) gives each
label its frames. A line's
confidence is the mean probability the model gives its labels on their frames. A line below
``min_confidence`` is flagged (``not_in_audio``: most likely a line that was never said) and
does not move the search on; letters the model writes between two aligned lines (a stretch of
speech no line covers) are reported as audio with no line. Characters the model
cannot write match any letter (a wildcard), never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.audio import SAMPLE_RATE
from workbench.errors import WorkbenchError
from workbench.segments import Segment, Word

MIN_CONFIDENCE = 0.7  # lines said: 0.94-0.98 on the demo; a line never said: 0.48
MIN_GAP_SPEECH_S = 0.5
GAP_LETTERS = 5
GAP_MARGIN_S = 0.2
WINDOW_FACTOR, WINDOW_EXTRA_S = 3.0, 10.0
WILDCARD = -1
# Per frame left outside the line (see viterbi): a tie-breaker, no more. Larger, it would
# make a frame of silence cheaper inside the line than outside it, and the line would
# reach across the whole window.
OUTSIDE_PENALTY = 1e-3
NEG = -1e9


@dataclass
class AlignedLine:
    """One transcript line with its times, or flagged (then ``segment`` is None and
    ``guess`` holds where the search placed it, which is most likely wrong)."""

    line: int
    text: str
    segment: Segment | None
    confidence: float
    flag: str = ""  # "", "not_in_audio"
    where: str = ""  # how the report names the line: "talk.txt:3", "a.eaf: tier 'x', a5"
    guess: Segment | None = None


@dataclass(frozen=True)
class TranscriptLine:
    """One utterance of a transcript to align, and how to name it in reports."""

    where: str
    text: str


def read_transcript(path: Path, tier: str | None = None) -> list[TranscriptLine]:
    """The utterances of a plain-text transcript (one a line, blank lines skipped but
    counted) or of an ELAN tier with text whose times are missing or not to be trusted
    (``tier``: its TIER_ID; needed when several tiers have text). An ELAN tier's
    annotations are taken in the file's order; their times are ignored.

    Raises:
        WorkbenchError: the file is missing or unreadable, or which tier is meant is unclear.
    """
    path = Path(path)
    if not path.is_file():
        raise WorkbenchError(f"{path}: file not found.")
    if path.suffix.lower() == ".eaf":
        return _elan_lines(path, tier)
    if tier:
        raise WorkbenchError(f"--tier is for ELAN (.eaf) transcripts; {path.name} is read as "
                             "plain text, one utterance a line. Drop --tier.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise WorkbenchError(f"{path}: not UTF-8 text (byte {err.start}); save it as UTF-8, "
                             "one utterance a line.") from err
    return [TranscriptLine(f"{path.name}:{n}", line.strip())
            for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _elan_lines(path: Path, tier: str | None) -> list[TranscriptLine]:
    from data_recipes.elan import parse_eaf

    doc = parse_eaf(path)
    with_text = [t for t in doc.tiers if t.filled]
    if tier:
        chosen = doc.tier(tier)
        if chosen is None:
            raise WorkbenchError(f"{path}: no tier {tier!r}. Tiers with text: "
                                 + ", ".join(repr(t.name) for t in with_text) + ".")
    elif len(with_text) == 1:
        chosen = with_text[0]
    else:
        raise WorkbenchError(
            f"{path}: " + ("no tier has text." if not with_text else
                           "several tiers have text; choose the transcript with --tier NAME: "
                           + ", ".join(repr(t.name) for t in with_text) + "."))
    return [TranscriptLine(f"{path.name}: tier {chosen.name!r}, annotation {a.id}",
                           a.value.strip()) for a in chosen.annotations if a.value.strip()]


def line_labels(text: str, tokenizer: Any, profile: Any) -> tuple[list[int], list[str]]:
    """A line as the model's label ids (``WILDCARD`` for labels it cannot write) and its
    words, after the orthography profile."""
    from workbench.text import normalize, tokenize

    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    vocab = tokenizer.get_vocab()
    normalized = normalize(text, profile)
    labels = tokenize(normalized, profile)
    delimiter = tokenizer.word_delimiter_token
    ids = [vocab[delimiter] if lab == "|" else vocab.get(lab, WILDCARD) for lab in labels]
    return ids, normalized.split()


def viterbi(log_probs: np.ndarray, labels: list[int], blank: int
            ) -> tuple[list[tuple[int, int]], float]:
    """CTC Viterbi alignment of ``labels`` in ``log_probs`` (frames, vocab) with a free start
    and end: the frames (first, last) of each label and the mean probability of the labels
    on their frames. ``WILDCARD`` labels take the best non-blank label of each frame."""
    frames = len(log_probs)
    states = 2 * len(labels) + 1
    emit = np.empty((frames, states), np.float32)
    emit[:, 0::2] = log_probs[:, [blank]]
    others = np.delete(log_probs, blank, axis=1).max(axis=1)
    for k, label in enumerate(labels):
        emit[:, 2 * k + 1] = others if label == WILDCARD else log_probs[:, label]
    skip = np.zeros(states, bool)  # a label may follow the one before it without a blank
    for k in range(1, len(labels)):
        skip[2 * k + 1] = labels[k] != labels[k - 1] or labels[k] == WILDCARD
    score = np.full(states, NEG, np.float32)
    back = np.zeros((frames, states), np.int8)  # 0 stay, 1 from s-1, 2 from s-2, 3 start
    finals = [states - 1, states - 2] if states > 1 else [0]
    best = (NEG, 0, finals[0])  # score, frame, state of the best complete alignment
    # Frames outside the line (other speech in the window, or silence) are explained by a
    # "garbage" score: the frame's best label, less OUTSIDE_PENALTY. With a free start and end
    # that cost nothing instead, the line would shed its first and last letters.
    garbage = np.concatenate(([0.0], np.cumsum(log_probs.max(axis=1) - OUTSIDE_PENALTY)))
    fresh = np.full(states, NEG, np.float32)
    for t in range(frames):
        fresh[:2] = garbage[t]  # the line starts here: every frame before it is outside
        step = np.concatenate(([NEG], score[:-1]))
        jump = np.where(skip, np.concatenate(([NEG, NEG], score[:-2])), NEG)
        options = np.stack([score, step, jump, fresh])
        back[t] = options.argmax(axis=0)
        score = options.max(axis=0) + emit[t]
        after = garbage[frames] - garbage[t + 1]  # the line ends here: the rest is outside
        for state in finals:
            if score[state] + after > best[0]:
                best = (float(score[state] + after), t, state)
    return _trace(back, emit, labels, best[1], best[2])


def _trace(back: np.ndarray, emit: np.ndarray, labels: list[int], last: int, state: int
           ) -> tuple[list[tuple[int, int]], float]:
    spans: dict[int, list[int]] = {}
    t = last
    while t >= 0:
        if state % 2 == 1:
            spans.setdefault(state // 2, []).append(t)
        move = back[t, state]
        if move == 3:
            break
        state -= int(move)
        t -= 1
    found = [(min(spans[k]), max(spans[k])) if k in spans else (-1, -1)
             for k in range(len(labels))]
    probs = [float(np.exp(emit[t, 2 * k + 1]))
             for k, frames in spans.items() for t in frames]
    return found, float(np.mean(probs)) if probs else 0.0


def align_lines(log_probs: np.ndarray, lines: list[str], tokenizer: Any, profile: Any, *,
                frame_s: float, min_confidence: float = MIN_CONFIDENCE) -> list[AlignedLine]:
    """Time each line of ``lines`` in the recording's ``log_probs`` (see module docstring)."""
    tok = getattr(tokenizer, "tokenizer", tokenizer)
    blank, delimiter = tok.pad_token_id, tok.convert_tokens_to_ids(tok.word_delimiter_token)
    prepared = [(i, text, *line_labels(text, tok, profile)) for i, text in enumerate(lines, 1)]
    prepared = [p for p in prepared if p[2]]
    speech = np.flatnonzero(log_probs.argmax(axis=1) != blank)
    labels_total = sum(len(p[2]) for p in prepared) or 1
    frames_per_label = max(len(speech), 1) / labels_total
    cursor, out = 0, []
    for number, text, labels, words in prepared:
        span = int(len(labels) * frames_per_label * WINDOW_FACTOR + WINDOW_EXTRA_S / frame_s)
        window = log_probs[cursor:cursor + span]
        if len(window) == 0:
            out.append(AlignedLine(number, text, None, 0.0, "not_in_audio"))
            continue
        found, confidence = viterbi(window, labels, blank)
        segment = _line_segment(found, labels, words, delimiter, cursor, frame_s, window,
                                confidence)
        if confidence < min_confidence:
            out.append(AlignedLine(number, text, None, round(confidence, 4), "not_in_audio",
                                   guess=segment))
            continue
        out.append(AlignedLine(number, text, segment, round(confidence, 4)))
        cursor += max(f[1] for f in found if f[1] >= 0) + 1
    return out


def _line_segment(found, labels, words, delimiter, offset, frame_s, window, confidence
                  ) -> Segment:
    """Word times from the label spans (words split at the delimiter labels)."""
    timed, current = [], []
    for (first, last), label in zip(found, labels, strict=True):
        if label == delimiter:
            if current:
                timed.append(current)
            current = []
        elif first >= 0:
            current.append((first, last))
    if current:
        timed.append(current)
    word_list = []
    for text, spans in zip(words, timed, strict=False):
        start, end = spans[0][0], spans[-1][1]
        probs = np.exp(window[start:end + 1].max(axis=1))
        word_list.append(Word(text, round((offset + start) * frame_s, 3),
                              round((offset + end + 1) * frame_s, 3),
                              round(float(probs.mean()), 4)))
    start = word_list[0].start if word_list else 0.0
    end = word_list[-1].end if word_list else 0.0
    return Segment(start, end, " ".join(words), round(confidence, 4), word_list)


def unaligned_speech(aligned: list[AlignedLine], log_probs: np.ndarray, blank: int,
                     frame_s: float, min_s: float = MIN_GAP_SPEECH_S) -> list[tuple[float, float]]:
    """Stretches between aligned lines where the model writes letters no line covers.

    CTC output is peaky (a letter takes a frame or two, blanks fill the rest), so speech is
    counted in letter frames: at least ``GAP_LETTERS`` of them, spread over ``min_s`` or
    more, ``GAP_MARGIN_S`` away from the aligned lines (whose edges the alignment may trim).
    """
    spoken = log_probs.argmax(axis=1) != blank
    bounds = [(0.0, 0.0)] + [(a.segment.start, a.segment.end) for a in aligned if a.segment]
    bounds.append((len(log_probs) * frame_s, len(log_probs) * frame_s))
    found = []
    for (_, after), (before, _) in zip(bounds, bounds[1:], strict=False):
        first = int((after + GAP_MARGIN_S) / frame_s)
        frames = np.flatnonzero(spoken[first:max(first, int((before - GAP_MARGIN_S) / frame_s))])
        if frames.size >= GAP_LETTERS and (frames[-1] - frames[0] + 1) * frame_s >= min_s:
            found.append((round((first + frames[0]) * frame_s, 3),
                          round((first + frames[-1] + 1) * frame_s, 3)))
    return found


def recording_log_probs(recognizer: Any, path: Path) -> tuple[np.ndarray, float]:
    """Frame log-probabilities of a recording of any length, read as a stream (4 bytes per
    label per frame); and its length in seconds."""
    from workbench.audio import open_audio
    from workbench.transcribe import stream_log_probs

    with open_audio(path) as stream:
        log_probs, total = stream_log_probs(recognizer, stream)
    return log_probs, total / SAMPLE_RATE


def align_file(recognizer: Any, audio: Path, transcript: Path | list[TranscriptLine],
               profile: Any, *, model_name: str = "workbench",
               min_confidence: float = MIN_CONFIDENCE) -> tuple[Any, list[AlignedLine]]:
    """Align a transcript (a plain-text file, one utterance a line, or the lines of
    :func:`read_transcript`) to a recording.

    Returns:
        A :class:`~workbench.writers.TimedTranscript` of the aligned lines, whose ``notes``
        name every flagged line and every stretch of speech without a line; and every line
        with its outcome (``where`` names it: file and line number, or ELAN tier and
        annotation).
    """
    from workbench.writers import TimedTranscript

    lines = transcript if isinstance(transcript, list) else read_transcript(transcript)
    log_probs, seconds = recording_log_probs(recognizer, audio)
    tok = getattr(recognizer.tokenizer, "tokenizer", recognizer.tokenizer)
    frame_s = recognizer.hop / SAMPLE_RATE
    aligned = align_lines(log_probs, [line.text for line in lines], tok, profile,
                          frame_s=frame_s, min_confidence=min_confidence)
    skipped = sorted(set(range(1, len(lines) + 1)) - {a.line for a in aligned})
    for a in aligned:
        a.where = lines[a.line - 1].where
        a.line = _line_number(a.where, a.line)
    notes = [f"{lines[n - 1].where}: nothing to align after the orthography profile "
             f"(no letter the model writes): {lines[n - 1].text!r}" for n in skipped]
    notes += [f"{a.where}: not found in the recording (confidence {a.confidence:.2f}): "
              f"{a.text!r}" for a in aligned if a.flag]
    gaps = unaligned_speech(aligned, log_probs, tok.pad_token_id, frame_s)
    notes += [f"{Path(audio).name} {start:.2f}-{end:.2f} s: speech that no line of the "
              "transcript covers" for start, end in gaps]
    segments = [a.segment for a in aligned if a.segment]
    return TimedTranscript(Path(audio), seconds, segments, model_name, notes), aligned


def _line_number(where: str, position: int) -> int:
    """The line number in a text file (blank lines counted), else the position."""
    number = where.rsplit(":", 1)[-1]
    return int(number) if number.isdigit() else position
