"""Tests for workbench.audit: every check, the report invariants and audit.json."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

from workbench.audit import (
    EXCLUDED,
    WARNED,
    AuditOptions,
    audit_utterances,
    ctc_output_frames,
    ctc_required_frames,
    duration_histogram,
    format_audit,
    load_excluded_ids,
    run_audit,
)
from workbench.errors import WorkbenchError
from workbench.manifest import SPLITS, Utterance, write_json_atomic, write_manifest
from workbench.text import OrthographyProfile, save_profile
from workbench.workspace import Workspace


def _utt(uid: str, **changes) -> Utterance:
    """A clean utterance: 2 s, healthy level, unique hash, a real transcript."""
    clean = Utterance(
        id=uid,
        audio=f"audio/{uid}.wav",
        text="kuna wasi",
        speaker="spk1",
        duration=2.0,
        source=f"raw/{uid}.wav",
        source_line=3,
        sha1=f"sha-{uid}",
        peak=0.5,
        rms_db=-20.0,
        split="train",
    )
    return replace(clean, **changes)


def _workspace(tmp_path, splits: dict[str, list[Utterance]]) -> Workspace:
    ws = Workspace.at(tmp_path / "ws")
    for split in SPLITS:
        utts = [replace(u, split=split) for u in splits.get(split, [])]
        write_manifest(ws.manifest_path(split), utts)
    return ws


def _checks(report, uid: str) -> dict[str, str]:
    return {i.check: i.action for i in report.issues if i.id == uid}


def _assert_invariants(report, splits: dict[str, list[Utterance]]) -> None:
    all_ids = {u.id for utts in splits.values() for u in utts}
    excluded = report.excluded_ids()
    assert excluded <= all_ids
    assert report.total.kept + report.total.excluded == report.total.utterances == len(all_ids)
    assert report.total.excluded == len(excluded)
    for split, utts in splits.items():
        stats = report.splits[split]
        ids = {u.id for u in utts}
        assert stats.excluded == len(ids & excluded)
        assert stats.kept + stats.excluded == stats.utterances == len(utts)
        assert stats.kept_seconds + stats.excluded_seconds == pytest.approx(stats.seconds)
    for issue in report.issues:
        assert issue.action in (EXCLUDED, WARNED)
        assert issue.detail


# --- CTC length ------------------------------------------------------------------------------


def test_ctc_output_frames_follow_the_conv_stack():
    assert ctc_output_frames(16000) == 49  # ~50 a second
    assert ctc_output_frames(399) == 0
    assert ctc_output_frames(400) == 1
    assert ctc_output_frames(2319) == 6
    assert ctc_output_frames(2320) == 7


def test_ctc_required_frames_counts_repeats():
    assert ctc_required_frames(list("aaaa")) == 7
    assert ctc_required_frames(list("abcd")) == 4
    assert ctc_required_frames(["ll", "a", "ll", "a"]) == 4
    assert ctc_required_frames(["a", "|", "a"]) == 3


def test_too_short_for_ctc_counts_repeats_and_delimiters():
    six_frames = 2319 / 16000
    seven_frames = 2320 / 16000
    splits = {
        "train": [
            _utt("repeats_short", text="aaaa", duration=six_frames),
            _utt("repeats_ok", text="aaaa", duration=seven_frames),
            _utt("distinct_ok", text="abcd", duration=six_frames),
            _utt("words_short", text="a b c d", duration=six_frames),  # 7 labels
        ]
    }
    report = audit_utterances(splits)
    assert "too_short_for_ctc" in _checks(report, "repeats_short")
    assert "7 frames" in next(i.detail for i in report.issues if i.id == "repeats_short")
    assert _checks(report, "repeats_ok") == {}
    assert _checks(report, "distinct_ok") == {}
    assert _checks(report, "words_short") == {"too_short_for_ctc": EXCLUDED}


def test_too_short_for_ctc_uses_profile_graphemes():
    duration = 2319 / 16000  # 6 frames
    text = "llalla ch"  # 7 characters but 6 labels with the graphemes below
    splits = {"train": [_utt("q", text=text, duration=duration)]}
    assert "too_short_for_ctc" in _checks(audit_utterances(splits), "q")
    profile = OrthographyProfile(graphemes=("ll", "ch"))
    assert _checks(audit_utterances(splits, profile), "q") == {}


# --- each check ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "changes", "action"),
    [
        ("truncated", {"truncated": True}, EXCLUDED),
        ("empty_audio", {"duration": 0.0, "rms_db": -120.0, "peak": 0.0}, EXCLUDED),
        ("nan", {"nan_count": 12}, EXCLUDED),
        ("silent", {"rms_db": -60.0}, EXCLUDED),
        ("silent", {"peak": 5e-4}, EXCLUDED),
        ("clipped", {"clipped_fraction": 0.01}, WARNED),
        ("too_long", {"duration": 25.0}, EXCLUDED),
        ("too_short_for_ctc", {"duration": 0.1}, EXCLUDED),
        ("empty_transcript", {"text": " ¿…! "}, EXCLUDED),
    ],
)
def test_each_check_triggers_alone(check, changes, action):
    splits = {"train": [_utt("clean"), _utt("bad", **changes)]}
    report = audit_utterances(splits)
    assert _checks(report, "bad") == {check: action}
    assert _checks(report, "clean") == {}
    assert report.excluded_ids() == ({"bad"} if action == EXCLUDED else set())
    _assert_invariants(report, splits)


def test_thresholds_at_the_limit_pass():
    splits = {
        "train": [
            _utt("edge", rms_db=-50.0, peak=1e-3, clipped_fraction=0.001, duration=20.0),
        ]
    }
    assert audit_utterances(splits).issues == []


def test_options_override_thresholds():
    splits = {"train": [_utt("long", duration=8.0), _utt("quiet", rms_db=-45.0)]}
    options = AuditOptions(max_duration=5.0, silence_rms_db=-40.0)
    report = audit_utterances(splits, options=options)
    assert _checks(report, "long") == {"too_long": EXCLUDED}
    assert _checks(report, "quiet") == {"silent": EXCLUDED}
    assert audit_utterances(splits).issues == []


def test_invalid_options_rejected():
    with pytest.raises(WorkbenchError):
        AuditOptions(max_duration=0)
    with pytest.raises(WorkbenchError):
        AuditOptions(conv_kernels=(10, 3), conv_strides=(5,))


def test_duplicates_excluded_naming_the_original():
    splits = {
        "train": [_utt("orig", sha1="same"), _utt("copy1", sha1="same")],
        "dev": [_utt("copy2", sha1="same", text="another text")],
        "test": [_utt("other", sha1="different")],
    }
    report = audit_utterances(splits)
    assert _checks(report, "orig") == {}
    assert _checks(report, "other") == {}
    details = {i.id: i.detail for i in report.issues if i.check == "duplicate_audio"}
    assert set(details) == {"copy1", "copy2"}
    assert "orig (train)" in details["copy1"] and "match" in details["copy1"]
    assert "orig (train)" in details["copy2"] and "differ" in details["copy2"]
    assert report.excluded_ids() == {"copy1", "copy2"}
    _assert_invariants(report, splits)


def test_duplicate_of_an_excluded_utterance_is_kept():
    splits = {"train": [_utt("blank", sha1="s", text="..."), _utt("good", sha1="s")]}
    report = audit_utterances(splits)
    assert _checks(report, "blank") == {"empty_transcript": EXCLUDED}
    assert _checks(report, "good") == {}


def test_missing_hash_is_not_a_duplicate():
    splits = {"train": [_utt("a", sha1=""), _utt("b", sha1="")]}
    assert audit_utterances(splits).issues == []


def test_duplicate_ids_are_an_error():
    splits = {"train": [_utt("x")], "dev": [_utt("x")]}
    with pytest.raises(WorkbenchError, match="twice"):
        audit_utterances(splits)


# --- summaries -------------------------------------------------------------------------------


def test_histogram_bins():
    rows = duration_histogram([(0.5, True), (1.0, False), (1.9, True), (3.2, True)], 1.0)
    assert [(r["start"], r["end"], r["count"], r["kept"]) for r in rows] == [
        (0.0, 1.0, 1, 1),
        (1.0, 2.0, 2, 1),
        (2.0, 3.0, 0, 0),
        (3.0, 4.0, 1, 1),
    ]
    assert duration_histogram([]) == []


def test_report_counts_speakers_and_histograms():
    splits = {
        "train": [_utt("a", speaker="s1"), _utt("b", speaker="s2", duration=3.5)],
        "dev": [_utt("c", speaker="s3", duration=30.0), _utt("d", speaker="")],
        "test": [_utt("e", speaker="s1")],
    }
    report = audit_utterances(splits)
    assert report.splits["train"].speakers == ["s1", "s2"]
    assert report.splits["dev"].speakers == ["s3"]
    assert report.splits["dev"].unknown_speaker_utterances == 1
    assert report.shared_speakers == {"s1": ["train", "test"]}
    assert report.splits["dev"].excluded_seconds == pytest.approx(30.0)
    assert report.total.seconds == pytest.approx(2 + 3.5 + 30 + 2 + 2)
    assert sum(r["count"] for r in report.histogram) == 5
    assert len(report.split_histograms["dev"]) == 31
    assert sum(r["kept"] for r in report.split_histograms["dev"]) == 1
    _assert_invariants(report, splits)


def test_every_utterance_kept_or_listed_with_a_reason():
    splits = {
        "train": [
            _utt("ok1"),
            _utt("trunc", truncated=True, nan_count=3),
            _utt("loud", clipped_fraction=0.5, duration=40.0),
            _utt("dup", sha1="sha-ok1"),
        ],
        "dev": [_utt("ok2"), _utt("empty", duration=0.0)],
        "test": [_utt("quiet", peak=1e-5, rms_db=-90.0), _utt("ok3")],
    }
    report = audit_utterances(splits)
    _assert_invariants(report, splits)
    assert report.excluded_ids() == {"trunc", "loud", "dup", "empty", "quiet"}
    assert _checks(report, "trunc") == {"truncated": EXCLUDED, "nan": EXCLUDED}
    assert _checks(report, "loud") == {"clipped": WARNED, "too_long": EXCLUDED}
    # An empty clip is reported once, not also as silent or too short.
    assert _checks(report, "empty") == {"empty_audio": EXCLUDED}
    assert report.check_counts()["truncated"] == 1


# --- workspace -------------------------------------------------------------------------------


def test_run_audit_writes_audit_json_with_import_issues(tmp_path):
    splits = {"train": [_utt("ok"), _utt("hush", rms_db=-70.0)], "dev": [_utt("d1")]}
    ws = _workspace(tmp_path, splits)
    import_issues = [
        {
            "item": "transcripts.tsv:7",
            "check": "row_without_audio",
            "detail": "no file x.wav",
            "action": "skipped",
        },
        {"item": "raw/b.wav", "check": "unreadable_audio", "detail": "bad", "action": "skipped"},
    ]
    write_json_atomic(ws.import_report_path, {"issues": import_issues, "sources": ["raw"]})

    report = run_audit(ws)
    data = json.loads(ws.audit_path.read_text(encoding="utf-8"))
    assert data["import_issues"] == import_issues
    assert data["excluded_ids"] == ["hush"]
    assert data["check_counts"] == {"silent": 1}
    [issue] = data["issues"]
    assert issue == {
        "id": "hush",
        "split": "train",
        "source": "raw/hush.wav (transcript line 3)",
        "check": "silent",
        "detail": issue["detail"],
        "action": EXCLUDED,
    }
    assert data["total"]["utterances"] == 3 and data["total"]["kept"] == 2
    assert report.excluded_ids() == {"hush"}
    assert set(data["splits"]) == set(SPLITS)


def test_run_audit_uses_workspace_profile(tmp_path):
    ws = _workspace(tmp_path, {"train": [_utt("x", text="xyz")]})
    save_profile(OrthographyProfile(ignore="xyz"), ws.profile_path)
    assert _checks(run_audit(ws), "x") == {"empty_transcript": EXCLUDED}


def test_run_audit_requires_prepared_workspace(tmp_path):
    with pytest.raises(WorkbenchError, match="prepare"):
        run_audit(Workspace.at(tmp_path / "empty"))


def test_bad_import_report_is_reported(tmp_path):
    ws = _workspace(tmp_path, {"train": [_utt("a")]})
    ws.import_report_path.write_text("{not json", encoding="utf-8")
    with pytest.raises(WorkbenchError, match="import.json"):
        run_audit(ws)


def test_load_excluded_ids_runs_audit_when_missing_and_when_stale(tmp_path):
    ws = _workspace(tmp_path, {"train": [_utt("a"), _utt("b", truncated=True)]})
    assert not ws.audit_path.exists()
    assert load_excluded_ids(ws) == {"b"}
    assert ws.audit_path.exists()

    # Custom thresholds recorded in audit.json survive a rerun.
    run_audit(ws, options=AuditOptions(max_duration=1.0))
    assert load_excluded_ids(ws) == {"a", "b"}
    write_manifest(ws.manifest_path("train"), [_utt("a"), _utt("b"), _utt("c", duration=0.5)])
    stamp = ws.audit_path.stat().st_mtime_ns - 10**9
    os.utime(ws.audit_path, ns=(stamp, stamp))
    assert load_excluded_ids(ws) == {"a", "b"}  # c (0.5 s) passes max_duration=1.0


def test_format_audit_summary_and_cap(tmp_path):
    many = [_utt(f"silent{i:03d}", rms_db=-80.0) for i in range(40)]
    splits = {"train": [_utt("ok"), *many, _utt("hot", clipped_fraction=0.2)], "dev": []}
    report = audit_utterances(splits, import_issues=[{"item": "x.wav", "check": "empty_audio"}])
    text = format_audit(report, limit=10)
    assert "train" in text and "dev" in text and "total" in text
    assert "silent" in text and "clipped" in text
    assert "silent009" in text and "silent010" not in text
    assert "... and 30 more, see audit.json" in text
    assert "hot" in text and WARNED in text
    assert "x.wav" in text
    assert "#" in text  # histogram bars
    assert "Every utterance passed" in format_audit(audit_utterances({"train": [_utt("a")]}))


def test_format_audit_merges_long_histograms():
    splits = {"train": [_utt("short", duration=1.5), _utt("long", duration=400.0)]}
    report = audit_utterances(splits)
    assert len(report.histogram) == 401  # the JSON keeps every 1-second bin
    lines = format_audit(report).splitlines()
    start = lines.index("Durations (all splits):") + 1
    bars = [line for line in lines[start:] if line.strip().endswith((" 0", " 1"))]
    assert 0 < len(bars) <= 30
