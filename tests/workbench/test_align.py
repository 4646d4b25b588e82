"""Forced alignment on frame probabilities whose truth is known frame by frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.workbench.ctc_fixtures import VOCAB, save_tiny_model, tiny_processor
from workbench.align import WILDCARD, align_lines, unaligned_speech, viterbi
from workbench.text import OrthographyProfile

FRAME_S = 0.02


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return tiny_processor(tmp_path_factory.mktemp("tok")).tokenizer


def log_probs(spans: list[tuple[int, str]], frames: int) -> np.ndarray:
    """Blank everywhere (p 0.9) but at ``(first frame, text)``: each letter (``|`` for a
    space) holds 3 frames at p 0.9."""
    probs = np.full((frames, len(VOCAB)), 0.1 / (len(VOCAB) - 1))
    probs[:, 0] = 0.9
    for first, text in spans:
        for k, char in enumerate(text.replace(" ", "|")):
            rows = slice(first + 3 * k, first + 3 * k + 3)
            probs[rows] = 0.1 / (len(VOCAB) - 1)
            probs[rows, VOCAB[char]] = 0.9
    return np.log(probs).astype(np.float32)


def test_viterbi_finds_each_letter_where_it_is_said():
    lp = log_probs([(40, "cab")], 100)
    spans, confidence = viterbi(lp, [VOCAB["c"], VOCAB["a"], VOCAB["b"]], blank=0)
    assert spans == [(40, 42), (43, 45), (46, 48)]
    assert confidence == pytest.approx(0.9, abs=1e-3)


def test_repeated_letters_need_a_blank_and_wildcards_match_any_letter():
    lp = log_probs([(10, "mo"), (20, "o"), (40, "t")], 60)  # "moo" with a blank inside
    spans, _ = viterbi(lp, [VOCAB["m"], VOCAB["o"], VOCAB["o"]], blank=0)
    assert spans == [(10, 12), (13, 15), (20, 22)]
    spans, confidence = viterbi(lp, [VOCAB["m"], WILDCARD, VOCAB["o"]], blank=0)
    assert spans[0][0] == 10 and spans[2] == (20, 22) and confidence > 0.85


def test_lines_are_timed_a_line_never_said_is_flagged_and_speech_without_a_line_found(
        tokenizer):
    profile = OrthographyProfile()
    said = [(25, "cat mad"), (100, "bad"), (200, "tom"), (300, "kid ma")]
    lp = log_probs(said, 420)
    lines = ["cat mad", "bonk", "bad", "kid ma"]  # "bonk" never said; "tom" has no line
    aligned = align_lines(lp, lines, tokenizer, profile, frame_s=FRAME_S)
    assert [a.flag for a in aligned] == ["", "not_in_audio", "", ""]
    first = aligned[0].segment
    assert (first.start, first.end) == pytest.approx((0.5, 0.92))  # 7 labels x 3 frames
    assert [(w.text, w.start, w.end) for w in first.words] == [
        ("cat", 0.5, 0.68), ("mad", 0.74, 0.92)]
    assert aligned[2].segment.start == pytest.approx(2.0)
    assert aligned[3].segment.start == pytest.approx(6.0)
    assert aligned[1].confidence < 0.7 < min(a.confidence for a in aligned if not a.flag)
    gaps = unaligned_speech(aligned, lp, 0, FRAME_S, min_s=0.1)
    assert gaps == [(4.0, 4.18)]  # "tom", said but in no line


def test_letters_the_model_cannot_write_do_not_crash(tokenizer):
    lp = log_probs([(10, "cat")], 60)
    [line] = align_lines(lp, ["cÿt"], tokenizer, OrthographyProfile(), frame_s=FRAME_S)
    assert line.flag == "" and line.segment.start == pytest.approx(0.2)


def test_align_cli_writes_the_output_and_reports_flagged_lines(tmp_path, capsys):
    import json

    import soundfile as sf

    from tests.workbench.ctc_fixtures import noise
    from workbench.cli import main

    model = save_tiny_model(tmp_path / "run-2" / "model")
    audio = tmp_path / "talk.wav"
    sf.write(audio, noise(12.0, seed=5), 16_000)
    transcript = tmp_path / "talk.txt"
    transcript.write_text("cat mad\n\nbad tom\n", encoding="utf-8")
    code = main(["align", str(audio), str(transcript), "--model", str(model), "--output",
                 "json", "--json", "-q"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["lines"] == 2 and out["output"].endswith("talk.json")
    written = json.loads((tmp_path / "talk.json").read_text(encoding="utf-8"))
    assert written["model"] == "run-2" and written["notes"] == out["notes"]
    # A random model hears none of it: every line is flagged, by its line in the file.
    assert [f["line"] for f in out["flagged"]] == [1, 3] and out["aligned"] == 0
    assert main(["align", str(audio), str(transcript), "--model", str(model), "--output",
                 "json", "-q"]) == 2
    assert "exists" in capsys.readouterr().err
    # As training clips: the flagged lines only when asked, marked.
    assert main(["align", str(audio), str(transcript), "--model", str(model), "--output",
                 "audiofolder", "--keep-flagged", "-q"]) == 0
    table = (tmp_path / "talk_clips" / "metadata.csv").read_text(encoding="utf-8")
    assert table.count("not_in_audio") == 2 and "bad tom" in table
    assert "left out (--keep-flagged" not in capsys.readouterr().out


EAF_UNTIMED = """<?xml version="1.0" encoding="UTF-8"?>
<ANNOTATION_DOCUMENT AUTHOR="" DATE="2024-01-01T00:00:00Z" FORMAT="3.0" VERSION="3.0">
 <HEADER MEDIA_FILE="" TIME_UNITS="milliseconds"/>
 <TIME_ORDER><TIME_SLOT TIME_SLOT_ID="ts1"/><TIME_SLOT TIME_SLOT_ID="ts2"/>
  <TIME_SLOT TIME_SLOT_ID="ts3"/><TIME_SLOT TIME_SLOT_ID="ts4"/>
  <TIME_SLOT TIME_SLOT_ID="ts5" TIME_VALUE="0"/><TIME_SLOT TIME_SLOT_ID="ts6" TIME_VALUE="9000"/>
 </TIME_ORDER>
 <TIER LINGUISTIC_TYPE_REF="ut" TIER_ID="story">
  <ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a1" TIME_SLOT_REF1="ts1" TIME_SLOT_REF2="ts2">
   <ANNOTATION_VALUE>cat mad</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION>
  <ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a2" TIME_SLOT_REF1="ts2" TIME_SLOT_REF2="ts3">
   <ANNOTATION_VALUE>bonk</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION>
  <ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a3" TIME_SLOT_REF1="ts3" TIME_SLOT_REF2="ts4">
   <ANNOTATION_VALUE>bad</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION>
 </TIER>
 <TIER LINGUISTIC_TYPE_REF="ut" TIER_ID="{second}">
  <ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a4" TIME_SLOT_REF1="ts5" TIME_SLOT_REF2="ts6">
   <ANNOTATION_VALUE>{note}</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION>
 </TIER>
 <LINGUISTIC_TYPE LINGUISTIC_TYPE_ID="ut" TIME_ALIGNABLE="true"/>
</ANNOTATION_DOCUMENT>
"""


def test_an_elan_tier_with_text_and_no_times_is_a_transcript(tmp_path):
    from workbench.align import read_transcript
    from workbench.errors import WorkbenchError

    eaf = tmp_path / "story.eaf"
    eaf.write_text(EAF_UNTIMED.format(second="notes", note=""), encoding="utf-8")
    lines = read_transcript(eaf)  # the only tier with text
    assert [(line.where, line.text) for line in lines] == [
        ("story.eaf: tier 'story', annotation a1", "cat mad"),
        ("story.eaf: tier 'story', annotation a2", "bonk"),
        ("story.eaf: tier 'story', annotation a3", "bad")]
    eaf.write_text(EAF_UNTIMED.format(second="notes", note="recorded in 1994"),
                   encoding="utf-8")
    with pytest.raises(WorkbenchError, match="--tier NAME: 'story', 'notes'"):
        read_transcript(eaf)
    assert [line.text for line in read_transcript(eaf, "story")][0] == "cat mad"
    with pytest.raises(WorkbenchError, match="no tier 'stroy'"):
        read_transcript(eaf, "stroy")
    text = tmp_path / "story.txt"
    text.write_text("cat mad\n\nbad\n", encoding="utf-8")
    assert [line.where for line in read_transcript(text)] == ["story.txt:1", "story.txt:3"]
    with pytest.raises(WorkbenchError, match="Drop --tier"):
        read_transcript(text, "story")


def test_elan_lines_aligned_into_training_clips(tmp_path, tokenizer, monkeypatch):
    """An ELAN tier aligned (frame probabilities known), then cut into an audiofolder: the
    line never said is named by its annotation and left out of the clips."""
    import csv
    from types import SimpleNamespace

    import soundfile as sf

    from workbench import align
    from workbench.audiofolder import write_audiofolder

    eaf = tmp_path / "story.eaf"
    eaf.write_text(EAF_UNTIMED.format(second="notes", note=""), encoding="utf-8")
    audio = tmp_path / "story.wav"
    sf.write(audio, np.zeros(16_000 * 9, np.float32), 16_000)
    lp = log_probs([(25, "cat mad"), (200, "bad")], 450)
    monkeypatch.setattr(align, "recording_log_probs", lambda recognizer, path: (lp, 9.0))
    recognizer = SimpleNamespace(tokenizer=tokenizer, hop=320)
    timed, aligned = align.align_file(recognizer, audio, align.read_transcript(eaf),
                                      OrthographyProfile())
    assert [a.flag for a in aligned] == ["", "not_in_audio", ""]
    assert timed.notes[0].startswith("story.eaf: tier 'story', annotation a2: not found")
    assert [(s.text, s.start) for s in timed.segments] == [("cat mad", 0.5), ("bad", 4.0)]
    flagged = [(a.guess, a.flag) for a in aligned if a.flag]
    folder = write_audiofolder(timed, tmp_path / "out", flagged=flagged)
    with open(folder / "metadata.csv", encoding="utf-8", newline="") as handle:
        assert [r["transcription"] for r in csv.DictReader(handle)] == ["cat mad", "bad"]


def test_align_from_an_elan_file_adds_the_tiers_to_a_copy_of_it(tmp_path, capsys):
    """No --output: the aligned lines go into a copy of the user's ELAN file (the tier it
    read stays as it was; the file itself is never written)."""
    import json

    import soundfile as sf

    from data_recipes.elan import parse_eaf
    from tests.workbench.ctc_fixtures import noise
    from workbench.cli import main

    model = save_tiny_model(tmp_path / "run-3" / "model")
    audio = tmp_path / "story.wav"
    sf.write(audio, noise(9.0, seed=6), 16_000)
    eaf = tmp_path / "story.eaf"
    eaf.write_text(EAF_UNTIMED.format(second="notes", note="recorded in 1994"),
                   encoding="utf-8")
    before = eaf.read_bytes()
    code = main(["align", str(audio), str(eaf), "--tier", "story", "--model", str(model),
                 "--min-confidence", "0", "--json", "-q"])  # a random model: keep every line
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["output"] == str(tmp_path / "story.run-3.eaf")
    assert eaf.read_bytes() == before
    doc = parse_eaf(Path(out["output"]))
    assert [t.name for t in doc.tiers] == ["story", "notes", "run-3", "run-3-words"]
    assert [a.value for a in doc.tier("run-3").annotations] == ["cat mad", "bonk", "bad"]
    assert main(["align", str(audio), str(eaf), "--tier", "story", "--model", str(model),
                 "--output", "srt", "--into", str(eaf), "-q"]) == 2
    assert "drop --output" in capsys.readouterr().err
