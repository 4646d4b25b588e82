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

Here are the entry points (:func:`run_audit`, :func:`audit_utterances`,
:func:`load_excluded_ids`); the package keeps its parts apart::

    report.py   limits, AuditOptions and the report's dataclasses (what audit.json holds)
    checks.py   checks of one utterance at a time
    corpus.py   findings about the corpus as a whole, and the summaries
    format.py   format_audit: the report for the terminal
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from workbench.audit.checks import (
    check_unique_ids,
    ctc_required_frames,
    duplicate_issues,
    rate_issues,
    source_of,
    transcript_chars,
    utterance_findings,
)
from workbench.audit.corpus import (
    audio_leaks,
    data_amount_findings,
    duplicate_transcripts,
    duration_histogram,
    shared_speakers,
    source_counts,
    speaker_leaks,
    speaker_minutes,
    split_stats,
)
from workbench.audit.format import format_audit
from workbench.audit.report import (
    CHECKS,
    CORPUS_CHECKS,
    EXCLUDED,
    MAX_DURATION_S,
    WARNED,
    AuditOptions,
    AuditReport,
    CorpusFinding,
    Issue,
    SpeakerMinutes,
    SplitStats,
)
from workbench.errors import WorkbenchError
from workbench.manifest import SPLITS, Utterance, write_json_atomic
from workbench.text import OrthographyProfile, load_profile, normalize, tokenize
from workbench.workspace import Workspace

__all__ = [
    "CHECKS", "CORPUS_CHECKS", "EXCLUDED", "MAX_DURATION_S", "WARNED", "AuditOptions",
    "AuditReport", "CorpusFinding", "Issue", "SpeakerMinutes", "SplitStats", "audit_utterances",
    "ctc_required_frames", "duration_histogram", "format_audit", "load_excluded_ids",
    "read_import_issues", "run_audit", "transcript_chars", "utterance_findings",
]


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
    check_unique_ids(ordered)
    texts = {utt.id: normalize(utt.text, profile) for _, utt in ordered}
    labels = {uid: tokenize(text, profile) for uid, text in texts.items()}
    issues = [
        Issue(utt.id, split, source_of(utt), check, detail, action)
        for split, utt in ordered
        for check, detail, action in utterance_findings(utt, labels[utt.id], options)
    ]
    checked = _excluded(issues)
    issues += duplicate_issues(ordered, checked, labels)
    excluded = _excluded(issues)
    issues += rate_issues(ordered, texts, excluded, options)
    position = {utt.id: i for i, (_, utt) in enumerate(ordered)}
    issues.sort(key=lambda issue: (position[issue.id], CHECKS.index(issue.check)))

    def histogram(utts: Iterable[Utterance]) -> list[dict]:
        pairs = [(u.duration, u.id not in excluded) for u in utts]
        return duration_histogram(pairs, options.histogram_bin)

    total = split_stats((u for _, u in ordered), excluded)
    per_split = {split: split_stats(utts, excluded) for split, utts in splits.items()}
    findings = data_amount_findings(per_split.get("train", SplitStats()), total, options)
    findings += speaker_leaks(splits)
    findings += audio_leaks(ordered, checked, excluded)
    findings += duplicate_transcripts(ordered, texts, excluded)
    all_utterances = [u for _, u in ordered]
    return AuditReport(
        total=total,
        splits=per_split,
        histogram=histogram(all_utterances),
        split_histograms={split: histogram(utts) for split, utts in splits.items()},
        shared_speakers=shared_speakers(splits),
        issues=issues,
        import_issues=[dict(item) for item in import_issues],
        options=options,
        speaker_minutes=speaker_minutes(splits, excluded),
        sample_rates=source_counts(all_utterances, "orig_sample_rate", "sample_rate"),
        channels=source_counts(all_utterances, "orig_channels", "channels"),
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

