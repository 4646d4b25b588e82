"""Tests for workbench.audit: every check, the report invariants and audit.json."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

from workbench.audio import ctc_output_frames
from workbench.audit import (
    EXCLUDED,
    WARNED,
    AuditOptions,
    audit_utterances,
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
    fast = AuditOptions(max_chars_per_second=60.0)  # 55 chars/s; only the CTC check is tested
    assert _checks(audit_utterances(splits, profile, fast), "q") == {}


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
    text = "abcde fghij klmno pqrst"  # 20 characters in 20 s: 1.0 chars/s
    splits = {
        "train": [
            _utt("edge", rms_db=-50.0, peak=1e-3, clipped_fraction=0.001, duration=20.0,
                 text=text),
            _utt("fast", text="ab" * 15 + " " + "cd" * 15, duration=2.0),  # 30 chars/s
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


def test_one_long_outlier_gets_an_open_last_bin():
    # 24 clips of 1-4 s and one of 44 s: 5 bars ("≥ 4 s" the last), not 45 one-second bins.
    durations = [(1.0 + 3.0 * i / 24, True) for i in range(24)] + [(44.0, False)]
    rows = duration_histogram(durations)
    assert [(r["start"], r["end"]) for r in rows] == [
        (0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 4.0), (4.0, None)]
    assert (rows[-1]["count"], rows[-1]["kept"]) == (1, 0)
    assert sum(r["count"] for r in rows) == 25


def test_long_clips_get_wider_bins_not_more():
    rows = duration_histogram([(float(s), True) for s in range(0, 400, 7)])
    assert len(rows) <= 21 and rows[0]["end"] - rows[0]["start"] == 30.0
    assert sum(r["count"] for r in rows) == len(range(0, 400, 7))
    assert all(r["end"] is not None for r in rows)  # no outlier: no open bin


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
    assert [r["end"] - r["start"] for r in report.split_histograms["dev"]] == [2.0] * 16
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


def test_format_audit_shows_outliers_in_an_open_bin():
    splits = {"train": [_utt(f"u{i}", duration=1.0 + i / 10) for i in range(20)]
              + [_utt("long", duration=400.0)]}
    report = audit_utterances(splits)
    assert len(report.histogram) == 4 and report.histogram[-1]["end"] is None
    lines = format_audit(report).splitlines()
    start = lines.index("Durations (all splits):") + 1
    assert lines[start + 3].strip().startswith(">= 3 s #") and lines[start + 3].endswith(" 1")
    assert lines[start + 4] == ""


def test_format_audit_merges_an_old_long_histogram():
    report = audit_utterances({"train": [_utt("a")]})
    report.histogram = [{"start": float(i), "end": float(i + 1), "count": i % 2, "kept": 0}
                        for i in range(401)]  # an audit.json from before the open bin
    lines = format_audit(report).splitlines()
    start = lines.index("Durations (all splits):") + 1
    assert 0 < lines[start:].index("") <= 30


# --- corpus description ----------------------------------------------------------------------


def _finding(report, check: str):
    found = [f for f in report.findings if f.check == check]
    assert len(found) == 1, (check, report.findings)
    return found[0]


def test_minutes_per_speaker_per_split_and_overall():
    splits = {
        "train": [_utt("a", speaker="s1", duration=18.0), _utt("b", speaker="s2", duration=6.0),
                  _utt("c", speaker="s1", duration=12.0, truncated=True)],
        "dev": [_utt("d", speaker="s3", duration=18.0)],
        "test": [_utt("e", speaker="s1", duration=6.0), _utt("f", speaker="", duration=3.0)],
    }
    rows = {r.speaker: r for r in audit_utterances(splits).speaker_minutes}
    assert list(rows) == ["s1", "s3", "s2", ""]  # most minutes first
    s1 = rows["s1"]
    assert s1.utterances == 3
    assert s1.minutes == pytest.approx(0.6) and s1.kept_minutes == pytest.approx(0.4)
    assert s1.split_minutes == pytest.approx({"train": 0.5, "dev": 0.0, "test": 0.1})
    assert s1.split_kept_minutes == pytest.approx({"train": 0.3, "dev": 0.0, "test": 0.1})
    assert rows[""].minutes == pytest.approx(0.05)


def test_sample_rates_and_channels_of_the_sources():
    splits = {
        "train": [
            _utt("a", orig_sample_rate=44100, orig_channels=2, source="rec/long.wav"),
            _utt("b", orig_sample_rate=44100, orig_channels=2, source="rec/long.wav"),
            _utt("c", orig_sample_rate=8000, orig_channels=1),
            _utt("d", orig_sample_rate=16000, orig_channels=1),
        ]
    }
    report = audit_utterances(splits)
    assert report.sample_rates == [
        {"sample_rate": 8000, "utterances": 1, "files": 1},
        {"sample_rate": 16000, "utterances": 1, "files": 1},
        {"sample_rate": 44100, "utterances": 2, "files": 1},
    ]
    assert report.channels == [
        {"channels": 1, "utterances": 2, "files": 2},
        {"channels": 2, "utterances": 2, "files": 1},
    ]
    text = format_audit(report)
    assert "44100 Hz: 2 utt. from 1 file(s)" in text
    assert "below 16000 Hz" in text


# --- speaking rate ---------------------------------------------------------------------------


def test_chars_per_second_outside_the_absolute_limits_is_a_warning():
    splits = {
        "train": [
            _utt("ok"),
            _utt("fast", text="abcdefghij klmnopqrst uvwxyzabcdefgh", duration=1.0),  # 34/s
            _utt("slow", text="wasi", duration=8.0),  # 0.5/s
        ]
    }
    report = audit_utterances(splits)
    assert _checks(report, "fast") == {"chars_per_second": WARNED}
    assert _checks(report, "slow") == {"chars_per_second": WARNED}
    assert _checks(report, "ok") == {}
    assert report.excluded_ids() == set()
    details = {i.id: i.detail for i in report.issues}
    assert "34.0 chars/s" in details["fast"] and "limit of 30" in details["fast"]
    assert "0.5 chars/s" in details["slow"]
    assert all("does not match its audio" in d for d in details.values())
    _assert_invariants(report, splits)


def _even_corpus(count: int) -> list[Utterance]:
    # About 5 chars/s with some spread: 10 characters in 1.8-2.2 s.
    return [
        _utt(f"u{i:02d}", text="kuna wasip", duration=1.8 + 0.4 * i / max(count - 1, 1))
        for i in range(count)
    ]


def test_chars_per_second_outlier_against_the_corpus():
    odd = _utt("odd", text="kuna wasip", duration=0.6)  # 16.7/s: plausible alone, not here
    report = audit_utterances({"train": [*_even_corpus(12), odd]})
    assert _checks(report, "odd") == {"chars_per_second": WARNED}
    detail = next(i.detail for i in report.issues if i.id == "odd")
    assert "median" in detail and "z-score" in detail
    assert [i.id for i in report.issues] == ["odd"]
    # Too few utterances to call anything unusual: only the absolute limits apply.
    assert audit_utterances({"train": [*_even_corpus(5), odd]}).issues == []


def test_chars_per_second_skips_excluded_clips_and_uses_options():
    splits = {"train": [_utt("long", text="wasi", duration=25.0), _utt("slow", duration=5.0)]}
    report = audit_utterances(splits)
    assert _checks(report, "long") == {"too_long": EXCLUDED}  # no rate warning on top
    assert _checks(report, "slow") == {}  # 8 characters in 5 s = 1.6/s
    strict = AuditOptions(min_chars_per_second=2.0)
    assert _checks(audit_utterances(splits, options=strict), "slow") == {
        "chars_per_second": WARNED
    }
    with pytest.raises(WorkbenchError, match="chars_per_second"):
        AuditOptions(min_chars_per_second=40.0)


# --- corpus-level findings -------------------------------------------------------------------


def test_duplicate_transcripts_are_listed_not_excluded():
    splits = {
        "train": [_utt("a", text="Kuna wasi!"), _utt("b", text="kuna  wasi"),
                  _utt("c", text="other words")],
        "test": [_utt("d", text="KUNA WASI")],
    }
    report = audit_utterances(splits)
    finding = _finding(report, "duplicate_transcript")
    assert finding.subject == "kuna wasi"
    assert finding.ids == ["a", "b", "d"]
    assert "train 2, test 1" in finding.detail and "Held-out" in finding.detail
    assert report.excluded_ids() == set()
    assert report.issues == []


def test_duplicate_transcripts_ignore_excluded_and_empty_ones():
    splits = {"train": [_utt("a"), _utt("b", truncated=True), _utt("c", text="..."),
                        _utt("d", text="!")]}
    assert not [f for f in audit_utterances(splits).findings if f.check == "duplicate_transcript"]


def test_speaker_and_audio_leaks_between_train_and_held_out():
    splits = {
        "train": [_utt("t1", speaker="ana", sha1="same", text="uno"),
                  _utt("t2", speaker="ben", text="dos")],
        "dev": [_utt("d1", speaker="cai", text="tres")],
        "test": [_utt("e1", speaker="ana", sha1="same", text="uno"),
                 _utt("e2", speaker="ana", text="cuatro"), _utt("e3", speaker="dee", text="x")],
    }
    report = audit_utterances(splits)
    speaker = _finding(report, "speaker_leak")
    assert speaker.subject == "ana" and speaker.ids == ["e1", "e2"]
    assert "train (1 utterances)" in speaker.detail and "test (2)" in speaker.detail
    audio = _finding(report, "audio_leak")
    assert audio.ids == ["t1", "e1"]
    # The held-out copy is also excluded by the duplicate check, so it is not scored.
    assert _checks(report, "e1") == {"duplicate_audio": EXCLUDED}
    assert "not scored" in audio.detail
    assert report.shared_speakers == {"ana": ["train", "test"]}
    _assert_invariants(report, splits)


def test_audio_leak_says_when_the_held_out_copy_would_be_scored():
    # Held-out split listed first: the duplicate check keeps the test copy, drops the train one.
    splits = {"test": [_utt("e1", sha1="same", speaker="x")],
              "train": [_utt("t1", sha1="same", speaker="y")]}
    report = audit_utterances(splits)
    assert _checks(report, "t1") == {"duplicate_audio": EXCLUDED}
    assert not [f for f in report.findings if f.check == "audio_leak"]  # t1 trains on nothing


def test_speakers_kept_apart_give_no_leak():
    splits = {"train": [_utt("a", speaker="s1")], "test": [_utt("b", speaker="s2")]}
    checks = {f.check for f in audit_utterances(splits).findings}
    assert not checks & {"speaker_leak", "audio_leak", "single_speaker"}


def test_too_little_data_and_a_single_speaker_are_explained():
    splits = {"train": [_utt(f"u{i}", text=f"kuna wasi {i}") for i in range(45)]}  # 1.5 min
    report = audit_utterances(splits)
    little = _finding(report, "little_training_audio")
    assert little.detail.startswith(
        "With 1.5 minutes of training audio expect a high error rate; 10 minutes is a "
        "practical minimum for XLS-R"
    )
    assert little.ids == []
    single = _finding(report, "single_speaker")
    assert single.subject == "spk1"
    assert "test scores say nothing about other voices" in single.detail
    assert report.finding_counts() == {"little_training_audio": 1, "single_speaker": 1}


def test_excluded_audio_does_not_count_as_training_audio():
    many = [_utt(f"u{i}", speaker=f"s{i % 3}", text=f"kuna wasi {i}") for i in range(90)]
    assert not [f for f in audit_utterances({"train": many}).findings]  # 3 minutes, 3 voices
    silent = [replace(u, rms_db=-90.0) if i % 2 else u for i, u in enumerate(many)]
    report = audit_utterances({"train": silent})
    assert _finding(report, "little_training_audio").detail.startswith("With 1.5 minutes")


def test_no_speaker_names_at_all():
    report = audit_utterances({"train": [_utt("a", speaker=""), _utt("b", speaker="")]})
    assert "speaker column" in _finding(report, "unknown_speakers").detail
    assert not [f for f in report.findings if f.check == "single_speaker"]


def test_report_dict_is_plain_json(tmp_path):
    splits = {
        "train": [_utt("a", orig_sample_rate=44100, orig_channels=2), _utt("b", sha1="s")],
        "test": [_utt("c", sha1="s")],
    }
    ws = _workspace(tmp_path, splits)
    run_audit(ws)
    data = json.loads(ws.audit_path.read_text(encoding="utf-8"))
    assert data["sample_rates"][-1] == {"sample_rate": 44100, "utterances": 1, "files": 1}
    assert data["speaker_minutes"][0]["speaker"] == "spk1"
    assert data["speaker_minutes"][0]["split_minutes"]["test"] == pytest.approx(2 / 60)
    checks = {f["check"] for f in data["findings"]}
    assert {"audio_leak", "speaker_leak", "little_training_audio", "single_speaker"} <= checks
    assert set(data["findings"][0]) == {"check", "subject", "detail", "ids"}
    assert data["finding_counts"]["audio_leak"] == 1
    assert data["options"]["max_chars_per_second"] == 30.0


def test_format_audit_shows_speakers_sources_and_corpus_findings():
    splits = {
        "train": [_utt("a", speaker="ana", orig_sample_rate=48000, orig_channels=2),
                  _utt("b", speaker="ana", text="pachakuna", sha1="s")],
        "test": [_utt("c", speaker="ana", text="pachakuna", sha1="s")],
    }
    text = format_audit(audit_utterances(splits))
    assert "Audio per speaker" in text
    assert "  ana               0:00:04  0:00:00  0:00:04  0:00:06" in text  # c: duplicate
    assert "48000 Hz" in text and "channels" in text
    assert "About the corpus as a whole" in text
    for check in ("little_training_audio", "single_speaker", "speaker_leak", "audio_leak"):
        assert check in text
    assert "ids: b, c" in text


def test_too_short_for_ctc_counts_labels_in_the_profiles_unit():
    """"क्षत्रिय" is 5 labels by grapheme (क् ष त् रि य) but 8 code points: 6 frames are too
    few for the code points the model learns by default, enough for grapheme labels."""
    six_frames = 2319 / 16000
    splits = {"train": [_utt("hindi", text="क्षत्रिय", duration=six_frames)]}
    assert "too_short_for_ctc" in _checks(audit_utterances(splits), "hindi")
    by_grapheme = OrthographyProfile(label_unit="grapheme")
    assert "too_short_for_ctc" not in _checks(audit_utterances(splits, by_grapheme), "hindi")
