"""Forced alignment on frame probabilities whose truth is known frame by frame."""

from __future__ import annotations

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
