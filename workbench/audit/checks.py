"""Checks of one utterance at a time: audio, transcript, CTC length, copies, speaking rate.

Each reads the statistics the importer stored on the Utterance (duration, peak, level,
clipping, non-finite samples, truncation, hash); none decodes audio.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

from workbench.audio import ctc_output_frames
from workbench.audit.report import (
    EXCLUDED,
    MAD_TO_SIGMA,
    MIN_LOG_RATE_MAD,
    MIN_UTTERANCES_FOR_RATE_STATS,
    WARNED,
    AuditOptions,
    Issue,
)
from workbench.errors import WorkbenchError
from workbench.manifest import Utterance
from workbench.text import split_characters


def ctc_required_frames(labels: Sequence[str]) -> int:
    """Fewest frames CTC needs for ``labels``: one per label plus a blank between repeats."""
    repeats = sum(1 for before, after in pairwise(labels) if before == after)
    return len(labels) + repeats


def source_of(utt: Utterance) -> str:
    """Where an utterance came from, as the report names it (file and transcript line)."""
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
    if utt.extra.get("past_end_s"):
        found.append((
            "segment_cut_short",
            f"its segment ({utt.extra['start']:.2f}-{utt.extra['end']:.2f} s) runs "
            f"{utt.extra['past_end_s']:.2f} s past the end of {Path(utt.source).name}: the clip "
            "lacks the end of its transcript; was the right media file given?",
            EXCLUDED))
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


def duplicate_issues(
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
        issues.append(Issue(utt.id, split, source_of(utt), "duplicate_audio", detail, EXCLUDED))
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


def rate_issues(
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
            issues.append(Issue(utt.id, split, source_of(utt), "chars_per_second", detail, WARNED))
    return issues



def check_unique_ids(ordered: list[tuple[str, Utterance]]) -> None:
    """Refuse manifests in which two utterances share an id.

    Raises:
        WorkbenchError: An id appears twice; the message names both splits.
    """
    seen: dict[str, str] = {}
    for split, utt in ordered:
        if utt.id in seen:
            raise WorkbenchError(
                f"Utterance id {utt.id!r} appears twice (in {seen[utt.id]} and {split}); ids "
                "must be unique. Re-run `workbench prepare` to rebuild the manifests."
            )
        seen[utt.id] = split
