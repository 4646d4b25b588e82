"""Data checks over a prepared workspace -> AuditReport (what is wrong, where, what was done).

The audit reads the statistics the importer stored on each Utterance (duration, peak, level,
clipping, non-finite samples, truncation, hash); it never decodes audio. Every utterance ends
up either kept or listed with the reason it was left out, and ``audit.json`` records both
together with the importer's own findings (``import.json``: rows without audio, unreadable
files, ...), copied as they are.

Besides the per-utterance checks the report describes the corpus as a whole: minutes per
speaker, the sample rates and channel counts of the sources, and findings that concern
several utterances or none in particular (too little training audio, a single speaker,
speakers or audio shared between train and the held-out splits, repeated transcripts).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from itertools import pairwise
from pathlib import Path

from workbench.audio import CONV_KERNELS, CONV_STRIDES, SAMPLE_RATE, ctc_output_frames
from workbench.errors import WorkbenchError
from workbench.manifest import SPLITS, Utterance, write_json_atomic
from workbench.text import (
    OrthographyProfile,
    load_profile,
    normalize,
    split_characters,
    tokenize,
)
from workbench.workspace import Workspace

# Limits (each overridable through AuditOptions).
MAX_DURATION_S = 20.0  # longer clips blow up GPU memory in a batch; cut them first
SILENCE_RMS_DB = -50.0  # dBFS; quieter than this is (nearly) silence
SILENCE_PEAK = 1e-3  # largest |sample| below this is silence whatever the RMS says
MAX_CLIPPED_FRACTION = 0.001  # share of samples at full scale above which we warn
HISTOGRAM_BIN_S = 1.0
# Speaking rate in characters (not spaces) of the normalised transcript per second of audio.
# Fluent speech runs at about 10-15; a lone elicited word in a 2-3 s clip at 1.5-3.
MIN_CHARS_PER_SECOND = 1.0  # slower: most of the clip is not in its transcript
MAX_CHARS_PER_SECOND = 30.0  # faster than anyone speaks: the transcript is longer than the audio
MAX_RATE_Z = 3.5  # robust z-score of the log rate (median/MAD) beyond which a clip stands out
MIN_UTTERANCES_FOR_RATE_STATS = 10  # fewer: only the absolute limits apply
MAD_TO_SIGMA = 0.6745  # 0.6745 * (x - median) / MAD is a z-score for normal data
# Floor of the MAD of log rates: in a very even corpus (one voice reading) a clip 20% off the
# median would otherwise stand out; with the floor it takes about 1.7 times (or 1/1.7).
MIN_LOG_RATE_MAD = 0.1
MIN_TRAIN_MINUTES = 2.0  # less training audio than this is flagged
PRACTICAL_TRAIN_MINUTES = 10.0  # named in the advice: a practical minimum for XLS-R
FINDING_IDS_SHOWN = 10  # utterance ids format_audit prints per corpus finding

# The wav2vec 2.0 feature encoder (same in XLS-R and MMS): seven 1-D convolutions.

TERMINAL_LIST_LIMIT = 25  # utterances listed by format_audit before "... and N more"

EXCLUDED = "excluded from training"
WARNED = "kept (warning)"

# Order in which checks are reported.
CHECKS = (
    "truncated",
    "empty_audio",
    "nan",
    "silent",
    "clipped",
    "too_long",
    "too_short_for_ctc",
    "empty_transcript",
    "chars_per_second",
    "duplicate_audio",
)
# Order in which corpus-level findings are reported.
CORPUS_CHECKS = (
    "little_training_audio",
    "single_speaker",
    "unknown_speakers",
    "speaker_leak",
    "audio_leak",
    "duplicate_transcript",
)
HELD_OUT = ("dev", "test")


@dataclass(frozen=True)
class AuditOptions:
    """Thresholds of the audit; the defaults are the module constants.

    Attributes:
        max_duration: Clips longer than this many seconds are excluded.
        silence_rms_db: Clips with an RMS level below this (dBFS) are silent.
        silence_peak: Clips whose largest absolute sample is below this are silent.
        max_clipped_fraction: Warn when a larger share of samples is at full scale.
        sample_rate: Sample rate of the cached clips.
        conv_kernels: Kernel sizes of the model's convolutional feature encoder.
        conv_strides: Strides of the same layers.
        histogram_bin: Width of a duration histogram bin in seconds.
        min_chars_per_second: Warn about clips whose transcript is slower than this.
        max_chars_per_second: Warn about clips whose transcript is faster than this.
        max_rate_z: Warn about clips whose speaking rate lies further than this (robust
            z-score of the log rate) from the rest of the corpus.
        min_train_minutes: Warn when the kept training audio is shorter than this.
    """

    max_duration: float = MAX_DURATION_S
    silence_rms_db: float = SILENCE_RMS_DB
    silence_peak: float = SILENCE_PEAK
    max_clipped_fraction: float = MAX_CLIPPED_FRACTION
    sample_rate: int = SAMPLE_RATE
    conv_kernels: tuple[int, ...] = CONV_KERNELS
    conv_strides: tuple[int, ...] = CONV_STRIDES
    histogram_bin: float = HISTOGRAM_BIN_S
    min_chars_per_second: float = MIN_CHARS_PER_SECOND
    max_chars_per_second: float = MAX_CHARS_PER_SECOND
    max_rate_z: float = MAX_RATE_Z
    min_train_minutes: float = MIN_TRAIN_MINUTES

    def __post_init__(self) -> None:
        object.__setattr__(self, "conv_kernels", tuple(self.conv_kernels))
        object.__setattr__(self, "conv_strides", tuple(self.conv_strides))
        if self.max_duration <= 0 or self.histogram_bin <= 0 or self.sample_rate <= 0:
            raise WorkbenchError(
                "Audit options max_duration, histogram_bin and sample_rate must be positive."
            )
        if len(self.conv_kernels) != len(self.conv_strides) or not self.conv_kernels:
            raise WorkbenchError(
                "Audit options conv_kernels and conv_strides must list the same number of layers."
            )
        if not 0 <= self.min_chars_per_second < self.max_chars_per_second or self.max_rate_z <= 0:
            raise WorkbenchError(
                "Audit options need 0 <= min_chars_per_second < max_chars_per_second and a "
                "positive max_rate_z."
            )

    @classmethod
    def from_dict(cls, data: dict) -> AuditOptions:
        """Options from their ``to_dict``/JSON form; unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Issue:
    """One finding about one utterance."""

    id: str
    split: str
    source: str
    check: str
    detail: str
    action: str


@dataclass
class SplitStats:
    """Counts and seconds of one split (or of all splits together)."""

    utterances: int = 0
    seconds: float = 0.0
    kept: int = 0
    kept_seconds: float = 0.0
    excluded: int = 0
    excluded_seconds: float = 0.0
    speakers: list[str] = field(default_factory=list)
    unknown_speaker_utterances: int = 0


@dataclass
class SpeakerMinutes:
    """Minutes of audio of one speaker ("" stands for utterances without a speaker).

    Attributes:
        speaker: The speaker id, "" for unknown.
        utterances: Utterances over all splits.
        minutes: Minutes over all splits.
        kept_minutes: Minutes over all splits that the audit keeps for training/evaluation.
        split_minutes: Minutes per split (every split of the report, 0.0 where absent).
        split_kept_minutes: Kept minutes per split.
    """

    speaker: str
    utterances: int = 0
    minutes: float = 0.0
    kept_minutes: float = 0.0
    split_minutes: dict[str, float] = field(default_factory=dict)
    split_kept_minutes: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CorpusFinding:
    """A finding about the corpus as a whole or about a group of utterances.

    Attributes:
        check: One of :data:`CORPUS_CHECKS`.
        subject: What it is about: a speaker, a transcript, an audio hash; "" for the corpus.
        detail: A readable sentence saying what was found and what it means for the results.
        ids: The utterances concerned (empty when the finding is about the whole corpus).
    """

    check: str
    subject: str
    detail: str
    ids: list[str] = field(default_factory=list)


@dataclass
class AuditReport:
    """Result of :func:`audit_utterances` / :func:`run_audit`.

    Attributes:
        total: Counts over all splits.
        splits: Counts per split.
        histogram: Duration histogram over all splits: {"start", "end", "count", "kept"}.
        split_histograms: The same per split.
        shared_speakers: Speakers found in more than one split -> those splits.
        issues: Every finding, in split and manifest order.
        import_issues: The importer's findings (``import.json``), as it wrote them.
        options: The thresholds used.
        speaker_minutes: Minutes per speaker, most first.
        sample_rates: Sample rates of the source files: {"sample_rate", "utterances",
            "files"}, 0 where unknown.
        channels: Channel counts of the source files: {"channels", "utterances", "files"}.
        findings: Corpus-level findings, in :data:`CORPUS_CHECKS` order.
    """

    total: SplitStats
    splits: dict[str, SplitStats]
    histogram: list[dict]
    split_histograms: dict[str, list[dict]]
    shared_speakers: dict[str, list[str]]
    issues: list[Issue]
    import_issues: list[dict]
    options: AuditOptions
    speaker_minutes: list[SpeakerMinutes] = field(default_factory=list)
    sample_rates: list[dict] = field(default_factory=list)
    channels: list[dict] = field(default_factory=list)
    findings: list[CorpusFinding] = field(default_factory=list)

    def excluded_ids(self) -> set[str]:
        """Ids of utterances left out of training."""
        return {issue.id for issue in self.issues if issue.action == EXCLUDED}

    def check_counts(self) -> dict[str, int]:
        """Number of utterances each check flagged (checks that flagged none are omitted)."""
        counts = Counter(issue.check for issue in self.issues)
        return {check: counts[check] for check in CHECKS if counts[check]}

    def finding_counts(self) -> dict[str, int]:
        """Number of corpus-level findings of each check (checks without any are omitted)."""
        counts = Counter(finding.check for finding in self.findings)
        return {check: counts[check] for check in CORPUS_CHECKS if counts[check]}

    def to_dict(self) -> dict:
        """JSON-ready form of the report."""
        data = asdict(self)
        data["check_counts"] = self.check_counts()
        data["finding_counts"] = self.finding_counts()
        data["excluded_ids"] = sorted(self.excluded_ids())
        return data


# ---------------------------------------------------------------------------------------------
# CTC length


def ctc_required_frames(labels: Sequence[str]) -> int:
    """Fewest frames CTC needs for ``labels``: one per label plus a blank between repeats."""
    repeats = sum(1 for before, after in pairwise(labels) if before == after)
    return len(labels) + repeats


# ---------------------------------------------------------------------------------------------
# Checks


def _source(utt: Utterance) -> str:
    if utt.source_line:
        return f"{utt.source} (transcript line {utt.source_line})"
    return utt.source


def _audio_findings(utt: Utterance, options: AuditOptions) -> list[tuple[str, str, str]]:
    """(check, detail, action) for the level, clipping and length checks of a non-empty clip."""
    found = []
    if utt.rms_db < options.silence_rms_db or utt.peak < options.silence_peak:
        found.append(
            (
                "silent",
                f"level {utt.rms_db:.1f} dBFS, peak {utt.peak:.4g}: below the silence limits "
                f"({options.silence_rms_db:g} dBFS, peak {options.silence_peak:g})",
                EXCLUDED,
            )
        )
    if utt.clipped_fraction > options.max_clipped_fraction:
        found.append(
            (
                "clipped",
                f"{utt.clipped_fraction:.2%} of samples at full scale (limit "
                f"{options.max_clipped_fraction:.2%}); the recording level was too high",
                WARNED,
            )
        )
    if utt.duration > options.max_duration:
        found.append(
            (
                "too_long",
                f"{utt.duration:.1f} s, longer than {options.max_duration:g} s; split the "
                "recording into shorter segments",
                EXCLUDED,
            )
        )
    return found


def _ctc_finding(utt: Utterance, labels: list[str], options: AuditOptions) -> tuple | None:
    samples = round(utt.duration * options.sample_rate)
    frames = ctc_output_frames(samples, options.conv_kernels, options.conv_strides)
    needed = ctc_required_frames(labels)
    if needed <= frames:
        return None
    return (
        "too_short_for_ctc",
        f"{len(labels)} labels need at least {needed} frames (repeated labels need a blank "
        f"between them) but {utt.duration:.2f} s gives only {frames}; the transcript may "
        "belong to another clip or the clip was cut too short",
        EXCLUDED,
    )


def utterance_findings(
    utt: Utterance, labels: list[str], options: AuditOptions
) -> list[tuple[str, str, str]]:
    """All (check, detail, action) findings for one utterance, except duplicates.

    Args:
        utt: The utterance with its import-time statistics.
        labels: Its transcript, normalised and tokenised with the workspace profile.
        options: Thresholds.
    """
    found = []
    if utt.truncated:
        found.append(
            (
                "truncated",
                "the file ended before its header said it would; the clip is incomplete",
                EXCLUDED,
            )
        )
    if utt.duration <= 0:
        found.append(("empty_audio", "the clip has no audio (0 s)", EXCLUDED))
    if utt.nan_count > 0:
        found.append(
            (
                "nan",
                f"{utt.nan_count} non-finite samples (NaN/inf) in the source file; it is damaged",
                EXCLUDED,
            )
        )
    if utt.duration > 0:  # an empty clip is not also reported as silent or too short
        found += _audio_findings(utt, options)
    if not labels:
        found.append(
            (
                "empty_transcript",
                f"transcript {utt.text!r} is empty after normalisation",
                EXCLUDED,
            )
        )
    elif utt.duration > 0:
        ctc = _ctc_finding(utt, labels, options)
        if ctc:
            found.append(ctc)
    return found


def _duplicate_issues(
    ordered: list[tuple[str, Utterance]], excluded: set[str], labels: dict[str, list[str]]
) -> list[Issue]:
    """Exclude every later copy of audio already kept under another utterance.

    The first utterance with a given hash that passes the other checks is the original; an
    utterance already excluded for another reason neither becomes an original nor is flagged.
    """
    originals: dict[str, tuple[str, Utterance]] = {}
    issues = []
    for split, utt in ordered:
        if not utt.sha1 or utt.id in excluded:
            continue
        if utt.sha1 not in originals:
            originals[utt.sha1] = (split, utt)
            continue
        first_split, first = originals[utt.sha1]
        same_text = labels[first.id] == labels[utt.id]
        detail = f"same audio as {first.id} ({first_split}); transcripts " + (
            "match" if same_text else f"differ: {first.text!r} vs {utt.text!r}"
        )
        issues.append(Issue(utt.id, split, _source(utt), "duplicate_audio", detail, EXCLUDED))
    return issues


def transcript_chars(normalized: str) -> int:
    """Characters of a normalised transcript, spaces left out, a letter with its marks as one."""
    return sum(1 for cluster in split_characters(normalized) if not cluster.isspace())


def _rate_stats(rates: Sequence[float]) -> tuple[float, float] | None:
    """Median and MAD (floored) of the log rates; None when there are too few rates."""
    if len(rates) < MIN_UTTERANCES_FOR_RATE_STATS:
        return None
    logs = [math.log(rate) for rate in rates]
    median = statistics.median(logs)
    mad = statistics.median(abs(x - median) for x in logs)
    return median, max(mad, MIN_LOG_RATE_MAD)


def _rate_reason(rate: float, stats: tuple[float, float] | None, options: AuditOptions) -> str:
    """Why a speaking rate is implausible ("" when it is not)."""
    if rate > options.max_chars_per_second:
        return f"faster than the limit of {options.max_chars_per_second:g} chars/s"
    if rate < options.min_chars_per_second:
        return f"slower than the limit of {options.min_chars_per_second:g} chars/s"
    if stats is None:
        return ""
    median, mad = stats
    z = MAD_TO_SIGMA * (math.log(rate) - median) / mad
    if abs(z) <= options.max_rate_z:
        return ""
    return (
        f"far from this corpus's median of {math.exp(median):.1f} chars/s (robust z-score "
        f"{z:+.1f}, limit {options.max_rate_z:g})"
    )


def _rate_issues(
    ordered: list[tuple[str, Utterance]],
    texts: dict[str, str],
    excluded: set[str],
    options: AuditOptions,
) -> list[Issue]:
    """Warn about kept clips whose speaking rate does not fit their length or the corpus.

    Clips already excluded are left out, both of the warnings and of the statistics.
    """
    chars = {utt.id: transcript_chars(texts[utt.id]) for _, utt in ordered}
    rated = [
        (split, utt, chars[utt.id] / utt.duration)
        for split, utt in ordered
        if utt.id not in excluded and utt.duration > 0 and chars[utt.id] > 0
    ]
    stats = _rate_stats([rate for _, _, rate in rated])
    issues = []
    for split, utt, rate in rated:
        reason = _rate_reason(rate, stats, options)
        if reason:
            detail = (
                f"{chars[utt.id]} characters in {utt.duration:.2f} s = {rate:.1f} chars/s, "
                f"{reason}; the transcript probably does not match its audio (another clip's "
                "text, a partial transcript, or a clip cut too short or too long)"
            )
            issues.append(Issue(utt.id, split, _source(utt), "chars_per_second", detail, WARNED))
    return issues


# ---------------------------------------------------------------------------------------------
# Corpus-level findings


def _data_amount_findings(
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
                "scores may look better than they will on new speakers; add a speaker column "
                "to the transcript table.",
            )
        )
    return findings


def _speaker_leaks(splits: dict[str, list[Utterance]]) -> list[CorpusFinding]:
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
                "Re-split so each speaker is in one split only (`workbench prepare` does this "
                "when every row names one of at least 3 speakers).",
                [uid for ids in by_split.values() for uid in ids],
            )
        )
    return findings


def _audio_leaks(
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


def _duplicate_transcripts(
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


def duration_histogram(
    durations: Sequence[tuple[float, bool]], bin_seconds: float = HISTOGRAM_BIN_S
) -> list[dict]:
    """Histogram of (duration, kept) pairs in fixed-width bins from 0 up to the longest.

    Returns:
        [{"start", "end", "count", "kept"}], bins [start, end), empty when there is no data.
    """
    if not durations:
        return []
    longest = max(max(d for d, _ in durations), 0.0)
    bins = [
        {"start": i * bin_seconds, "end": (i + 1) * bin_seconds, "count": 0, "kept": 0}
        for i in range(int(longest // bin_seconds) + 1)
    ]
    for duration, kept in durations:
        row = bins[int(max(duration, 0.0) // bin_seconds)]
        row["count"] += 1
        row["kept"] += int(kept)
    return bins


def _split_stats(utterances: Iterable[Utterance], excluded: set[str]) -> SplitStats:
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


def _shared_speakers(splits: dict[str, list[Utterance]]) -> dict[str, list[str]]:
    where: dict[str, list[str]] = {}
    for split, utterances in splits.items():
        for speaker in sorted({u.speaker for u in utterances if u.speaker}):
            where.setdefault(speaker, []).append(split)
    return {speaker: found for speaker, found in sorted(where.items()) if len(found) > 1}


def _speaker_minutes(
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


def _source_counts(utterances: Sequence[Utterance], attribute: str, key: str) -> list[dict]:
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


def _check_unique_ids(ordered: list[tuple[str, Utterance]]) -> None:
    seen: dict[str, str] = {}
    for split, utt in ordered:
        if utt.id in seen:
            raise WorkbenchError(
                f"Utterance id {utt.id!r} appears twice (in {seen[utt.id]} and {split}); ids "
                "must be unique. Re-run `workbench prepare` to rebuild the manifests."
            )
        seen[utt.id] = split


# ---------------------------------------------------------------------------------------------
# Entry points


def audit_utterances(
    splits: dict[str, list[Utterance]],
    profile: OrthographyProfile | None = None,
    options: AuditOptions | None = None,
    import_issues: Sequence[dict] = (),
) -> AuditReport:
    """Run every check over the given splits; nothing is read or written.

    Args:
        splits: Utterances keyed by split name, in the order duplicates are resolved.
        profile: Orthography profile for the transcript checks (defaults when None).
        options: Thresholds (module defaults when None).
        import_issues: The importer's findings, copied into the report.

    Returns:
        The report.

    Raises:
        WorkbenchError: Two utterances share an id.
    """
    profile = profile or OrthographyProfile()
    options = options or AuditOptions()
    ordered = [(split, utt) for split, utts in splits.items() for utt in utts]
    _check_unique_ids(ordered)
    texts = {utt.id: normalize(utt.text, profile) for _, utt in ordered}
    labels = {uid: tokenize(text, profile) for uid, text in texts.items()}
    issues = [
        Issue(utt.id, split, _source(utt), check, detail, action)
        for split, utt in ordered
        for check, detail, action in utterance_findings(utt, labels[utt.id], options)
    ]
    checked = _excluded(issues)
    issues += _duplicate_issues(ordered, checked, labels)
    excluded = _excluded(issues)
    issues += _rate_issues(ordered, texts, excluded, options)
    position = {utt.id: i for i, (_, utt) in enumerate(ordered)}
    issues.sort(key=lambda issue: (position[issue.id], CHECKS.index(issue.check)))

    def histogram(utts: Iterable[Utterance]) -> list[dict]:
        pairs = [(u.duration, u.id not in excluded) for u in utts]
        return duration_histogram(pairs, options.histogram_bin)

    total = _split_stats((u for _, u in ordered), excluded)
    split_stats = {split: _split_stats(utts, excluded) for split, utts in splits.items()}
    findings = _data_amount_findings(split_stats.get("train", SplitStats()), total, options)
    findings += _speaker_leaks(splits)
    findings += _audio_leaks(ordered, checked, excluded)
    findings += _duplicate_transcripts(ordered, texts, excluded)
    all_utterances = [u for _, u in ordered]
    return AuditReport(
        total=total,
        splits=split_stats,
        histogram=histogram(all_utterances),
        split_histograms={split: histogram(utts) for split, utts in splits.items()},
        shared_speakers=_shared_speakers(splits),
        issues=issues,
        import_issues=[dict(item) for item in import_issues],
        options=options,
        speaker_minutes=_speaker_minutes(splits, excluded),
        sample_rates=_source_counts(all_utterances, "orig_sample_rate", "sample_rate"),
        channels=_source_counts(all_utterances, "orig_channels", "channels"),
        findings=findings,
    )


def _excluded(issues: Iterable[Issue]) -> set[str]:
    return {issue.id for issue in issues if issue.action == EXCLUDED}


def read_import_issues(ws: Workspace) -> list[dict]:
    """The importer's findings from ``import.json`` (empty if there is no such file).

    Raises:
        WorkbenchError: The file exists but is not the importer's JSON report.
    """
    path = ws.import_report_path
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise WorkbenchError(
            f"{path} is not valid JSON ({err}); re-run `workbench prepare` to rewrite it."
        ) from err
    issues = data.get("issues", []) if isinstance(data, dict) else None
    if not isinstance(issues, list) or not all(isinstance(i, dict) for i in issues):
        raise WorkbenchError(
            f"{path} has no list of issues; re-run `workbench prepare` to rewrite it."
        )
    return issues


def run_audit(ws: Workspace, *, options: AuditOptions | None = None) -> AuditReport:
    """Audit a prepared workspace and write ``audit.json``.

    Args:
        ws: The workspace.
        options: Thresholds (module defaults when None).

    Returns:
        The report (also written to ``ws.audit_path``).

    Raises:
        WorkbenchError: The workspace is not prepared, or its manifests are inconsistent.
    """
    ws.require_prepared()
    profile = load_profile(ws.profile_path)
    splits = ws.read_all()
    report = audit_utterances(splits, profile, options, read_import_issues(ws))
    write_json_atomic(ws.audit_path, report.to_dict())
    return report


def _audit_is_stale(ws: Workspace) -> bool:
    inputs = [ws.manifest_path(split) for split in SPLITS]
    inputs += [ws.profile_path, ws.import_report_path]
    written = ws.audit_path.stat().st_mtime_ns
    return any(p.exists() and p.stat().st_mtime_ns > written for p in inputs)


def _read_audit(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("issues"), list):
        return None
    return data


def load_excluded_ids(ws: Workspace) -> set[str]:
    """Ids the last audit excluded from training.

    The audit is (re)run when ``audit.json`` is missing, unreadable, or older than the
    manifests, the profile or the import report; a rerun keeps the thresholds it recorded.
    """
    data = _read_audit(ws.audit_path) if ws.audit_path.exists() else None
    if data is None or _audit_is_stale(ws):
        options = None
        if data is not None and isinstance(data.get("options"), dict):
            options = AuditOptions.from_dict(data["options"])
        return run_audit(ws, options=options).excluded_ids()
    return {
        issue["id"]
        for issue in data["issues"]
        if isinstance(issue, dict) and issue.get("action") == EXCLUDED
    }


# ---------------------------------------------------------------------------------------------
# Terminal summary


def _hms(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _split_table(report: AuditReport) -> list[str]:
    lines = [
        f"{'split':<8}{'utts':>7}{'duration':>11}{'kept':>7}{'kept dur.':>11}"
        f"{'excluded':>10}{'speakers':>10}"
    ]
    rows = [*report.splits.items(), ("total", report.total)]
    for name, s in rows:
        lines.append(
            f"{name:<8}{s.utterances:>7}{_hms(s.seconds):>11}{s.kept:>7}"
            f"{_hms(s.kept_seconds):>11}{s.excluded:>10}{len(s.speakers):>10}"
        )
    return lines


def _merge_bins(histogram: list[dict], max_rows: int) -> list[dict]:
    """Merge neighbouring bins so a long tail fits on a terminal."""
    group = -(-len(histogram) // max_rows)
    merged = []
    for i in range(0, len(histogram), group):
        rows = histogram[i : i + group]
        merged.append(
            {
                "start": rows[0]["start"],
                "end": rows[-1]["end"],
                "count": sum(r["count"] for r in rows),
                "kept": sum(r["kept"] for r in rows),
            }
        )
    return merged


def _histogram_lines(histogram: list[dict], width: int = 40, max_rows: int = 30) -> list[str]:
    if not histogram:
        return ["  (no utterances)"]
    rows = _merge_bins(histogram, max_rows)
    top = max(row["count"] for row in rows) or 1
    lines = []
    for row in rows:
        label = f"{row['start']:g}-{row['end']:g} s"
        bar = "#" * round(width * row["count"] / top)
        lines.append(f"  {label:>13} {bar:<{width}} {row['count']}")
    return lines


def _issue_lines(issues: list[Issue], title: str, limit: int) -> list[str]:
    if not issues:
        return []
    lines = [f"{title} ({len(issues)}):"]
    lines += [f"  {i.id} [{i.split}] {i.check}: {i.detail}" for i in issues[:limit]]
    if len(issues) > limit:
        lines.append(f"  ... and {len(issues) - limit} more, see audit.json")
    return lines


def _speaker_lines(report: AuditReport, limit: int) -> list[str]:
    """Kept minutes per speaker and split, most recorded speaker first."""
    if not report.speaker_minutes:
        return []
    splits = list(report.splits)
    lines = [
        "Audio per speaker (h:mm:ss kept for training and scoring; all = with excluded):",
        f"  {'speaker':<16}" + "".join(f"{s:>9}" for s in splits) + f"{'kept':>9}{'all':>9}",
    ]
    for row in report.speaker_minutes[:limit]:
        name = row.speaker or "(unknown)"
        cells = "".join(f"{_hms(60 * row.split_kept_minutes.get(s, 0.0)):>9}" for s in splits)
        totals = f"{_hms(60 * row.kept_minutes):>9}{_hms(60 * row.minutes):>9}"
        lines.append(f"  {name:<16}{cells}{totals}")
    if len(report.speaker_minutes) > limit:
        lines.append(f"  ... and {len(report.speaker_minutes) - limit} more, see audit.json")
    return lines


def _source_lines(report: AuditReport) -> list[str]:
    """Sample rates and channel counts of the source files."""
    if not report.sample_rates:
        return []

    def listing(rows: list[dict], key: str, unit: str) -> str:
        return ", ".join(
            f"{row[key] or 'unknown'}{unit if row[key] else ''}: {row['utterances']} utt. "
            f"from {row['files']} file(s)"
            for row in rows
        )

    lines = [
        "Source audio (all decoded to 16 kHz mono):",
        f"  sample rates  {listing(report.sample_rates, 'sample_rate', ' Hz')}",
        f"  channels      {listing(report.channels, 'channels', '')}",
    ]
    low = [r for r in report.sample_rates if 0 < r["sample_rate"] < report.options.sample_rate]
    if low:
        lines.append(
            f"  {sum(r['utterances'] for r in low)} utterance(s) come from sources below "
            f"{report.options.sample_rate} Hz (telephone quality?): upsampled, they lack the "
            "high frequencies the model expects."
        )
    return lines


def _finding_lines(findings: list[CorpusFinding], limit: int) -> list[str]:
    if not findings:
        return []
    lines = [f"About the corpus as a whole ({len(findings)}):"]
    for finding in findings[:limit]:
        lines.append(f"  {finding.check}: {finding.detail}")
        if finding.ids:
            shown = ", ".join(finding.ids[:FINDING_IDS_SHOWN])
            more = len(finding.ids) - FINDING_IDS_SHOWN
            lines.append(f"    ids: {shown}" + (f" ... and {more} more" if more > 0 else ""))
    if len(findings) > limit:
        lines.append(f"  ... and {len(findings) - limit} more, see audit.json")
    return lines


def format_audit(report: AuditReport, *, limit: int = TERMINAL_LIST_LIMIT) -> str:
    """Readable summary of an audit for the terminal.

    Args:
        report: The audit.
        limit: Most utterances listed per section; the rest are counted, not listed.
    """
    lines = _split_table(report)
    for block in (_speaker_lines(report, limit), _source_lines(report)):
        if block:
            lines += ["", *block]
    lines += ["", "Durations (all splits):", *_histogram_lines(report.histogram)]
    counts = report.check_counts()
    if counts:
        actions = {issue.check: issue.action for issue in report.issues}
        lines += ["", "Checks:"]
        for check, count in counts.items():
            lines.append(f"  {check:<20}{count:>6}  {actions[check]}")
    else:
        lines += ["", "Every utterance passed every check."]
    excluded = [i for i in report.issues if i.action == EXCLUDED]
    warned = [i for i in report.issues if i.action != EXCLUDED]
    for title, issues in (("Excluded from training", excluded), ("Kept with a warning", warned)):
        block = _issue_lines(issues, title, limit)
        if block:
            lines += ["", *block]
    if report.shared_speakers:
        lines += [
            "",
            f"Speakers in more than one split: {len(report.shared_speakers)} "
            "(test results will look better than they are)",
        ]
    block = _finding_lines(report.findings, limit)
    if block:
        lines += ["", *block]
    if report.import_issues:
        lines += ["", f"Import: {len(report.import_issues)} item(s) set aside:"]
        for item in report.import_issues[:limit]:
            lines.append(
                f"  {item.get('item', '?')} {item.get('check', '?')}: "
                f"{item.get('detail', '')} ({item.get('action', '')})"
            )
        if len(report.import_issues) > limit:
            lines.append(f"  ... and {len(report.import_issues) - limit} more, see audit.json")
    return "\n".join(lines)
