"""The page's step functions (ui/steps) as plain functions: workspace in, tables and text out.

Every figure the page shows is checked against its source: the manifests, audit.json, the
vocabulary, the run's stored report, or the library's own transcription.
"""

import csv
import json
import zipfile
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from tests.ui.conftest import RUN
from ui.messages import badge
from ui.steps import (
    alphabet,
    check,
    data,
    evaluate,
    export,
    language_model,
    overview,
    try_it,
    utterances,
)
from ui.steps.alphabet import ProfileForm
from ui.steps.reasons import reason_for
from workbench.audio import SAMPLE_RATE, load_audio
from workbench.audit import EXCLUDED
from workbench.errors import WorkbenchError
from workbench.manifest import write_manifest
from workbench.run import find_run
from workbench.text import OrthographyProfile, load_profile

DONE, TODO = badge("done"), badge("to do")  # the overview's status words

# --------------------------------------------------------------------------- overview, data


def test_overview_says_what_to_do_next(ws, tmp_path):
    from workbench.workspace import Workspace

    empty = Workspace.at(tmp_path / "empty")
    empty.root.mkdir()
    assert "**Next:** Data" in overview.overview_markdown(empty)
    minutes = sum(u.duration for us in ws.read_all().values() for u in us) / 60
    text = overview.overview_markdown(ws)
    assert f"{DONE} 1. Data: 24 utterances, {minutes:.1f} min" in text
    assert f"{TODO} 2. Check: run the check" in text and "**Next:** Check" in text


def test_overview_counts_finished_and_evaluated_runs(ws_with_run):
    text = overview.overview_markdown(ws_with_run)
    assert f"{DONE} 4. Train: 1 finished run(s)" in text
    assert (f"{badge('optional')} 5. Language model: build one from the community's text"
            in text)
    assert f"{TODO} 6. Evaluate: score a run on the test split" in text
    assert "**Next:** Check" in text  # the optional step is never what comes next
    evaluate.evaluate(ws_with_run, RUN, "test")
    assert f"{DONE} 6. Evaluate: 1 run(s) evaluated" in overview.overview_markdown(ws_with_run)


def test_data_summary_counts_the_splits(ws):
    text, splits, issues = data.data_summary(ws)
    manifests = ws.read_all()
    assert text.startswith("**24 utterances**")
    assert list(splits["split"]) == list(manifests)
    for row in splits.to_dict("records"):
        utts = manifests[row["split"]]
        assert row["utterances"] == len(utts)
        assert row["minutes"] == round(sum(u.duration for u in utts) / 60, 2)
        assert row["speakers"] == len({u.speaker for u in utts if u.speaker})
    report = json.loads(ws.import_report_path.read_text(encoding="utf-8"))
    assert len(issues) == len(report["issues"])
    assert list(issues.columns) == ["file", "reason", "what to do", "details", "check"]


def test_import_issues_name_the_uploaded_file_and_a_plain_reason(ws):
    upload = ws.root / "uploads" / "20240101-000000"
    report = {"issues": [
        {"item": f"{upload}/metadata.csv:4", "check": "row_without_audio",
         "detail": f"audio file {upload}/clips/missing.wav not found; check the path"},
        {"item": f"{ws.root}/sources/20240101-000000-corpus/ñawi/rimay.wav",
         "check": "unreadable_audio", "detail": "/tmp/gradio/abc/rimay.wav: not audio"},
        {"item": "x.eaf", "check": "tier_not_found",
         "detail": "x.eaf: no tier with tier 'words'. Its tiers:\n  - ref (A)\n  - tx (B)"}]}
    issues = data.issues_frame(report["issues"], ws.root)
    assert list(issues["file"]) == ["metadata.csv:4", "ñawi/rimay.wav", "x.eaf"]
    assert issues["reason"][0] == reason_for("row_without_audio").reason
    assert issues["what to do"][1] == reason_for("unreadable_audio").todo
    assert issues["details"][0] == "audio file clips/missing.wav not found; check the path"
    assert issues["details"][1] == "rimay.wav: not audio"
    assert issues["details"][2] == "x.eaf: no tier with tier 'words'. Its tiers: ref (A); tx (B)"
    assert list(issues["check"]) == [i["check"] for i in report["issues"]]
    assert str(ws.root) not in issues.to_string() and "/tmp" not in issues.to_string()


def test_import_warnings_use_the_pages_words():
    warning = ("Speakers are not known ... a table's speaker column (--speaker-column); for "
               "TextGrid files --speaker or --speaker-from-tier")
    text = data.import_summary_markdown({"splits": {"train": {"utterances": 3}},
                                         "utterances": 3, "seconds": 6.0, "speakers": 0,
                                         "issues": [], "warnings": [warning]})
    assert "the 'Speaker column' import option" in text
    assert ("'Speaker of every segment' import option or 'Use the tier name as the speaker'"
            in text)
    assert "--" not in text


def test_empty_workspace_states_have_real_headers(tmp_path):
    from workbench.workspace import Workspace

    empty = Workspace.at(tmp_path / "empty")
    empty.root.mkdir()
    text, splits, issues = data.data_summary(empty)
    assert text.startswith("Nothing imported yet")
    assert list(splits.columns) == ["split", "utterances", "minutes", "speakers"]
    assert list(issues.columns) == data.ISSUE_COLUMNS and issues.empty
    assert check.saved_check(empty) is None
    view = check.empty_view("Import data first (step 1).")
    assert list(view.set_aside.columns) == check.SET_ASIDE_COLUMNS
    assert list(view.findings.columns) == check.FINDING_COLUMNS
    assert list(view.splits.columns) == check.SPLIT_COLUMNS
    assert alphabet.saved_alphabet(empty) is None
    assert list(alphabet.empty_view("").counts.columns) == alphabet.COUNT_COLUMNS
    assert list(evaluate.empty_table().columns) == evaluate.EVAL_COLUMNS


# --------------------------------------------------------------------------- check


def test_check_gives_tables_and_plot_data(ws):
    view = check.run_check(ws, 20.0)
    audit = json.loads(ws.audit_path.read_text(encoding="utf-8"))
    total = audit["total"]
    assert view.summary.startswith(f"**{total['kept']} of 24 utterances kept**")
    assert f"{len(audit['excluded_ids'])} set aside from training" in view.summary
    rows = {r["split"]: r for r in view.splits.to_dict("records")}
    for split, stats in [*audit["splits"].items(), ("total", total)]:
        assert (rows[split]["utterances"], rows[split]["kept"], rows[split]["set aside"]) == (
            stats["utterances"], stats["kept"], stats["excluded"])
    kept_bars = view.histogram[view.histogram["status"] == "kept"]["utterances"].sum()
    assert kept_bars == total["kept"] and view.histogram["utterances"].sum() == 24
    assert view.speakers["minutes"].sum() == pytest.approx(total["kept_seconds"] / 60, abs=0.01)
    assert list(view.set_aside["utterance or file"]) == [i["id"] for i in audit["issues"]]
    saved = check.saved_check(ws)
    assert saved is not None and saved.summary == view.summary


def test_a_strict_limit_sets_clips_aside_with_their_reason(ws):
    view = check.run_check(ws, 1.0)
    longer = {u.id for us in ws.read_all().values() for u in us if u.duration > 1.0}
    too_long = view.set_aside[view.set_aside["check"] == "too_long"]
    assert set(too_long["utterance or file"]) == longer and longer
    assert (too_long["reason"] == reason_for("too_long").reason).all()
    assert (too_long["what to do"] == reason_for("too_long").todo).all()
    assert too_long["details"].str.startswith(f"{EXCLUDED}: ").all()
    assert f"{reason_for('too_long').short} ({len(longer)})" in view.summary
    assert "too_long" not in view.summary
    table = utterances.utterance_table(ws)
    assert set(table[table["status"] == "set aside: too long"]["id"]) == longer


def test_check_names_import_items_and_findings_plainly(ws):
    check.run_check(ws, 20.0)
    report = json.loads(ws.audit_path.read_text(encoding="utf-8"))
    report["import_issues"] = [{"item": f"{ws.root}/uploads/20240101-000000/a.csv:3",
                                "check": "audio_not_uploaded", "action": "not imported",
                                "detail": "the audio 'x.wav' it names was not uploaded"}]
    report["findings"] = [{"check": "audio_leak", "subject": "0123abcd", "ids": ["u1", "u2"],
                           "detail": "The same audio is in train (u1) and in test (u2)"},
                          {"check": "little_training_audio", "subject": "", "ids": [],
                           "detail": "With 0.4 minutes of training audio ..."}]
    view = check.check_view(report, ws.root)
    row = view.set_aside.iloc[-1]
    assert (row["utterance or file"], row["split"]) == ("a.csv:3", check.NOT_IMPORTED)
    assert row["reason"] == reason_for("audio_not_uploaded").reason
    assert list(view.findings["about"]) == ["u1, u2", "the whole corpus"]
    assert list(view.findings["check"]) == ["audio_leak", "little_training_audio"]
    assert view.findings["what to do"][0] == reason_for("audio_leak").todo


def test_the_utterance_table_lists_the_manifests(ws):
    table = utterances.utterance_table(ws)
    expected = [(u.id, split, u.speaker, round(u.duration, 2), "kept", u.text)
                for split, us in ws.read_all().items() for u in us]
    assert [tuple(row) for row in table.itertuples(index=False)] == expected


def test_any_utterance_can_be_played_beside_its_transcript(ws):
    utt = ws.read_split("train")[0]
    (rate, samples), text = utterances.utterance_audio(ws, utt.id)
    assert rate == SAMPLE_RATE
    np.testing.assert_array_equal(samples, load_audio(ws.audio_path(utt)))
    assert f"**{utt.id}** (train" in text and text.endswith(f"> {utt.text}")
    with pytest.raises(WorkbenchError, match="no utterance"):
        utterances.utterance_audio(ws, "../../audio/x")


# --------------------------------------------------------------------------- alphabet


def test_the_form_round_trips_the_default_profile(ws):
    form = alphabet.profile_form(ws)
    assert alphabet.profile_from_form(form) == OrthographyProfile()


def test_form_values_become_a_valid_profile():
    form = ProfileForm(ignore=". , ;", mappings=(("’", "'"), ("", "")), graphemes="ch, ll ch'",
                       fold_apostrophes="", distinct_letters="ʻ")
    profile = alphabet.profile_from_form(form)
    assert profile.ignore == ".,;" and profile.mappings == {"’": "'"}
    assert profile.graphemes == ("ch", "ll", "ch'") and profile.fold_apostrophes is None
    with pytest.raises(WorkbenchError, match="nothing to map from"):
        alphabet.profile_from_form(replace(form, mappings=(("", "x"),)))
    with pytest.raises(WorkbenchError, match="grapheme"):
        alphabet.profile_from_form(replace(form, graphemes="c"))


def test_save_alphabet_builds_the_vocabulary_and_marks_unseen_labels(ws):
    test = ws.read_split("test")
    write_manifest(ws.manifest_path("test"), [replace(test[0], text=test[0].text + " ü"),
                                              *test[1:]])
    form = replace(alphabet.profile_form(ws), graphemes="ch")
    view = alphabet.save_alphabet(ws, form)
    assert load_profile(ws.profile_path).graphemes == ("ch",)
    vocab = json.loads(ws.vocab_path.read_text(encoding="utf-8"))
    assert "ch" in vocab and "ü" not in vocab
    assert view.summary.startswith(f"**{len(vocab)} labels**")
    assert set(view.unseen["label"]) == {"ü"}
    assert 'wb-unseen" title="not in train: becomes [UNK]"><b>ü</b>' in view.alphabet_html
    special = {"[PAD]", "[UNK]", "|"}
    assert set(view.counts["label"]) == set(vocab) - special
    first = ws.read_split("train")[0]
    assert view.preview.iloc[0]["id"] == first.id
    assert view.preview.iloc[0]["transcript"] == first.text
    assert alphabet.saved_alphabet(ws).summary == view.summary


def test_rare_labels_are_highlighted():
    html = alphabet.alphabet_html([{"token": "a", "count": 40}, {"token": "q", "count": 1}],
                                  {"q"}, {})
    assert 'wb-rare" title="rare in train"><b>q</b>' in html
    assert 'wb-ok" title="in train"><b>a</b>' in html


# --------------------------------------------------------------------------- evaluate


def test_differences_are_marked_and_escaped():
    assert evaluate.diff_html("a b c", "a b c") == "a b c"
    marked = evaluate.diff_html("allin p'unchaw <x>", "allin punchaw <x> kay")
    assert marked == ("allin <del>p&#x27;unchaw</del> <ins>punchaw</ins> &lt;x&gt; "
                      "<ins>kay</ins>")
    assert evaluate.diff_html("wasi", "wisi") == "<del>wasi</del> <ins>w<mark>i</mark>si</ins>"


def test_differences_mark_whole_grapheme_clusters():
    # a lost vowel sign or tone mark marks its letter with it, never a mark alone
    assert evaluate.diff_html("क्षि", "क्ष") == "<del>क्षि</del> <ins><mark>क्ष</mark></ins>"
    assert evaluate.diff_html("ọ̀rọ̀", "ọrọ̀") == "<del>ọ̀rọ̀</del> <ins><mark>ọ</mark>rọ̀</ins>"


def report_of(references: list[str], hypotheses: list[str]) -> dict:
    """A stored report (``EvalReport.to_dict()``) of given texts, without a model."""
    from workbench.evaluate import EvalReport, error_rates, per_utterance

    ids = [f"u{i}" for i in range(len(references))]
    return EvalReport(run=RUN, run_dir="runs", split="test",
                      rates=error_rates(references, hypotheses),
                      utterances=per_utterance(references, hypotheses, ids=ids),
                      audio_seconds=90.0).to_dict()


def test_thai_evaluation_leads_with_cer_and_ger():
    view = evaluate.eval_view(report_of(["ภาษาไทย", "ไม่"], ["ภาษาไท", "ไม"]))
    assert view.summary.startswith(
        f"**test split of run {RUN}: CER 20.0%, GER 22.2%** over 2 utterances (1.5 min of "
        "audio). _WER 100.0% is not meaningful: Thai is written without spaces between "
        "words, so a 'word' split at spaces is a phrase or a whole sentence: read the CER "
        "and the GER._")
    assert view.summary.index("CER") < view.summary.index("WER")
    assert list(view.table.columns) == evaluate.UNSPACED_COLUMNS
    assert view.table.to_dict("records")[0] | {"differences": ""} == {
        "id": "u1", "CER": 0.333, "GER": 0.5, "WER": 1.0, "reference": "ไม่",
        "hypothesis": "ไม", "differences": ""}


def test_evaluation_of_spaced_scripts_leads_with_wer_and_shows_ger():
    view = evaluate.eval_view(report_of(["क्षि नमस्ते"], ["क्ष नमस्ते"]))
    assert view.summary.startswith(
        f"**test split of run {RUN}: WER 50.0%, CER 9.1%, GER 20.0%** over 1 utterances")
    assert "not meaningful" not in view.summary
    assert list(view.table.columns) == evaluate.EVAL_COLUMNS
    assert list(view.table.iloc[0])[:4] == ["u0", 0.5, 0.091, 0.2]


def test_reports_made_before_the_ger_still_show():
    report = report_of(["ภาษาไทย", "ไม่"], ["ภาษาไท", "ไม"])
    for key in ("ger", "cer_unit", "ger_unit", "wer_meaningful", "wer_note", "notes"):
        del report[key]
    for key in ("ger", "graphemes", "wer_meaningful", "wer_note", "unspaced_script"):
        del report["rates"][key]
    for u in report["utterances"]:
        del u["ger"], u["reference_graphemes"], u["grapheme_errors"]
    view = evaluate.eval_view(report)
    assert view.summary.startswith(f"**test split of run {RUN}: CER 20.0%** over 2 utterances")
    assert "_WER 100.0% is not meaningful: Thai is written" in view.summary  # from the texts
    assert view.table["GER"].isna().all() and list(view.table["CER"]) == [0.333, 0.143]


def test_evaluate_shows_the_stored_report(ws_with_run):
    view = evaluate.evaluate(ws_with_run, RUN, "test")
    report = find_run(ws_with_run, RUN).read_reports()["test"]
    assert view.summary.startswith(
        f"**test split of run {RUN}: WER {report['wer']:.1%}, CER {report['cer']:.1%}, "
        f"GER {report['ger']:.1%}** over {report['rates']['utterances']} utterances")
    assert list(view.table.columns) == evaluate.EVAL_COLUMNS
    scored = report["utterances"]
    assert len(view.table) == len(scored) == report["rates"]["utterances"] > 0
    assert {u["id"] for u in scored} <= {u.id for u in ws_with_run.read_split("test")}
    for row, utt in zip(view.table.to_dict("records"), scored, strict=True):
        assert (row["id"], row["reference"], row["hypothesis"]) == (
            utt["id"], utt["reference"], utt["hypothesis"])
        assert (row["WER"], row["CER"], row["GER"]) == (
            round(utt["wer"], 3), round(utt["cer"], 3), round(utt["ger"], 3))
    assert list(view.table["WER"]) == sorted(view.table["WER"], reverse=True)
    saved = evaluate.saved_evaluation(ws_with_run, RUN, "test")
    assert saved is not None and saved.table.equals(view.table)
    assert evaluate.saved_evaluation(ws_with_run, RUN, "dev") is None
    with pytest.raises(WorkbenchError, match="Unknown split"):
        evaluate.evaluate(ws_with_run, RUN, "../test")
    with pytest.raises(WorkbenchError, match="no run"):
        evaluate.evaluate(ws_with_run, str(ws_with_run.runs_dir / RUN), "test")


def test_evaluate_says_what_the_check_set_aside(ws_with_run):
    test = ws_with_run.read_split("test")
    silent = test[0].id
    write_manifest(ws_with_run.manifest_path("test"),
                   [replace(u, rms_db=-120.0, peak=0.0) if u.id == silent else u for u in test])
    view = evaluate.evaluate(ws_with_run, RUN, "test")
    assert silent not in set(view.table["id"]) and len(view.table) == len(test) - 1
    assert "1 utterance(s) the Check step set aside are not scored (silent)" in view.summary


# --------------------------------------------------------------------------- try it, export


def test_a_recording_reads_as_the_library_transcribes_it(ws_with_run, tmp_path):
    from workbench.transcribe import transcribe_files

    stereo = tmp_path / "phone.flac"
    rng = np.random.default_rng(0)
    sf.write(stereo, 0.1 * rng.standard_normal((44_100 * 2, 2)), 44_100)
    text = try_it.transcribe_recording(ws_with_run, RUN, stereo)
    model = find_run(ws_with_run, RUN).model_dir
    expected = transcribe_files([stereo], model, progress=False)[0].text
    assert text == expected and text.strip()  # the random model spells something
    with pytest.raises(WorkbenchError, match="Record something"):
        try_it.transcribe_recording(ws_with_run, RUN, None)
    with pytest.raises(WorkbenchError, match="Choose a run"):
        try_it.transcribe_recording(ws_with_run, "", stereo)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio at all")
    with pytest.raises(WorkbenchError, match="could not be read"):
        try_it.transcribe_recording(ws_with_run, RUN, broken)


def test_a_long_recording_is_cut_into_playable_rows_and_elan_and_praat_files(
        ws_with_run, tmp_path):
    from data_recipes.elan import parse_eaf
    from data_recipes.textgrid import parse_textgrid
    from tests.workbench.ctc_fixtures import noise

    audio = tmp_path / "interview.flac"
    sf.write(audio, noise(30.0, seed=3), SAMPLE_RATE)
    out = tmp_path / "out"
    out.mkdir()
    result = try_it.transcribe_timed(ws_with_run, RUN, audio, out)
    assert len(result.table) == len(result.spans) > 0  # the random model hears something
    assert list(result.table["text"]) and result.summary.startswith(
        f"**{len(result.table)} utterances**")
    eaf, grid = result.files
    assert (eaf.name, grid.name) == ("interview.eaf", "interview.TextGrid")
    [tier] = [t for t in parse_eaf(eaf).tiers if t.name == RUN]
    assert [a.value for a in tier.annotations] == list(result.table["text"])
    assert parse_textgrid(grid).tiers[0].name == RUN
    rate, samples = try_it.play_span(out / "interview.flac", result.spans[0])
    start, end = result.spans[0]
    assert rate == SAMPLE_RATE and len(samples) == pytest.approx((end - start) * rate, abs=2)
    with pytest.raises(WorkbenchError, match="Upload a recording"):
        try_it.transcribe_timed(ws_with_run, RUN, None, out)
    found = {}
    for choice, segmenter in try_it.CUT_CHOICES.items():  # every way the page offers works
        other = try_it.transcribe_timed(ws_with_run, RUN, audio, tmp_path / "out", None,
                                        None, choice)
        assert len(other.table) == len(other.spans)
        found[segmenter] = len(other.spans)
    # the noise has a loudness envelope, and the random model writes letters in it; the
    # voice detector hears no voice in it at all
    assert found["energy"] > 0 and found["ctc"] > 0 and found["silero"] == 0
    # With the user's own ELAN file: a copy of it with the run's tiers comes first.
    mine = tmp_path / "mine.eaf"
    mine.write_bytes(eaf.read_bytes().replace(f'TIER_ID="{RUN}"'.encode(),
                                              b'TIER_ID="field notes"', 1))
    again = try_it.transcribe_timed(ws_with_run, RUN, audio, tmp_path / "out", into=mine)
    assert again.files[0].name == f"mine.{RUN}.eaf"
    # its tiers kept (one already named like the run's words tier: the new ones get "-2")
    assert [t.name for t in parse_eaf(again.files[0]).tiers] == [
        "field notes", f"{RUN}-words", f"{RUN}-2", f"{RUN}-2-words"]
    broken = tmp_path / "broken.eaf"
    broken.write_text("<ANNOTATION_DOCUMENT>", encoding="utf-8")
    with pytest.raises(WorkbenchError, match="broken.eaf"):
        try_it.transcribe_timed(ws_with_run, RUN, audio, out, into=broken)


def test_an_aligned_transcript_is_listed_and_added_to_the_training_data(
        ws_with_run, tmp_path, monkeypatch):
    """Frame probabilities that say "cat mad", then "bad" (the tiny model's letters): the
    line never said is listed with no audio, and adding puts only the aligned lines into
    train, the other splits untouched."""
    from tests.workbench.ctc_fixtures import noise
    from tests.workbench.test_align import log_probs
    from workbench import align

    audio = tmp_path / "story.wav"
    sf.write(audio, noise(9.0, seed=4), SAMPLE_RATE)
    transcript = tmp_path / "story.txt"
    transcript.write_text("cat mad\nbonk\nbad\n", encoding="utf-8")
    frames = log_probs([(25, "cat mad"), (200, "bad")], 450)
    monkeypatch.setattr(align, "recording_log_probs", lambda recognizer, path: (frames, 9.0))
    out = tmp_path / "out"
    out.mkdir()
    result = try_it.align_transcript(ws_with_run, RUN, audio, transcript, out)
    assert list(result.table["outcome"]) == ["aligned", "not found in the recording",
                                             "aligned"]
    assert list(result.table["line"]) == ["story.txt:1", "story.txt:2", "story.txt:3"]
    assert result.spans[1] is None and result.spans[0] == (0.5, 0.92)
    assert "story.txt:2: not found in the recording" in result.summary
    with pytest.raises(WorkbenchError, match="not found in the recording"):
        try_it.play_span(out / "story.wav", result.spans[1])
    before = {split: ws_with_run.read_split(split) for split in ("train", "dev", "test")}
    message = try_it.add_aligned_clips(ws_with_run, result.clips)
    assert "Added 2 utterances" in message and "to train" in message
    after = {split: ws_with_run.read_split(split) for split in ("train", "dev", "test")}
    assert after["dev"] == before["dev"] and after["test"] == before["test"]
    assert after["train"][:len(before["train"])] == before["train"]
    added = after["train"][len(before["train"]):]
    assert [u.text for u in added] == ["cat mad", "bad"]
    assert all(ws_with_run.audio_path(u).is_file() for u in after["train"])
    assert (ws_with_run.root / "sources" / "story_clips" / "metadata.csv").is_file()
    sources = ws_with_run.read_settings()["sources"]
    assert sources[-1]["added_to"] == "train"


def test_exports_hold_the_model_and_the_report(ws_with_run, tmp_path):
    run = find_run(ws_with_run, RUN)
    archive = export.export_model(ws_with_run, RUN, tmp_path / "out")
    with zipfile.ZipFile(archive) as opened:
        names = set(opened.namelist())
        assert opened.read(f"{RUN}/model/model.safetensors") == (
            run.model_dir / "model.safetensors").read_bytes()
    model_files = {f"{RUN}/model/{p.relative_to(run.model_dir)}"
                   for p in run.model_dir.rglob("*") if p.is_file()}
    assert names == model_files | {f"{RUN}/config.yaml", f"{RUN}/result.json",
                                   f"{RUN}/model/README.md"}
    card = zipfile.ZipFile(archive).read(f"{RUN}/model/README.md").decode("utf-8")
    assert card.startswith("---\n") and "pipeline_tag: automatic-speech-recognition" in card
    assert f"# {RUN}" in card and "## Limitations" in card
    with pytest.raises(WorkbenchError, match="not been evaluated"):
        export.export_report(ws_with_run, RUN, tmp_path / "out")
    evaluate.evaluate(ws_with_run, RUN, "test")
    files = export.export_report(ws_with_run, RUN, tmp_path / "out")
    assert [p.name for p in files] == [f"{RUN}-report.json", f"{RUN}-test-utterances.csv"]
    assert json.loads(files[0].read_text(encoding="utf-8"))["splits"] == run.read_reports()
    with open(files[1], encoding="utf-8", newline="") as table:
        rows = list(csv.DictReader(table))
    scored = run.read_reports()["test"]["utterances"]
    assert [(r["id"], r["reference"], r["hypothesis"]) for r in rows] == [
        (u["id"], u["reference"], u["hypothesis"]) for u in scored]
    assert [float(r["wer"]) for r in rows] == pytest.approx([u["wer"] for u in scored])


def test_onnx_export_is_zipped_and_kept_in_the_run(ws_with_run, tmp_path):
    from workbench.transcribe import load_recognizer

    run = find_run(ws_with_run, RUN)
    archive = export.export_onnx_model(ws_with_run, RUN, tmp_path / "out", int8=False)
    kept = run.onnx_dir(int8=False)
    names = set(zipfile.ZipFile(archive).namelist())
    assert names == {f"{RUN}/{kept.name}/{p.relative_to(kept)}"
                     for p in kept.rglob("*") if p.is_file()}
    assert f"{RUN}/{kept.name}/model.onnx" in names
    assert load_recognizer(kept).is_onnx
    run.model_dir.rename(tmp_path / "moved")
    with pytest.raises(WorkbenchError, match="no model yet"):
        export.export_onnx_model(ws_with_run, RUN, tmp_path / "out")


# --------------------------------------------------------------------------- language model


@pytest.fixture
def ws_lm(ws_with_run):
    """ws_with_run whose run's model writes the workspace's own labels (an LM must be built
    against the model's vocabulary; the shared tiny model has a fixed one)."""
    import torch
    from transformers import Wav2Vec2ForCTC

    from workbench.vocab import make_processor

    model_dir = find_run(ws_with_run, RUN).model_dir
    processor = make_processor(ws_with_run.vocab_path)
    labels = len(processor.tokenizer)
    model = Wav2Vec2ForCTC.from_pretrained(model_dir)
    torch.manual_seed(0)
    head = torch.nn.Linear(model.lm_head.in_features, labels)
    with torch.no_grad():
        head.weight.mul_(20.0)  # varied letters from random inputs, as the tiny model's
    model.lm_head, model.config.vocab_size = head, labels
    model.config.pad_token_id = processor.tokenizer.pad_token_id
    model.save_pretrained(model_dir, safe_serialization=True)
    processor.save_pretrained(model_dir)
    return ws_with_run


def community_text(ws, path):
    """Sentences of the training transcripts' words, none a dev or test transcript."""
    words = sorted({w for u in ws.read_split("train") for w in u.text.split()})
    lines = [" ".join(words[i:i + 4]) for i in range(0, len(words), 2)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_language_model_is_built_tuned_and_listed(ws_lm, tmp_path):
    from workbench.lm.store import find_lm, read_info

    text = community_text(ws_lm, tmp_path / "upload" / "stories.txt")
    with pytest.raises(WorkbenchError, match="Upload at least one text file"):
        language_model.build_language_model(ws_lm, [], name="x")
    with pytest.raises(WorkbenchError, match="LM name"):
        language_model.build_language_model(ws_lm, [text], name="../escape")
    report = language_model.build_language_model(ws_lm, [text], name="stories")
    info = read_info(find_lm(ws_lm, "stories"))
    assert report.startswith(f"**Language model stories**: word 3-gram (modified Kneser-Ney), "
                             f"{info['text']['sentences']} sentences")
    assert "- stories.txt: " in report and str(tmp_path) not in report  # by name, not path
    assert f"perplexity {info['dev']['perplexity']}" in report
    assert language_model.decoding_choices(ws_lm) == [language_model.GREEDY, "stories"]
    assert language_model.chosen_lm(language_model.GREEDY) is None
    assert language_model.lm_table(ws_lm).iloc[0]["tuned with run"] == "not tuned yet"
    assert f"{DONE} 5. Language model: 1 built (stories)" in overview.overview_markdown(
        ws_lm)

    summary, table = language_model.tune_language_model(ws_lm, "stories", RUN)
    tuned = read_info(find_lm(ws_lm, "stories"))["tuned"]
    s = tuned["settings"]
    assert f"LM weight (alpha) {s['alpha']:g}, word bonus (beta) {s['beta']:g}" in summary
    assert list(table["split"]) == ["dev", "test"]
    assert table.iloc[1]["LM WER"] == round(tuned["test"]["lm"]["wer"], 3)
    row = language_model.lm_table(ws_lm).iloc[0]
    assert row["tuned with run"] == RUN
    assert row["test WER greedy → LM"] == (f"{tuned['test']['greedy']['wer']:.1%} → "
                                           f"{tuned['test']['lm']['wer']:.1%}")
    with pytest.raises(WorkbenchError, match="Build a language model first"):
        language_model.tune_language_model(ws_lm, None, RUN)


def test_text_in_another_script_gives_a_message_not_a_crash(ws_lm, tmp_path):
    other = tmp_path / "greek.txt"
    other.write_text("καλημέρα κόσμε\nκαλό βράδυ\n", encoding="utf-8")
    with pytest.raises(WorkbenchError, match="None of its 4 words can be spelled .*another script"):
        language_model.build_language_model(ws_lm, [other], name="greek")
    assert language_model.lm_names(ws_lm) == []  # nothing half-built is listed


def test_evaluate_and_try_it_set_greedy_and_lm_side_by_side(ws_lm, tmp_path):
    from workbench.evaluate import attach_lm
    from workbench.recognizer import load_recognizer
    from workbench.transcribe import transcribe_files

    text = community_text(ws_lm, tmp_path / "stories.txt")
    language_model.build_language_model(ws_lm, [text], name="stories")
    assert evaluate.saved_evaluation(ws_lm, RUN, "test", "stories") is None
    view = evaluate.evaluate(ws_lm, RUN, "test", "stories")
    reports = find_run(ws_lm, RUN).read_reports()
    greedy, with_lm = reports["test"], reports["test+lm:stories"]
    assert list(view.table.columns) == evaluate.COMPARE_COLUMNS
    assert f"Greedy: **WER {greedy['wer']:.1%}" in view.summary
    assert "with the language model stories (word LM, alpha" in view.summary
    hypotheses = {u["id"]: u["hypothesis"] for u in greedy["utterances"]}
    for row, utt in zip(view.table.to_dict("records"), with_lm["utterances"], strict=True):
        assert row["greedy"] == hypotheses[utt["id"]] and row["WER"] == round(utt["wer"], 3)
        assert row["with LM (differences)"] == evaluate.diff_html(utt["reference"],
                                                                 utt["hypothesis"])
    saved = evaluate.saved_evaluation(ws_lm, RUN, "test", "stories")
    assert saved is not None and saved.table.equals(view.table)

    clip = ws_lm.audio_path(ws_lm.read_split("test")[0])
    both = try_it.transcribe_recording(ws_lm, RUN, clip, "stories")
    model = find_run(ws_lm, RUN).model_dir
    recognizer, _ = attach_lm(load_recognizer(model), ws_lm, "stories")
    assert both == (transcribe_files([clip], model, progress=False)[0].text,
                    transcribe_files([clip], recognizer, progress=False)[0].text)
    assert set(both[1].split()) <= {w for line in text.read_text("utf-8").split("\n")
                                     for w in line.split()} | {
                                         w for u in ws_lm.read_split("train")
                                         for w in u.text.split()}


def test_the_onnx_export_can_carry_the_language_model(ws_lm, tmp_path):
    from workbench.lm.store import bundled_lm, read_info

    language_model.build_language_model(ws_lm, [community_text(ws_lm, tmp_path / "t.txt")],
                                        name="stories")
    language_model.tune_language_model(ws_lm, "stories", RUN)
    archive = export.export_onnx_model(ws_lm, RUN, tmp_path / "out", int8=False, lm="stories")
    kept = find_run(ws_lm, RUN).onnx_dir(int8=False)
    names = set(zipfile.ZipFile(archive).namelist())
    assert {f"{RUN}/{kept.name}/lm/lm.json", f"{RUN}/{kept.name}/lm/lm.arpa",
            f"{RUN}/{kept.name}/README.md"} <= names
    assert read_info(bundled_lm(kept))["tuned"]["run"] == RUN  # its tuned settings travel
    with pytest.raises(WorkbenchError, match="No language model 'missing'"):
        export.export_onnx_model(ws_lm, RUN, tmp_path / "out", int8=False, lm="missing")
    files = export.export_report(ws_lm, RUN, tmp_path / "report")
    assert f"{RUN}-test-lm-stories-utterances.csv" in {f.name for f in files}


def test_the_model_zip_carries_the_language_model_and_its_scores(ws_lm, tmp_path):
    from workbench.lm.store import bundled_lm, read_info
    from workbench.transcribe import transcribe_files

    language_model.build_language_model(ws_lm, [community_text(ws_lm, tmp_path / "t.txt")],
                                        name="stories")
    language_model.tune_language_model(ws_lm, "stories", RUN)
    archive = export.export_model(ws_lm, RUN, tmp_path / "out", lm="stories")
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(tmp_path / "unzipped")
    model = tmp_path / "unzipped" / RUN / "model"
    assert read_info(bundled_lm(model))["name"] == "stories"
    card = (model / "README.md").read_text(encoding="utf-8")
    lm_wer = find_run(ws_lm, RUN).read_reports()["test+lm:stories"]["wer"]
    assert "model-index" in card
    assert f"| Test WER (LM stories decoding) | {100 * lm_wer:.2f} % |" in card
    clip = ws_lm.audio_path(ws_lm.read_split("test")[0])
    assert transcribe_files([clip], model, progress=False)[0].text  # the folder is usable
