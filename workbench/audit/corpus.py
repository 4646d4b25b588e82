"""Findings about the corpus as a whole, and the summaries a report carries.

Too little training audio, a single speaker, speakers or audio shared between train and the
held-out splits, repeated transcripts; durations, minutes per speaker, source formats.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from workbench.audit.report import (
    HELD_OUT,
    HISTOGRAM_BIN_S,
    PRACTICAL_TRAIN_MINUTES,
    AuditOptions,
    CorpusFinding,
    SpeakerMinutes,
    SplitStats,
)
from workbench.manifest import Utterance


def data_amount_findings(
    train: SplitStats, total: SplitStats, options: AuditOptions
) -> list[CorpusFinding]:
    """Too little training audio, a single speaker, or no speaker names at all."""
    findings = []
    minutes = train.kept_seconds / 60
    if minutes < options.min_train_minutes:
        findings.append(
            CorpusFinding(
                "little_training_audio",
                "",
                f"With {minutes:.1f} minutes of training audio expect a high error rate; "
                f"{PRACTICAL_TRAIN_MINUTES:g} minutes is a practical minimum for XLS-R, and "
                "more audio helps more than any setting.",
            )
        )
    if len(total.speakers) == 1 and not total.unknown_speaker_utterances:
        findings.append(
            CorpusFinding(
                "single_speaker",
                total.speakers[0],
                f"Every utterance is by one speaker ({total.speakers[0]}): the model learns "
                "this voice only, and with a single speaker the test scores say nothing about "
                "other voices.",
            )
        )
    elif total.utterances and not total.speakers:
        findings.append(
            CorpusFinding(
                "unknown_speakers",
                "",
                "No utterance names its speaker, so train and test may share voices and the "
                "scores may look better than they will on new speakers. Name the speakers and "
                "import again: a table's speaker column (--speaker-column); for TextGrid files "
                "--speaker or --speaker-from-tier; for ELAN files the tiers' participants.",
            )
        )
    return findings


def speaker_leaks(splits: dict[str, list[Utterance]]) -> list[CorpusFinding]:
    """Speakers heard in training who are also in dev or test."""
    train_counts = Counter(u.speaker for u in splits.get("train", []) if u.speaker)
    held: dict[str, dict[str, list[str]]] = {}
    for split in HELD_OUT:
        for utt in splits.get(split, []):
            if utt.speaker in train_counts:
                held.setdefault(utt.speaker, {}).setdefault(split, []).append(utt.id)
    findings = []
    for speaker, by_split in sorted(held.items()):
        where = ", ".join(f"{split} ({len(ids)})" for split, ids in by_split.items())
        findings.append(
            CorpusFinding(
                "speaker_leak",
                speaker,
                f"Speaker {speaker} is in train ({train_counts[speaker]} utterances) and in "
                f"{where}: scores on those utterances will look better than on a new voice. "
                "Re-split so each speaker is in one split only: importing again does this when "
                "every utterance names one of at least 3 speakers.",
                [uid for ids in by_split.values() for uid in ids],
            )
        )
    return findings


def audio_leaks(
    ordered: list[tuple[str, Utterance]], checked: set[str], excluded: set[str]
) -> list[CorpusFinding]:
    """The same audio (hash) kept in train and present in dev or test.

    Args:
        ordered: (split, utterance) pairs.
        checked: Ids excluded by the per-utterance checks (they train on nothing).
        excluded: Ids excluded after the duplicate check too (they are not scored).
    """
    groups: dict[str, list[tuple[str, Utterance]]] = {}
    for split, utt in ordered:
        if utt.sha1 and utt.id not in checked:
            groups.setdefault(utt.sha1, []).append((split, utt))
    findings = []
    for sha1, group in groups.items():
        trained = [u.id for split, u in group if split == "train" and u.id not in excluded]
        held = [(split, u.id) for split, u in group if split in HELD_OUT]
        if not trained or not held:
            continue
        scored = [uid for _, uid in held if uid not in excluded]
        outcome = (
            f"{', '.join(scored)} would be scored on audio the model trained on"
            if scored
            else "the held-out copy is excluded as duplicate_audio, so it is not scored"
        )
        findings.append(
            CorpusFinding(
                "audio_leak",
                sha1,
                f"The same audio is in train ({', '.join(trained)}) and in "
                f"{', '.join(f'{split} ({uid})' for split, uid in held)}: {outcome}. Check the "
                "source for recordings filed twice under different names.",
                trained + [uid for _, uid in held],
            )
        )
    return findings


def duplicate_transcripts(
    ordered: list[tuple[str, Utterance]], texts: dict[str, str], excluded: set[str]
) -> list[CorpusFinding]:
    """The same normalised transcript in several kept utterances (a warning, nothing excluded)."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for split, utt in ordered:
        if texts[utt.id] and utt.id not in excluded:
            groups.setdefault(texts[utt.id], []).append((split, utt.id))
    findings = []
    for text, group in groups.items():
        if len(group) < 2:
            continue
        per_split = Counter(split for split, _ in group)
        where = ", ".join(f"{split} {count}" for split, count in per_split.items())
        detail = (
            f"{len(group)} utterances have the transcript {text!r} ({where}). That is expected "
            "when several speakers read the same prompts; otherwise a transcript may have been "
            "copied into the wrong row."
        )
        if "train" in per_split and any(split in per_split for split in HELD_OUT):
            detail += " Held-out copies of a training sentence are easier than new sentences."
        findings.append(
            CorpusFinding("duplicate_transcript", text, detail, [uid for _, uid in group])
        )
    return findings



# ---------------------------------------------------------------------------------------------
# Summaries


MAX_HISTOGRAM_BINS = 20  # bars of a duration histogram before the open last one
# Bin widths in seconds, narrowest first: the narrowest that fits MAX_HISTOGRAM_BINS is used.
HISTOGRAM_WIDTHS = (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
OUTLIER_IQR = 3.0  # longer than Q3 + 3 IQR (Tukey's "far out"): counted in the open last bin


def duration_histogram(
    durations: Sequence[tuple[float, bool]],
    bin_seconds: float = HISTOGRAM_BIN_S,
    max_bins: int = MAX_HISTOGRAM_BINS,
) -> list[dict]:
    """Histogram of (duration, kept) pairs that stays readable with outliers.

    Bins of one width cover 0 up to the typical longest clip (the longest that is not far out
    of the rest, see :data:`OUTLIER_IQR`); the width is the narrowest of ``bin_seconds`` and
    :data:`HISTOGRAM_WIDTHS` that needs at most ``max_bins`` bins. Longer clips share one open
    last bin (``"end": None``), so one 44 s clip among 3 s clips adds one bar, not 40.

    Returns:
        [{"start", "end", "count", "kept"}], bins [start, end), empty when there is no data.
    """
    if not durations:
        return []
    values = sorted(max(d, 0.0) for d, _ in durations)
    typical = _typical_longest(values)
    width = _bin_width(typical, bin_seconds, max_bins)
    closed = min(int(typical // width) + 1, max_bins)
    bins = [
        {"start": i * width, "end": (i + 1) * width, "count": 0, "kept": 0}
        for i in range(closed)
    ]
    if values[-1] >= closed * width:
        bins.append({"start": closed * width, "end": None, "count": 0, "kept": 0})
    for duration, kept in durations:
        row = bins[min(int(max(duration, 0.0) // width), len(bins) - 1)]
        row["count"] += 1
        row["kept"] += int(kept)
    return bins


def _typical_longest(values: Sequence[float]) -> float:
    """The longest of sorted ``values`` that is not far out (above Q3 + OUTLIER_IQR * IQR)."""
    q1, q3 = _quantile(values, 0.25), _quantile(values, 0.75)
    fence = q3 + OUTLIER_IQR * (q3 - q1)
    return max((v for v in values if v <= fence), default=values[-1])


def _quantile(values: Sequence[float], share: float) -> float:
    """Linear-interpolated quantile of sorted ``values``."""
    position = share * (len(values) - 1)
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def _bin_width(longest: float, narrowest: float, max_bins: int) -> float:
    """The narrowest readable width that covers 0..``longest`` in ``max_bins`` bins."""
    for width in (narrowest, *(w for w in HISTOGRAM_WIDTHS if w > narrowest)):
        if int(longest // width) + 1 <= max_bins:
            return width
    return HISTOGRAM_WIDTHS[-1]  # then the open last bin holds the rest


def split_stats(utterances: Iterable[Utterance], excluded: set[str]) -> SplitStats:
    """Counts and seconds of ``utterances``, kept and excluded, and their speakers."""
    stats = SplitStats()
    speakers = set()
    for utt in utterances:
        stats.utterances += 1
        stats.seconds += utt.duration
        if utt.id in excluded:
            stats.excluded += 1
            stats.excluded_seconds += utt.duration
        else:
            stats.kept += 1
            stats.kept_seconds += utt.duration
        if utt.speaker:
            speakers.add(utt.speaker)
        else:
            stats.unknown_speaker_utterances += 1
    stats.speakers = sorted(speakers)
    return stats


def shared_speakers(splits: dict[str, list[Utterance]]) -> dict[str, list[str]]:
    """Speakers found in more than one split -> those splits."""
    where: dict[str, list[str]] = {}
    for split, utterances in splits.items():
        for speaker in sorted({u.speaker for u in utterances if u.speaker}):
            where.setdefault(speaker, []).append(split)
    return {speaker: found for speaker, found in sorted(where.items()) if len(found) > 1}


def speaker_minutes(
    splits: dict[str, list[Utterance]], excluded: set[str]
) -> list[SpeakerMinutes]:
    """Minutes per speaker, per split and overall; the most recorded speaker first."""
    rows: dict[str, SpeakerMinutes] = {}
    for split, utterances in splits.items():
        for utt in utterances:
            row = rows.get(utt.speaker)
            if row is None:
                zeros = dict.fromkeys(splits, 0.0)
                row = rows[utt.speaker] = SpeakerMinutes(utt.speaker, 0, 0.0, 0.0, zeros, {**zeros})
            minutes = utt.duration / 60
            kept = 0.0 if utt.id in excluded else minutes
            row.utterances += 1
            row.minutes += minutes
            row.kept_minutes += kept
            row.split_minutes[split] += minutes
            row.split_kept_minutes[split] += kept
    return sorted(rows.values(), key=lambda r: (-r.minutes, r.speaker))


def source_counts(utterances: Sequence[Utterance], attribute: str, key: str) -> list[dict]:
    """How many utterances and source files have each value of ``attribute`` (e.g. 44100 Hz)."""
    counts: Counter = Counter()
    files: dict[int, set[str]] = {}
    for utt in utterances:
        value = getattr(utt, attribute)
        counts[value] += 1
        files.setdefault(value, set()).add(utt.source)
    return [
        {key: value, "utterances": counts[value], "files": len(files[value])}
        for value in sorted(counts)
    ]
