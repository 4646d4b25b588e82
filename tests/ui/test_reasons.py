"""Every check code the importer and the audit produce has a plain reason and what to do.

The codes are found in the sources themselves (``ImportIssue(item, "code", ...)``,
``FileSkipped("code", ...)``, ``CorpusFinding("code", ...)``, ``Issue(..., "code", ...)`` and
the audit's ``("code", detail, action)`` findings), so a new code without a reason fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ui.steps.reasons import REASONS, page_detail, reason_for, user_path

REPO = Path(__file__).resolve().parents[2]
SOURCES = [*sorted((REPO / "data_recipes").glob("*.py")),
           *sorted((REPO / "workbench" / "audit").glob("*.py")), REPO / "ui" / "uploads.py"]
CODE = r'"([a-z][a-z0-9]*(?:_[a-z0-9]+)*)"'
PATTERNS = [
    re.compile(r"ImportIssue\(\s*[^,()]*(?:\([^()]*\))?[^,()]*,\s*" + CODE),
    re.compile(r"FileSkipped\(\s*" + CODE),
    re.compile(r"CorpusFinding\(\s*" + CODE),
    re.compile(r"\bIssue\([^\"\n]*" + CODE),
]
FINDING_TUPLE = re.compile(r"\(\s*" + CODE + r",\s*f?\"")  # ("code", detail, action)


def produced_codes() -> set[str]:
    """Every check code written in the importer's and the audit's sources."""
    codes = set()
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        for pattern in PATTERNS:
            codes.update(pattern.findall(text))
        if path.name == "checks.py":
            codes.update(FINDING_TUPLE.findall(text))
    return codes


def test_the_sources_are_scanned():
    codes = produced_codes()
    # One code from each kind of place, so a broken pattern cannot pass unnoticed.
    assert {"row_without_audio", "audio_not_uploaded", "tier_not_found", "speaker_leak",
            "duplicate_audio", "too_short_for_ctc", "empty_transcript", "malformed_row",
            "unreadable_textgrid"} <= codes
    assert len(codes) >= 45


def test_every_code_has_a_plain_reason_and_what_to_do():
    missing = sorted(produced_codes() - set(REASONS))
    assert not missing, f"add a plain reason to ui/steps/reasons.py for: {missing}"


@pytest.mark.parametrize("code", sorted(REASONS))
def test_reasons_are_sentences_without_codes(code):
    reason = REASONS[code]
    assert reason.short and "_" not in reason.short
    for text in (reason.reason, reason.todo):
        assert text[0].isupper() and text.endswith("."), text
        assert "_" not in text and "--" not in text and "workbench " not in text, text


def test_an_unknown_code_still_reads():
    reason = reason_for("brand_new_check")
    assert reason.short == "brand new check" and reason.reason == "Brand new check."


def test_server_paths_become_the_names_the_user_uploaded(tmp_path):
    ws = tmp_path / "ws"
    assert user_path(f"{ws}/uploads/20240101-000000/clips/a.wav", ws) == "clips/a.wav"
    assert user_path(f"{ws}/sources/20240101-000000-корпус/Аудио/б.flac:3", ws) == "Аудио/б.flac:3"
    assert user_path(f"{ws}/manifests/train.jsonl", ws) == "manifests/train.jsonl"
    assert user_path("see /tmp/gradio/9f8e/録音.wav (not audio)") == "see 録音.wav (not audio)"
    assert user_path("dev/test and 3/4 stay") == "dev/test and 3/4 stay"


def test_details_read_as_the_page_words_them():
    detail = page_detail("no tier named 'tx'. Tiers:\n  - ref (A)\n  - ሰላም (B)\n"
                         "Choose one with --tier NAME")
    assert detail == ("no tier named 'tx'. Tiers: ref (A); ሰላም (B); Choose one with the "
                      "'Tier' import option")
