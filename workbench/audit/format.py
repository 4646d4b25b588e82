"""The audit as a readable summary for the terminal (`workbench audit`)."""

from __future__ import annotations

from workbench.audit.report import EXCLUDED, AuditReport, CorpusFinding, Issue

TERMINAL_LIST_LIMIT = 25  # utterances listed per section before "... and N more"
FINDING_IDS_SHOWN = 10  # utterance ids printed per corpus finding


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
    """Merge neighbouring bins so a long tail fits on a terminal (an audit.json written
    before histograms had an open last bin may hold hundreds)."""
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
        label = (f"{row['start']:g}-{row['end']:g} s" if row["end"] is not None
                 else f">= {row['start']:g} s")
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
