"""WER/CER scoring, run evaluation on a tiny workspace, and the `evaluate` metric scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import unicodedata
from dataclasses import replace

import numpy as np
import pytest

from tests.workbench.ctc_fixtures import noise, save_tiny_model
from workbench.audio import signal_stats, write_clip
from workbench.errors import WorkbenchError
from workbench.evaluate import (
    CER_UNIT,
    GER_UNIT,
    METRICS_DIR,
    EvalReport,
    error_rates,
    evaluate_run,
    format_report,
    load_metric,
    per_utterance,
    read_report,
    resolve_run,
)
from workbench.manifest import Utterance, write_manifest
from workbench.text import normalize
from workbench.workspace import Workspace

# ---------------------------------------------------------------------------------------------
# Scoring


def test_one_substitution_in_three_words():
    rates = error_rates(["a b c"], ["a x c"])
    assert rates["wer"] == pytest.approx(1 / 3)
    assert rates["words"] == {"reference": 3, "hits": 2, "substitutions": 1, "deletions": 0,
                              "insertions": 0, "errors": 1}
    assert rates["cer"] == pytest.approx(1 / 5)  # "a b c" has five characters with spaces


def test_counts_deletions_and_insertions_over_the_corpus():
    rates = error_rates(["the cat sat", "on the mat"], ["the sat", "on the big mat"])
    words = rates["words"]
    assert (words["deletions"], words["insertions"], words["reference"]) == (1, 1, 6)
    assert rates["wer"] == pytest.approx(2 / 6)
    assert error_rates(["abc"], ["abd"])["cer"] == pytest.approx(1 / 3)


def test_whitespace_runs_do_not_count():
    assert error_rates(["  a  b "], ["a b"])["wer"] == 0.0
    assert error_rates(["a  b"], [" a b"])["cer"] == 0.0


def test_empty_references_are_counted_and_their_words_inserted():
    rates = error_rates(["a b", "", "   "], ["a b", "x y", ""])
    assert rates["empty_references"] == 2
    assert rates["words"]["insertions"] == 2
    assert rates["wer"] == pytest.approx(2 / 2)
    assert rates["characters"]["insertions"] == 3  # "x y"
    with pytest.raises(WorkbenchError, match="references are empty"):
        error_rates(["", " "], ["a", ""])


def test_mismatched_lengths_are_refused():
    with pytest.raises(WorkbenchError, match="pair up"):
        error_rates(["a"], ["a", "b"])
    with pytest.raises(WorkbenchError, match="one of each"):
        per_utterance(["a"], ["a"], ids=["u1", "u2"])


def test_per_utterance_worst_first_keeps_input_order():
    refs = ["a b c d", "a b", "hello", ""]
    hyps = ["a b c d", "a x", "", "oops"]
    scores = per_utterance(refs, hyps, ids=["u0", "u1", "u2", "u3"], audio=["0", "1", "2", "3"])
    # u3 and u2 both have WER 1; u3's CER (4 inserted characters / 1) breaks the tie
    assert [s.id for s in scores] == ["u3", "u2", "u1", "u0"]
    assert [s.index for s in scores] == [3, 2, 1, 0]
    by_id = {s.id: s for s in scores}
    assert by_id["u1"].wer == pytest.approx(0.5) and by_id["u1"].words.substitutions == 1
    assert by_id["u1"].chars.errors == 1 and by_id["u1"].cer == pytest.approx(1 / 3)
    assert by_id["u2"].words.deletions == 1 and by_id["u2"].chars.errors == 5
    assert by_id["u3"].words.insertions == 1 and by_id["u3"].wer == 1.0
    assert by_id["u3"].cer == 4.0
    assert by_id["u0"].wer == 0.0
    record = by_id["u1"].to_dict()
    assert record["substitutions"] == 1 and record["char_errors"] == 1 and record["audio"] == "1"


def test_corpus_rates_are_the_sum_of_utterance_counts():
    refs = ["one two three", "four five", "six"]
    hyps = ["one too three four", "five", "sicks"]
    rates = error_rates(refs, hyps)
    scores = per_utterance(refs, hyps)
    assert rates["words"]["errors"] == sum(s.words.errors for s in scores)
    assert rates["characters"]["errors"] == sum(s.chars.errors for s in scores)
    assert rates["graphemes"]["errors"] == sum(s.graphemes.errors for s in scores)


# ---------------------------------------------------------------------------------------------
# Every writing system: NFC code points, grapheme clusters, scripts without spaces


@pytest.mark.parametrize(("reference", "hypothesis", "cer", "ger"), [
    ("क्षि", "क्ष", (1, 4), (1, 1)),              # Hindi: only the vowel sign ि lost
    ("தமிழ்", "தமிழ", (1, 5), (1, 3)),            # Tamil: the virama (pulli) lost
    ("മലയാളം", "മലയളം", (1, 6), (1, 4)),          # Malayalam: the vowel sign ാ lost
    ("ไม่", "ไม", (1, 3), (1, 2)),                 # Thai: the tone mark lost
    ("ọ̀rọ̀", "ọrọ", (2, 5), (2, 3)),                # Yoruba: both low tones lost
    ("tiếng việt", "tiêng việt", (1, 10), (1, 10)),  # Vietnamese: a tone; NFC ế is 1 code point
    ("我爱北京", "我爱背景", (2, 4), (2, 4)),
    ("a b c", "a x c", (1, 5), (1, 5)),
])
def test_cer_counts_nfc_code_points_and_ger_grapheme_clusters(reference, hypothesis, cer, ger):
    rates = error_rates([reference], [hypothesis])
    chars, clusters = rates["characters"], rates["graphemes"]
    assert (chars["errors"], chars["reference"]) == cer
    assert (clusters["errors"], clusters["reference"]) == ger
    assert rates["cer"] == pytest.approx(cer[0] / cer[1])
    assert rates["ger"] == pytest.approx(ger[0] / ger[1])
    [score] = per_utterance([reference], [hypothesis])
    assert (score.cer, score.ger) == (rates["cer"], rates["ger"])
    record = score.to_dict()
    assert (record["ger"], record["reference_graphemes"], record["grapheme_errors"]) == (
        rates["ger"], ger[1], ger[0])
    assert (rates["cer_unit"], rates["ger_unit"]) == (CER_UNIT, GER_UNIT)
    assert "NFC" in CER_UNIT and "grapheme clusters" in GER_UNIT


def test_nfd_text_scores_as_its_nfc_form():
    nfd = unicodedata.normalize("NFD", "tiếng việt ọ̀rọ̀")
    assert len(nfd) > len("tiếng việt ọ̀rọ̀")
    rates = error_rates([nfd], ["tiếng việt ọ̀rọ̀"])
    assert (rates["wer"], rates["cer"], rates["ger"]) == (0.0, 0.0, 0.0)
    assert rates["characters"]["reference"] == 16  # ọ̀ stays two code points in NFC
    one_tone = error_rates([nfd], ["tiêng việt ọ̀rọ̀"])
    assert one_tone["characters"]["errors"] == one_tone["graphemes"]["errors"] == 1
    [score] = per_utterance([nfd], ["tiếng việt ọ̀rọ̀"])
    assert score.reference == unicodedata.normalize("NFC", nfd)


def test_empty_references_insert_their_hypothesis_clusters():
    rates = error_rates(["", "a b"], ["क्षि", "a b"])
    assert rates["characters"]["insertions"] == 4
    assert rates["graphemes"]["insertions"] == 1
    assert rates["ger"] == pytest.approx(1 / 3)  # "a b" is three clusters


@pytest.mark.parametrize(("references", "script"), [
    (["ภาษาไทย", "ไม่มี"], "Thai"),
    (["我爱北京", "天安门"], "Chinese"),
    (["日本語のテキスト"], "Japanese"),
])
def test_wer_is_not_meaningful_for_scripts_without_spaces(references, script):
    rates = error_rates(references, references)
    assert rates["wer_meaningful"] is False and rates["unspaced_script"] == script
    assert rates["wer_note"].startswith(f"{script} is written without spaces between words")


@pytest.mark.parametrize("references", [
    ["नमस्ते दुनिया"], ["ሰላም ዓለም"], ["kia ora"], ["tiếng việt"], ["ọ̀rọ̀ mi"]])
def test_wer_is_meaningful_for_scripts_with_spaces(references):
    rates = error_rates(references, references)
    assert rates["wer_meaningful"] is True
    assert (rates["wer_note"], rates["unspaced_script"]) == ("", None)


def test_thai_utterances_are_ranked_by_cer():
    refs = ["ภาษาไทยง่าย", "ไม่"]
    hyps = ["ภาษาไทยงาย", "มี"]  # the first loses one mark of 11; the second is all wrong
    assert [s.index for s in per_utterance(refs, hyps)] == [1, 0]
    latin = per_utterance(["one two three", "four"], ["one two tree", "four"])
    assert [s.index for s in latin] == [0, 1]


def report_of(references: list[str], hypotheses: list[str]) -> EvalReport:
    """An evaluation report of given texts (no model)."""
    ids = [f"u{i}" for i in range(len(references))]
    return EvalReport(run="r1", run_dir="runs/r1", split="test",
                      rates=error_rates(references, hypotheses),
                      utterances=per_utterance(references, hypotheses, ids=ids),
                      audio_seconds=12.0)


def test_report_says_what_each_rate_counts():
    latin = report_of(["a b c"], ["a x c"]).to_dict()
    assert list(latin)[5:8] == ["wer", "cer", "ger"]
    assert latin["ger"] == pytest.approx(1 / 5)
    assert (latin["cer_unit"], latin["ger_unit"]) == (CER_UNIT, GER_UNIT)
    assert latin["wer_meaningful"] is True and latin["wer_note"] == ""
    cer, ger, wer = latin["notes"]
    assert "code points of NFC text" in cer and "grapheme clusters" in ger
    assert wer == "WER: word edits / reference words, words split at spaces."

    thai = report_of(["ภาษาไทย"], ["ภาษาไท"]).to_dict()
    assert list(thai)[5:8] == ["cer", "ger", "wer"]  # CER leads
    assert thai["wer_meaningful"] is False and "Thai is written without spaces" in thai[
        "wer_note"]
    assert "Not meaningful here: Thai" in thai["notes"][2]


def test_format_report_leads_with_cer_and_ger_for_thai():
    lines = format_report(report_of(["ภาษาไทย", "ไม่"], ["ภาษาไท", "ไม"])).splitlines()
    assert lines[1] == "  CER  20.00 %  (S 0, D 2, I 0 in 10 reference characters, NFC code points)"
    assert lines[2].startswith("  GER  22.22 %")  # 2 edits of 7 + 2 grapheme clusters
    assert "S 1, D 1, I 0 in 9 reference grapheme clusters" in lines[2]
    assert lines[3].startswith("  WER 100.00 %")
    assert lines[4] == ("    WER not meaningful: Thai is written without spaces between words, "
                        "so a 'word' split at spaces is a phrase or a whole sentence: read the "
                        "CER and the GER.")
    assert lines[6].endswith("u1  CER 33.3 %  GER 50.0 %  (characters: S 0, D 1, I 0)  "
                             "WER 100.0 % (not meaningful)")


def test_format_report_leads_with_wer_for_scripts_with_spaces():
    lines = format_report(report_of(["क्षि नमस्ते"], ["क्ष नमस्ते"])).splitlines()
    assert [line.split()[0] for line in lines[1:4]] == ["WER", "CER", "GER"]
    assert "not meaningful" not in "\n".join(lines)
    # क्षि नमस्ते: 11 code points; 5 clusters (क्षि, space, न, म, स्ते)
    assert "WER 50.0 %  CER 9.1 %  GER 20.0 %  (S 1, D 0, I 0)" in lines[5]


# ---------------------------------------------------------------------------------------------
# evaluate metric scripts


def test_unknown_metric_name():
    with pytest.raises(WorkbenchError, match="wer, cer, ger"):
        load_metric("bleu")


def test_metric_scripts_load_offline_and_agree(tmp_path):
    """evaluate.load on the shipped scripts, with the Hub switched off and an empty cache."""
    script = textwrap.dedent(
        """
        import json
        from workbench.evaluate import error_rates, load_metric
        refs = ["a b c", "the cat sat", "", "hello", "क्षि"]
        hyps = ["a x c", "the sat", "q", "helo", "क्ष"]
        rates = error_rates(refs, hyps)
        wer = load_metric("wer").compute(predictions=hyps, references=refs)
        cer = load_metric("cer").compute(predictions=hyps, references=refs)
        ger = load_metric("ger").compute(predictions=hyps, references=refs)
        print(json.dumps([wer, rates["wer"], cer, rates["cer"], ger, rates["ger"]]))
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=300, check=True)
    wer, expected_wer, cer, expected_cer, ger, expected_ger = json.loads(
        out.stdout.strip().splitlines()[-1])
    assert wer == pytest.approx(expected_wer) and cer == pytest.approx(expected_cer)
    assert ger == pytest.approx(expected_ger) and ger != pytest.approx(cer)
    assert all((METRICS_DIR / f"{name}.py").is_file() for name in ("wer", "cer", "ger"))


# ---------------------------------------------------------------------------------------------
# evaluate_run


def make_workspace(root) -> Workspace:
    """A workspace with a finished run, an unfinished newer run, and test/dev manifests."""
    ws = Workspace.at(root)
    save_tiny_model(ws.runs_dir / "20240101-090000" / "model")
    (ws.runs_dir / "20240101-090000" / "config.yaml").write_text("model: tiny\n")
    (ws.runs_dir / "20240102-090000").mkdir()  # still training: no model/ yet
    (ws.runs_dir / "20240102-090000" / "config.yaml").write_text("model: tiny\n")
    ws.profile_path.write_text("lowercase: true\n", encoding="utf-8")
    texts = ["Bonne Nuit!", "  a cat,  a MAT ", "Tout un Monde.", "ok"]
    test = []
    for i, text in enumerate(texts):
        audio = f"audio/test_{i}.wav"
        samples = noise(0.8 + 0.4 * i, seed=i)
        write_clip(ws.root / audio, samples)
        test.append(Utterance(id=f"t{i}", audio=audio, text=text, duration=0.8 + 0.4 * i,
                              split="test", **signal_stats(samples)))
    write_manifest(ws.manifest_path("test"), test)
    samples = noise(1.0, seed=10)
    write_clip(ws.root / "audio/dev_0.wav", samples)
    dev = [Utterance(id="d0", audio="audio/dev_0.wav", text="Dime", duration=1.0, split="dev",
                     **signal_stats(samples))]
    write_manifest(ws.manifest_path("train"), [replace(dev[0], id="tr0", split="train")])
    write_manifest(ws.manifest_path("dev"), dev)
    return ws


@pytest.fixture
def workspace(tmp_path):
    return make_workspace(tmp_path / "ws")


def test_evaluate_run_writes_report_per_split(workspace):
    ws = workspace
    report = evaluate_run(ws, progress=False)
    run_dir = ws.runs_dir / "20240101-090000"
    assert report.run == "20240101-090000" and report.split == "test"
    assert len(report.utterances) == 4 and not report.skipped
    references = {u.id: u.reference for u in report.utterances}
    assert references["t0"] == "bonne nuit" == normalize("Bonne Nuit!")
    assert references["t1"] == "a cat a mat"
    assert sorted(u.index for u in report.utterances) == [0, 1, 2, 3]
    assert report.wer == report.rates["wer"] > 0  # a random model gets things wrong

    stored = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    entries = stored["splits"]["test"]["utterances"]
    assert [e["id"] for e in entries] == [u.id for u in report.utterances]
    assert {"reference", "hypothesis", "wer", "cer", "ger", "substitutions", "deletions",
            "insertions", "char_errors", "reference_graphemes", "grapheme_errors", "index",
            "audio"} <= set(entries[0])
    test = stored["splits"]["test"]
    assert test["ger"] == report.rates["ger"] == report.ger  # Latin text: GER = CER
    assert test["ger"] == pytest.approx(test["cer"])
    assert (test["cer_unit"], test["wer_meaningful"]) == (CER_UNIT, True)

    evaluate_run(ws, "20240101-090000", split="dev", progress=False)
    assert set(read_report(run_dir)) == {"test", "dev"}


def test_evaluate_run_excludes_and_skips_with_reasons(workspace):
    ws = workspace
    (ws.root / "audio/test_1.wav").unlink()
    report = evaluate_run(ws, exclude_ids={"t3"}, progress=False)
    assert report.left_out == [{"id": "t3", "reason": "left out on request"}]
    assert [s["id"] for s in report.skipped] == ["t1"]
    assert "test_1.wav" in report.skipped[0]["reason"]
    assert sorted(u.id for u in report.utterances) == ["t0", "t2"]
    assert {u.id: u.index for u in report.utterances} == {"t0": 0, "t2": 2}
    text = format_report(report)
    assert "skipped" in text and "REF: bonne nuit" in text
    assert "t3: left out on request" in text


def test_what_the_audit_set_aside_is_not_scored_but_listed_with_its_reason(workspace):
    ws = workspace
    write_clip(ws.root / "audio/test_2.wav", np.zeros(int(1.6 * 16_000), dtype=np.float32))
    utterances = ws.read_split("test")
    write_manifest(ws.manifest_path("test"), [replace(u, rms_db=-120.0, peak=0.0)
                                              if u.id == "t2" else u for u in utterances])
    report = evaluate_run(ws, progress=False)
    [left_out] = report.left_out
    assert left_out["id"] == "t2" and "silent" in left_out["reason"]
    assert report.scored_set == "audited"
    assert sorted(u.id for u in report.utterances) == ["t0", "t1", "t3"]
    assert report.rates["utterances"] == 3
    assert "t2: silent" in format_report(report)

    everything = evaluate_run(ws, include_excluded=True, progress=False)
    assert everything.left_out == [] and everything.scored_set == "all"
    assert sorted(u.id for u in everything.utterances) == ["t0", "t1", "t2", "t3"]
    stored = read_report(ws.runs_dir / "20240101-090000")["test"]
    assert stored["scored_set"] == "all" and len(stored["utterances"]) == 4


def test_training_and_evaluate_score_with_the_same_function(workspace):
    """Dev scoring in training is transcribe_and_score on scoring_set, as evaluate does."""
    from workbench.evaluate import scoring_set, transcribe_and_score
    from workbench.text import load_profile
    from workbench.transcribe import load_recognizer

    ws = workspace
    chosen = scoring_set(ws, "test")
    profile = load_profile(ws.profile_path)
    scored = transcribe_and_score(load_recognizer(ws.runs_dir / "20240101-090000"), ws,
                                  chosen.utterances,
                                  [normalize(u.text, profile) for u in chosen.utterances],
                                  progress=False)
    report = evaluate_run(ws, progress=False)
    assert scored.rates == report.rates
    assert [u.hypothesis for u in scored.utterances] == [
        u.hypothesis for u in report.utterances]


def test_format_report_lists_the_worst_utterances(workspace):
    report = evaluate_run(workspace, progress=False)
    text = format_report(report, top=2)
    assert text.count("REF:") == 2 and text.count("HYP:") == 2
    assert f"{100 * report.wer:.2f} %" in text


def test_run_selection_errors(tmp_path):
    ws = Workspace.at(tmp_path / "empty")
    with pytest.raises(WorkbenchError, match="has no training runs yet. Train one with "
                                             "`workbench train -w"):
        evaluate_run(ws, progress=False)
    (ws.runs_dir / "20240101-000000").mkdir(parents=True)
    (ws.runs_dir / "20240101-000000" / "config.yaml").write_text("model: tiny\n")
    with pytest.raises(WorkbenchError, match="has none: it is still before its first dev"):
        resolve_run(ws)
    with pytest.raises(WorkbenchError, match="no run 'nope'"):
        resolve_run(ws, "nope")


def test_the_latest_run_with_a_model_is_evaluated(workspace):
    report = evaluate_run(workspace, progress=False)
    assert report.run == "20240101-090000"  # the newer run has no model yet
    with pytest.raises(WorkbenchError, match="20240102-090000 has no model yet"):
        evaluate_run(workspace, "20240102-090000", progress=False)


def test_empty_split_is_reported(workspace):
    write_manifest(workspace.manifest_path("test"), [])
    with pytest.raises(WorkbenchError, match="test split is empty"):
        evaluate_run(workspace, split="test", progress=False)
    with pytest.raises(WorkbenchError, match="set aside .* nothing is left to score"):
        evaluate_run(workspace, split="dev", exclude_ids={"d0"}, progress=False)
