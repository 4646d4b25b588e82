"""Step 9, Untranscribed audio: upload, pretraining and pseudo-labelling as jobs, comparison."""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from gradio_client import Client, handle_file

from data_recipes.untranscribed import read_untranscribed
from tests.data_recipes.test_untranscribed import demo_clips, recording
from tests.ui.conftest import RUN
from ui import jobs
from ui.steps import train as training
from ui.steps import untranscribed as steps
from ui.steps.overview import overview_markdown
from workbench.config import build_config, save_config
from workbench.errors import WorkbenchError
from workbench.models import DEMO_BASE
from workbench.pretrain import read_pretraining_metrics
from workbench.pseudolabel import read_pseudolabels
from workbench.run import find_run

JOB_TIMEOUT_S = 300  # a safety limit only: every job here is bounded by its steps or pieces


@pytest.fixture
def recordings(demo_corpus, tmp_path):
    """A field recording of demo clips the workspace does not hold, a silent one, a note."""
    folder = tmp_path / "uploaded"
    folder.mkdir()
    sf.write(folder / "field recording.wav", recording(demo_clips(demo_corpus, 100, 12)),
             16000)
    sf.write(folder / "empty room.wav", np.zeros(16000 * 5, dtype=np.float32), 16000)
    (folder / "notes.txt").write_text("recorded in the village hall", encoding="utf-8")
    return sorted(folder.iterdir())


def wait_for_end(ws, job_id: str) -> jobs.JobStatus:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        status = jobs.job_status(ws, job_id)
        if not status.active:
            return status
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not end: {jobs.job_status(ws, job_id).log_tail}")


def test_uploaded_recordings_are_kept_cut_and_audited(ws, recordings):
    report, aside = steps.import_recordings(ws, recordings)
    pieces = read_untranscribed(ws)
    minutes = sum(p.duration for p in pieces) / 60
    assert len(pieces) >= 3
    assert report.startswith(f"**{len(pieces)} pieces kept** ({minutes:.1f} min) from 2 "
                             "recording(s)")
    assert "Not audio, left out: notes.txt." in report
    # The set-aside table names the silent recording by its place in the workspace.
    [row] = aside.to_dict("records")
    assert row["check"] == "silent" and row["recording or piece"].startswith("uploads/")
    assert row["recording or piece"].endswith("/empty room.wav")
    assert str(ws.root) not in aside.to_string()
    # The upload is kept as given; the minutes stand beside the transcribed minutes.
    kept = {p.name for p in (ws.root / "uploads").glob("*/*")}
    assert kept == {"field recording.wav", "empty room.wav", "notes.txt"}
    transcribed = sum(u.duration for us in ws.read_all().values() for u in us) / 60
    line = steps.minutes_markdown(ws)
    assert line.startswith(f"**Transcribed:** {transcribed:.1f} min (train ")
    assert f"**Untranscribed:** {minutes:.1f} min in {len(pieces)} pieces" in line


def test_an_upload_without_recordings_is_refused_and_names_what_it_got(ws, recordings):
    with pytest.raises(WorkbenchError, match="holds no recordings.*not audio: notes.txt"):
        steps.import_recordings(ws, [p for p in recordings if p.suffix == ".txt"])
    assert read_untranscribed(ws) == []


def test_pretraining_runs_as_a_job_and_its_base_is_offered_for_training(ws, recordings,
                                                                         tmp_path):
    from workbench.vocab import build_workspace_vocab

    build_workspace_vocab(ws)
    with pytest.raises(WorkbenchError, match="Upload untranscribed recordings first"):
        steps.start_pretraining(ws, DEMO_BASE, 2, tmp_path)
    steps.import_recordings(ws, recordings)
    started = steps.start_pretraining(ws, DEMO_BASE, 2, tmp_path)
    assert started.job.kind == jobs.PRETRAIN
    assert "pretraining" in overview_markdown(ws) and "step 9, Untranscribed" in \
        overview_markdown(ws)
    assert jobs.active_job(ws) is None  # step 4 follows training jobs only
    with pytest.raises(WorkbenchError, match="Pretraining runs in workspace ws"):
        training.start_training(ws, "tiny", "10min", {}, tmp_path)  # one job at a time
    ended = wait_for_end(ws, started.job.id)
    assert ended.state == jobs.FINISHED, ended.log_tail
    run = ended.job.run
    view = steps.step_job_view(ws)
    assert view.status.startswith(f"**Pretraining {run} ended** (schedule) at step 2 of 2")
    assert not view.active and set(view.curves["series"]) == {"loss", "perplexity / codebook"}
    [row] = steps.pretraining_table(ws).to_dict("records")
    assert (row["pretraining run"], row["from"], row["step"], row["of"], row["ended"]) == (
        run, "demo-base", 2, 2, "schedule")
    assert row["base for training"] == f"base:{run}"
    # Step 4 and the fine-tune below offer the base, and train it from the workspace's folder.
    assert (f"base:{run}") in [v for _, v in training.model_choices(tmp_path, ws)]
    assert training.model_argument(f"base:{run}", tmp_path, ws) == str(ws.root / "bases" / run)
    assert training.choice_of_model(str(ws.root / "bases" / run), tmp_path, ws) == f"base:{run}"
    with pytest.raises(WorkbenchError, match="Unknown model"):
        training.model_argument(f"base:{run}", tmp_path)  # another workspace's page
    with pytest.raises(WorkbenchError, match="Unknown model"):
        training.model_argument("base:../../elsewhere", tmp_path, ws)
    logged = read_pretraining_metrics(ws.root / "pretrain" / run)
    assert [r["step"] for r in logged if r["event"] == "train"] == [1, 2]  # first and last
    settings = json.loads((ws.root / "pretrain" / run / "settings.json").read_text())
    assert settings["checkpoint_every"] == steps.PRETRAIN_CHECKPOINT_EVERY


def test_a_stopped_pretraining_before_its_first_checkpoint_cannot_be_resumed(ws, recordings,
                                                                              tmp_path):
    steps.import_recordings(ws, recordings)
    started = steps.start_pretraining(ws, DEMO_BASE, 500, tmp_path)
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while not any(r["event"] == "train" for r in read_pretraining_metrics(
            ws.root / "pretrain" / jobs.job_status(ws, started.job.id).job.run)):
        assert time.monotonic() < deadline, jobs.job_status(ws, started.job.id).log_tail
        time.sleep(0.5)
    stopped = steps.stop_step_job(ws)
    assert stopped.state == jobs.STOPPED
    assert steps.step_job_view(ws).status.startswith(f"Pretraining {stopped.job.run} was "
                                                     "stopped at step")
    with pytest.raises(WorkbenchError, match="stopped before its first checkpoint"):
        steps.resume_pretraining(ws, None)
    with pytest.raises(WorkbenchError, match="No pretraining or pseudo-labelling is running"):
        steps.stop_step_job(ws)


def test_pseudolabels_run_as_a_job_then_fine_tune_with_them(ws_with_run, recordings,
                                                            tmp_path):
    ws = ws_with_run
    steps.import_recordings(ws, recordings)
    with pytest.raises(WorkbenchError, match="cannot name a pseudo-label set"):
        steps.start_pseudolabels(ws, RUN, None, None, "../escape")
    with pytest.raises(WorkbenchError, match="between 0 and 1"):
        steps.start_pseudolabels(ws, RUN, None, 1.5, "")
    started = steps.start_pseudolabels(ws, RUN, None, None, "")
    assert started.job.kind == jobs.PSEUDOLABEL and started.job.run == RUN
    ended = wait_for_end(ws, started.job.id)
    assert ended.state == jobs.FINISHED, ended.log_tail
    with open(ws.root / "jobs" / ended.job.id / jobs.LOG_FILE, "a") as log:
        log.write(f"written to {ws.root}/pseudolabels/{RUN}\n")
    view = steps.step_job_view(ws)
    assert view.status.startswith(f"**Pseudo-labels ready:** set {RUN}")
    assert view.log.endswith(f"written to {RUN}")  # never a server path
    info = json.loads((ws.root / "pseudolabels" / RUN / "info.json").read_text())
    [row] = steps.pseudolabel_table(ws).to_dict("records")
    assert row["set"] == RUN and row["made by run"] == RUN
    assert row["pieces kept"] == f"{info['kept']} of {len(read_untranscribed(ws))}"
    assert row["confidence threshold"].startswith(f"{info['threshold']['value']:.3f} (chosen "
                                                  "on dev")
    assert len(read_pseudolabels(ws, RUN)) == info["kept"]
    # The fine-tune is a training job with the set at its weight.
    with pytest.raises(WorkbenchError, match="no pseudo-label set 'other'"):
        steps.start_finetune(ws, "tiny", "other", 0.5, tmp_path)
    training_job = steps.start_finetune(ws, "tiny", RUN, 0.3, tmp_path)
    try:
        command = training_job.job.command
        assert training_job.job.kind == jobs.TRAIN
        assert f"data.pseudolabels={RUN}" in command and "data.pseudo_weight=0.3" in command
    finally:
        jobs.stop_job(ws, training_job.job.id, grace=5.0)


def test_the_comparison_scores_every_run_on_the_same_dev_and_test(ws_with_run):
    ws = ws_with_run
    base = ws.root / "bases" / "20240102-000000-demo-base"
    base.mkdir(parents=True)
    (base / "pretraining.json").write_text(json.dumps({"base": "demo-base", "step": 150}))
    second = ws.runs_dir / "20240103-000000-tiny"
    second.mkdir()
    for name in ("model", "result.json"):
        target = second / name
        source = ws.runs_dir / RUN / name
        if source.is_dir():
            target.symlink_to(source, target_is_directory=True)
        else:
            target.write_text("{}")
    save_config(build_config(preset="10min", overrides=[
        f"model.name={base}", "data.pseudolabels=labels", "data.pseudo_weight=0.3"]),
        second / "config.yaml")
    before = steps.comparison_table(ws).to_dict("records")
    assert [r["run"] for r in before] == [second.name, RUN]
    assert before[0]["trained from"] == ("base:20240102-000000-demo-base (demo-base + 150 "
                                         "steps of pretraining here)")
    assert before[0]["pseudo-labels"] == "labels (weight 0.3)"
    assert (before[1]["trained from"], before[1]["pseudo-labels"]) == ("tiny", "none")
    assert all(r["test CER"] == "" for r in before)
    note = steps.evaluate_unscored(ws)
    assert note.startswith("Scored 4 run-split pair(s)")
    after = steps.comparison_table(ws).to_dict("records")
    for row in after:
        reports = find_run(ws, row["run"]).read_reports()
        assert row["dev CER"] == f"{reports['dev']['cer']:.3f}"
        assert row["test CER"] == f"{reports['test']['cer']:.3f}"
        assert row["test WER"] == f"{reports['test']['wer']:.3f}"
    assert steps.evaluate_unscored(ws) == "Every run is scored on dev and test already."


def test_the_page_adds_recordings_through_its_api(server, recordings):
    app, root = server
    client = Client(app.local_url, verbose=False)
    client.predict("field", api_name="/create_workspace")
    report, aside, _, _, _, compare, minutes = client.predict(
        [handle_file(p) for p in recordings], api_name="/add_untranscribed")
    ws = root.resolve("field")
    pieces = read_untranscribed(ws)
    assert report.startswith(f"**{len(pieces)} pieces kept**") and len(pieces) >= 3
    assert minutes.startswith("**Transcribed:** none yet (step 1). **Untranscribed:** ")
    assert [row[1] for row in aside["data"]] == ["silent"]
    assert compare["data"] in ([], [[""] * len(steps.COMPARE_COLUMNS)])  # no runs yet
    line = f"9. Untranscribed audio: {sum(p.duration for p in pieces) / 60:.1f} min in " \
           f"{len(pieces)} pieces"
    assert line in overview_markdown(ws)


def test_job_commands_are_the_cli(ws):
    pretrain = jobs.pretrain_command(ws, model="demo-base", steps=5, settings=["seed=1"])
    assert pretrain[:4] == [sys.executable, "-m", "workbench.cli", "pretrain"]
    assert pretrain[-5:] == ["--model", "demo-base", "--steps", "5", "seed=1"]
    assert jobs.pretrain_command(ws, resume="R")[-2:] == ["--resume", "R"]
    labels = jobs.pseudolabel_command(ws, run="R", name="N", lm="community", threshold=0.9)
    assert labels[3] == "pseudolabel"
    assert labels[-8:] == ["--run", "R", "--name", "N", "--lm", "community", "--threshold",
                           "0.9"]
