"""The page's handlers as plain functions: workspace in, tables and text out."""

import json
import zipfile
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from tests.ui.conftest import RUN
from ui import handlers
from ui.handlers import ProfileForm
from workbench.errors import WorkbenchError
from workbench.manifest import write_manifest
from workbench.text import OrthographyProfile, load_profile

# --------------------------------------------------------------------------- overview, data


def test_overview_says_what_to_do_next(ws, tmp_path):
    from workbench.workspace import Workspace

    empty = Workspace.at(tmp_path / "empty")
    empty.root.mkdir()
    assert "**Next:** Data" in handlers.overview_markdown(empty)
    text = handlers.overview_markdown(ws)
    assert "✅ 1. Data: 24 utterances" in text and "**Next:** Check" in text


def test_data_summary_counts_the_splits(ws):
    text, splits, issues = handlers.data_summary(ws)
    assert "24 utterances" in text
    assert list(splits["split"]) == ["train", "dev", "test"]
    assert splits["utterances"].sum() == 24
    assert list(issues.columns) == ["item", "check", "detail", "action"]


# --------------------------------------------------------------------------- check


def test_check_gives_tables_and_plot_data(ws):
    view = handlers.run_check(ws, 20.0)
    assert ws.audit_path.is_file()
    assert "24 utterances" in view.summary.replace("of 24", "24")
    assert view.histogram.groupby("status")["utterances"].sum().sum() == 24
    assert set(view.histogram["status"]) == {"kept", "set aside"}
    assert view.speakers["minutes"].sum() > 0
    assert list(view.set_aside.columns) == ["id", "split", "check", "action", "detail"]
    saved = handlers.saved_check(ws)
    assert saved is not None and saved.summary == view.summary


def test_a_strict_limit_sets_clips_aside_with_their_reason(ws):
    view = handlers.run_check(ws, 1.0)
    too_long = view.set_aside[view.set_aside["check"] == "too_long"]
    assert len(too_long) > 0 and (too_long["action"] == "excluded from training").all()
    table = handlers.utterance_table(ws)
    assert (table["status"] == "set aside: too_long").sum() == len(too_long)


def test_any_utterance_can_be_played_beside_its_transcript(ws):
    utt = ws.read_split("train")[0]
    (rate, samples), text = handlers.utterance_audio(ws, utt.id)
    assert rate == 16_000 and samples.ndim == 1 and len(samples) > 0
    assert utt.id in text
    with pytest.raises(WorkbenchError, match="no utterance"):
        handlers.utterance_audio(ws, "../../audio/x")


# --------------------------------------------------------------------------- alphabet


def test_the_form_round_trips_the_default_profile(ws):
    form = handlers.profile_form(ws)
    assert handlers.profile_from_form(form) == OrthographyProfile()


def test_form_values_become_a_valid_profile():
    form = ProfileForm(ignore=". , ;", mappings=(("’", "'"), ("", "")), graphemes="ch, ll ch'",
                       fold_apostrophes="", distinct_letters="ʻ")
    profile = handlers.profile_from_form(form)
    assert profile.ignore == ".,;" and profile.mappings == {"’": "'"}
    assert profile.graphemes == ("ch", "ll", "ch'") and profile.fold_apostrophes is None
    with pytest.raises(WorkbenchError, match="nothing to map from"):
        handlers.profile_from_form(replace(form, mappings=(("", "x"),)))
    with pytest.raises(WorkbenchError, match="grapheme"):
        handlers.profile_from_form(replace(form, graphemes="c"))


def test_save_alphabet_builds_the_vocabulary_and_marks_unseen_labels(ws):
    test = ws.read_split("test")
    write_manifest(ws.manifest_path("test"), [replace(test[0], text=test[0].text + " ü"),
                                              *test[1:]])
    form = replace(handlers.profile_form(ws), graphemes="ch")
    view = handlers.save_alphabet(ws, form)
    assert load_profile(ws.profile_path).graphemes == ("ch",)
    vocab = json.loads(ws.vocab_path.read_text(encoding="utf-8"))
    assert "ch" in vocab and "ü" not in vocab
    assert "ü" in set(view.unseen["label"])
    assert 'wb-unseen" title="not in train: becomes [UNK]"><b>ü</b>' in view.alphabet_html
    assert "ch" in set(view.counts["label"])
    assert list(view.preview.columns) == ["id", "transcript", "normalised", "labels"]
    assert handlers.saved_alphabet(ws).summary == view.summary


def test_rare_labels_are_highlighted():
    html = handlers.alphabet_html([{"token": "a", "count": 40}, {"token": "q", "count": 1}],
                                  {"q"}, {})
    assert 'wb-rare" title="rare in train"><b>q</b>' in html
    assert 'wb-ok" title="in train"><b>a</b>' in html


# --------------------------------------------------------------------------- evaluate


def test_differences_are_marked_and_escaped():
    assert handlers.diff_html("a b c", "a b c") == "a b c"
    marked = handlers.diff_html("allin p'unchaw <x>", "allin punchaw <x> kay")
    assert "<del>p&#x27;unchaw</del>" in marked and "<ins>punchaw</ins>" in marked.replace(
        "<mark></mark>", "")
    assert "&lt;x&gt;" in marked and "<ins>kay</ins>" in marked
    assert "<mark>" in handlers.diff_html("wasi", "wisi")


def test_evaluate_scores_the_test_split_worst_first(ws_with_run):
    view = handlers.evaluate(ws_with_run, RUN, "test")
    test = ws_with_run.read_split("test")
    assert len(view.table) == len(test)
    assert list(view.table.columns) == handlers.EVAL_COLUMNS
    assert list(view.table["WER"]) == sorted(view.table["WER"], reverse=True)
    assert "WER" in view.summary
    saved = handlers.saved_evaluation(ws_with_run, RUN, "test")
    assert saved is not None and saved.table.equals(view.table)
    assert handlers.saved_evaluation(ws_with_run, RUN, "dev") is None
    with pytest.raises(WorkbenchError, match="Unknown split"):
        handlers.evaluate(ws_with_run, RUN, "../test")


# --------------------------------------------------------------------------- try it, export


def test_any_recording_can_be_transcribed(ws_with_run, tmp_path):
    stereo = tmp_path / "phone.flac"
    rng = np.random.default_rng(0)
    sf.write(stereo, 0.1 * rng.standard_normal((44_100 * 2, 2)), 44_100)
    assert isinstance(handlers.transcribe_recording(ws_with_run, RUN, stereo), str)
    assert handlers.finished_runs(ws_with_run) == [RUN]
    with pytest.raises(WorkbenchError, match="Record something"):
        handlers.transcribe_recording(ws_with_run, RUN, None)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio at all")
    with pytest.raises(WorkbenchError, match="could not be read"):
        handlers.transcribe_recording(ws_with_run, RUN, broken)


def test_exports_hold_the_model_and_the_report(ws_with_run, tmp_path):
    archive = handlers.export_model(ws_with_run, RUN, tmp_path / "out")
    names = zipfile.ZipFile(archive).namelist()
    assert f"{RUN}/model/model.safetensors" in names and f"{RUN}/config.yaml" in names
    with pytest.raises(WorkbenchError, match="not been evaluated"):
        handlers.export_report(ws_with_run, RUN, tmp_path / "out")
    handlers.evaluate(ws_with_run, RUN, "test")
    files = handlers.export_report(ws_with_run, RUN, tmp_path / "out")
    assert [p.name for p in files] == [f"{RUN}-report.json", f"{RUN}-test-utterances.csv"]
    assert files[1].read_text(encoding="utf-8").startswith("id,wer,cer,reference")


def test_onnx_export_is_zipped_and_kept_in_the_run(ws_with_run, tmp_path):
    from workbench.transcribe import load_recognizer

    archive = handlers.export_onnx_model(ws_with_run, RUN, tmp_path / "out", int8=False)
    names = zipfile.ZipFile(archive).namelist()
    assert f"{RUN}/onnx/model.onnx" in names and f"{RUN}/onnx/vocab.json" in names
    kept = ws_with_run.runs_dir / RUN / "onnx"
    assert load_recognizer(kept).is_onnx
    (ws_with_run.runs_dir / RUN / "model").rename(tmp_path / "moved")
    with pytest.raises(WorkbenchError, match="no model yet"):
        handlers.export_onnx_model(ws_with_run, RUN, tmp_path / "out")
