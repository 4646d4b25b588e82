"""Step 4 as plain functions: models, settings, overrides, progress, stop and resume."""

import json
import signal
import time
from dataclasses import replace

import pytest

from tests.ui.conftest import RUN
from ui import jobs
from ui.messages import badge
from ui.steps import overview
from ui.steps import train as training
from workbench.errors import WorkbenchError
from workbench.manifest import write_manifest
from workbench.run import TrainingLock, find_run, training_now

DONE, TODO = badge("done"), badge("to do")  # the overview's status words


def test_models_offered_are_registered_or_in_the_models_folder(tmp_path):
    (tmp_path / "my-xlsr").mkdir()
    (tmp_path / "my-xlsr" / "config.json").write_text("{}")
    (tmp_path / "not-a-model").mkdir()
    values = [value for _, value in training.model_choices(tmp_path)]
    assert values[0] == "xls-r-300m" and {"tiny", "demo-base"} <= set(values)
    assert "local:my-xlsr" in values and "local:not-a-model" not in values
    assert training.model_argument("local:my-xlsr", tmp_path) == str(tmp_path / "my-xlsr")
    assert training.model_argument("facebook/mms-1b-all", tmp_path) == "facebook/mms-1b-all"
    for bad in ("local:../../etc", "/etc/passwd", "../x/y", "a/../b", "org/..", "a/b/c"):
        with pytest.raises(WorkbenchError, match="Unknown model"):
            training.model_argument(bad, tmp_path)


def test_only_changed_settings_become_overrides(ws):
    preset, resolved = training.resolved_settings(ws, "auto", "tiny")
    assert preset == "10min" and resolved["optim.learning_rate"] == pytest.approx(2e-3)
    assert "model.name" not in resolved
    values = {**resolved, "optim.max_steps": 6.0, "run.threads": 1,
              "model.freeze_feature_encoder": True, "optim.learning_rate": 2e-3}
    assert training.settings_overrides(resolved, values) == [
        "model.freeze_feature_encoder=true", "optim.max_steps=6", "run.threads=1"]
    with pytest.raises(WorkbenchError, match="whole number"):
        training.settings_overrides(resolved, {"optim.max_steps": 2.5})


def test_the_users_edits_are_what_differs_from_what_was_shown():
    shown = {"optim.max_steps": 0, "optim.learning_rate": 5e-5, "run.device": "auto",
             "model.freeze_feature_encoder": True}
    values = {"optim.max_steps": 6.0, "optim.learning_rate": 5.0e-5, "run.device": "auto",
              "model.freeze_feature_encoder": False}
    assert training.changed_settings(shown, values) == {
        "optim.max_steps": 6.0, "model.freeze_feature_encoder": False}
    assert training.changed_settings(shown, {**shown, "optim.max_steps": 0.0}) == {}


def write_run(ws, records) -> None:
    """A run folder with a config and these metrics (and a line cut short, being written)."""
    run_dir = ws.runs_dir / RUN
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("preset: 10min\n")
    lines = [json.dumps(r) for r in records] + ['{"event": "tra']
    (run_dir / "metrics.jsonl").write_text("\n".join(lines))


RECORDS = [{"event": "start", "step": 0, "max_steps": 20},
           {"event": "train", "step": 1, "loss": 9.5},
           {"event": "train", "step": 10, "loss": 4.0},
           {"event": "eval", "step": 10, "dev_cer": 0.8, "dev_wer": 1.0},
           {"event": "eval", "step": 20, "dev_cer": float("nan"), "dev_wer": 0.9}]


def test_training_view_reads_the_metrics(ws):
    write_run(ws, RECORDS)
    view = training.training_view(ws, RUN)
    assert (view.step, view.max_steps, view.fraction) == (20, 20, 1.0)
    assert list(view.loss["loss"]) == [9.5, 4.0]
    assert list(view.scores["value"]) == [0.8, 1.0, 0.9]  # the NaN CER is left out
    assert 'width:100.0%' in training.progress_html(view)
    assert training.training_view(ws, None).status.startswith("No training run yet")
    with pytest.raises(WorkbenchError, match="no run"):
        training.training_view(ws, "../../etc")


def test_a_runs_state_comes_from_the_run_and_the_training_lock(ws):
    """Trained elsewhere only while a process holds the lock for it; resumable only from a
    checkpoint; finished once it has a result (old metrics say nothing of the kind)."""
    write_run(ws, RECORDS)
    run = find_run(ws, RUN)
    view = training.training_view(ws, RUN)
    assert view.state == training.NOT_STARTED and not view.active
    assert "before its first checkpoint" in view.status
    with pytest.raises(WorkbenchError, match="first checkpoint"):
        training.resume_training(ws, RUN)
    other = TrainingLock.acquire(ws, "20240101-000000-other")  # the CLI trains another run
    try:
        assert training.training_view(ws, RUN).state == training.NOT_STARTED
    finally:
        other.release()
    run.last_checkpoint.mkdir(parents=True)
    (run.last_checkpoint / "state.json").write_text("{}")
    view = training.training_view(ws, RUN)
    assert view.state == jobs.STOPPED and "Resume" in view.status and not view.active
    assert "Best dev CER 0.800, WER 1.000 at step 10" in view.status
    (run.root / "result.json").write_text(json.dumps(
        {"best_dev_cer": 0.7, "best_dev_wer": 0.95, "best_step": 15}))
    view = training.training_view(ws, RUN)
    assert view.state == jobs.FINISHED and not view.active
    assert "Best dev CER 0.700, WER 0.950 at step 15" in view.status  # the run's own best
    with pytest.raises(WorkbenchError, match="has finished"):
        training.resume_training(ws, RUN)


def test_a_run_trained_on_the_command_line_is_followed_not_restarted(ws, tmp_path):
    from workbench.vocab import build_workspace_vocab

    build_workspace_vocab(ws)
    write_run(ws, RECORDS)
    find_run(ws, RUN).last_checkpoint.mkdir(parents=True)
    cli = TrainingLock.acquire(ws, RUN)  # what `workbench train` holds while it trains
    try:
        view = training.training_view(ws, RUN)
        assert view.state == training.EXTERNAL and view.active
        assert view.status.startswith("**Training outside this page**")
        assert "loss 4.000" in view.status
        with pytest.raises(WorkbenchError, match="still training"):
            training.resume_training(ws, RUN)
        with pytest.raises(WorkbenchError, match=f"Run {RUN} is being trained"):
            training.start_training(ws, "tiny", "auto", {}, tmp_path)
        assert f"Run {RUN} is being trained" in training.readiness(ws)
        assert jobs.list_jobs(ws) == []  # nothing was started
    finally:
        cli.release()
    assert training.training_view(ws, RUN).state == training.NOT_STARTED
    assert "being trained" not in training.readiness(ws)


def test_training_needs_an_up_to_date_vocabulary(ws, tmp_path):
    from workbench.vocab import build_workspace_vocab

    with pytest.raises(WorkbenchError, match="no vocabulary yet.*Alphabet"):
        training.start_training(ws, "tiny", "auto", {}, tmp_path)
    assert "No vocabulary yet" in training.readiness(ws)
    build_workspace_vocab(ws)
    assert f"{DONE} 3. Alphabet" in overview.overview_markdown(ws)
    train = ws.read_split("train")
    write_manifest(ws.manifest_path("train"), [replace(train[0], text=train[0].text + " q"),
                                               *train[1:]])  # a new import
    text = overview.overview_markdown(ws)
    assert f"{TODO} 3. Alphabet: the data or the profile changed" in text
    assert "build it again in step 3" in training.readiness(ws)
    with pytest.raises(WorkbenchError, match="Build it again"):
        training.start_training(ws, "tiny", "auto", {}, tmp_path)
    assert jobs.list_jobs(ws) == []


def test_a_training_job_stops_cleanly_and_resumes(ws, tmp_path):
    """The real `workbench train` as a job: stopped with SIGINT, continued with --resume."""
    from workbench.vocab import build_workspace_vocab

    build_workspace_vocab(ws)
    _, resolved = training.resolved_settings(ws, "10min", "tiny")
    values = {**resolved, "optim.max_steps": 400, "run.eval_every": 5, "run.log_every": 1,
              "run.threads": 1, "data.max_batch_seconds": 10}
    # As from a UI started in the background (`workbench ui &`): SIGINT ignored, which the
    # job inherits; the job must still take SIGINT as a clean, resumable stop.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        started = training.start_training(ws, "tiny", "10min", values, tmp_path / "models")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "optim.max_steps=400" in started.job.command

    def until(job_id, condition, seconds=300):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            view = training.training_view(ws, None, job_id)
            if condition(view):
                return view
            assert view.state != jobs.FAILED, view.log
            time.sleep(0.5)
        raise AssertionError("timed out")

    # Stop between two checkpoints (one is saved at every evaluation, every 5 steps).
    view = until(started.job.id, lambda v: v.step > 5 and v.step % 5 in (1, 2)
                 and find_run(ws, v.run).has_checkpoint)
    assert view.state == jobs.RUNNING and view.active
    assert training_now(ws)["run"] == view.run  # the job holds the workspace's training lock
    with pytest.raises(WorkbenchError, match=f"Run {view.run} is being trained"):
        training.start_training(ws, "tiny", "10min", values, tmp_path / "models")
    stopped = jobs.stop_job(ws, started.job.id)
    assert stopped.state == jobs.STOPPED and "--resume" in stopped.log_tail
    assert training_now(ws) is None
    assert training.training_view(ws, view.run).state == jobs.STOPPED
    resumed = training.resume_training(ws, view.run)
    assert resumed.job.run == view.run
    view = until(resumed.job.id, lambda v: v.step > 10)
    assert view.run == resumed.job.run and view.state == jobs.RUNNING
    assert jobs.stop_job(ws, resumed.job.id).state == jobs.STOPPED


def test_the_model_box_gets_back_the_model_a_run_or_job_was_started_with(ws_with_run, tmp_path):
    from workbench.models import DEMO_BASE_DIR, resolve_model_name

    models = tmp_path / "models"
    (models / "my-xlsr").mkdir(parents=True)
    (models / "my-xlsr" / "config.json").write_text("{}")
    for name, choice in [("xls-r-300m", "xls-r-300m"), (str(DEMO_BASE_DIR), "demo-base"),
                         (str(models / "my-xlsr"), "local:my-xlsr"),
                         ("facebook/mms-300m", "mms-300m"), ("org/other", "org/other")]:
        assert training.choice_of_model(name, models) == choice
        argument = training.model_argument(choice, models)
        assert resolve_model_name(argument) == resolve_model_name(name)  # the same model
    assert training.run_model(ws_with_run, RUN, models) == ("tiny", "10min")
    job = jobs.Job("j", 1, jobs.train_command(ws_with_run, model=str(models / "my-xlsr"),
                                              preset="1h", overrides=[]), 0.0)
    assert training.job_model(job, models) == ("local:my-xlsr", "1h")
    assert training.job_model(replace(job, command=jobs.resume_command(ws_with_run, RUN)),
                              models) is None


def test_before_start_the_page_says_what_a_model_costs_here(monkeypatch, tmp_path):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setattr("torch.get_num_threads", lambda: 2)
    note = training.model_note("xls-r-300m", tmp_path, steps=600, batch_seconds=16.0)
    assert "315M parameters" in note and "No GPU here" in note
    assert "600 steps would take roughly 13 hours to 18 hours" in note  # 80-110 s a step
    assert "No GPU here" not in training.model_note("demo-base", tmp_path, 600, 20.0)
    assert "days" in training.cpu_cost(965, 1125, 80.0, 2)  # XLS-R 1B, the 10min preset
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert "No GPU here" not in training.model_note("xls-r-300m", tmp_path, 600, 16.0)


def test_start_is_refused_for_a_model_not_on_this_machine(ws, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from workbench.vocab import build_workspace_vocab

    build_workspace_vocab(ws)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(WorkbenchError, match="Training was not started") as err:
        training.start_training(ws, "xls-r-300m", "auto", {}, tmp_path)
    assert "demo-base" in str(err.value) and "--model" not in str(err.value)
    assert jobs.list_jobs(ws) == []


def test_a_failed_job_says_why_in_the_pages_words():
    from workbench.cli import PAGE_MESSAGE

    job = jobs.Job("j", 1, [], 0.0)
    log = ("loading...\nerror: Cannot load 'x': pass --model DIR\n"
           f"{PAGE_MESSAGE}The model x cannot be loaded: choose demo-base.\n")
    failed = jobs.JobStatus(job, jobs.FAILED, log)
    assert training.failure_reason(failed) == "The model x cannot be loaded: choose demo-base."
    plain = jobs.JobStatus(job, jobs.FAILED, "error: No vocabulary: run `workbench vocab -w "
                                             "WS` first.")
    assert training.failure_reason(plain) == (
        "No vocabulary: go to step 3, Alphabet (Build the vocabulary) first.")
    assert training.failure_reason(jobs.JobStatus(job, jobs.RUNNING, log)) == ""


def test_for_a_script_without_spaces_the_train_step_shows_no_wer():
    records = [{"event": "start", "max_steps": 10},
               {"event": "eval", "step": 5, "dev_cer": 0.4, "dev_ger": 0.5, "dev_wer": 1.0,
                "dev_wer_meaningful": False}]
    frame = training._score_frame(records)
    assert set(frame["metric"]) == {"dev CER", "dev GER"}
    best = {"step": 5, "dev_cer": 0.4, "dev_wer": 1.0}
    text = training._status_text(jobs.FINISHED, records, best, 10, 10)
    assert "Best dev CER 0.400 at step 5" in text and "WER" not in text
    spaced = [{**records[1], "dev_wer_meaningful": True}]
    assert set(training._score_frame(spaced)["metric"]) == {"dev CER", "dev GER", "dev WER"}
    assert "WER 1.000" in training._status_text(jobs.FINISHED, spaced, best, 10, 10)


def test_the_estimate_offers_each_mode_with_its_cost_and_preselects_one(ws, tmp_path,
                                                                         monkeypatch):
    from workbench.vocab import build_workspace_vocab

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    build_workspace_vocab(ws)
    assert training.mode_choices("tiny", tmp_path) == ["full", "top"]  # no adapters
    table, suggested, note = training.estimate_modes(
        ws, "tiny", "10min", {"run.threads": 1, "data.max_batch_seconds": 8.0}, tmp_path)
    assert list(table["mode"]) == ["full", "top"]
    assert list(table["fits in an hour"]) == ["yes", "yes"] and suggested == "full"
    assert table["basis"][0] == "measured here" and "model-based" in table["basis"][1]
    assert note.startswith("Estimate: --mode full:")
    assert (tmp_path / "cache" / "estimates.json").is_file()


def test_the_progress_says_how_long_is_left(ws_with_run):
    ws = ws_with_run
    run = ws.runs_dir / RUN
    lines = [{"event": "start", "step": 0, "max_steps": 100, "time": 1.0}]
    lines += [{"event": "train", "step": s, "loss": 1.0, "elapsed_s": 3.0 * s,
               "time": 1.0 + 3.0 * s} for s in range(1, 11)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    view = training.training_view(ws, RUN)
    assert view.remaining_s is None  # nothing trains it now
    live = replace(view, remaining_s=270.0)
    assert "about 4 min left" in training.progress_html(live)


def test_a_mode_shows_its_own_settings_and_the_job_trains_in_it(ws, tmp_path):
    """Top mode trains at 3x the learning rate: the page shows that rate, and a start in
    top mode runs `workbench train model.mode=top` (the command applies the same rate)."""
    from workbench.config import TOP_LEARNING_RATE_FACTOR, build_config
    from workbench.vocab import build_workspace_vocab

    build_workspace_vocab(ws)
    _, full = training.resolved_settings(ws, "10min", "tiny")
    _, top = training.resolved_settings(ws, "10min", "tiny", "top")
    assert top["model.mode"] == "top" and full["model.mode"] == "full"
    assert top["optim.learning_rate"] == pytest.approx(
        full["optim.learning_rate"] * TOP_LEARNING_RATE_FACTOR)
    started = training.start_training(ws, "tiny", "10min", {"optim.max_steps": 3000},
                                      tmp_path, mode="top")
    try:
        command = started.job.command
        assert "model.mode=top" in command
        assert not any(part.startswith("optim.learning_rate=") for part in command)
        overrides = [p for p in command[command.index("10min") + 1:] if "=" in p]
        config = build_config(preset="10min", overrides=["model.name=tiny", *overrides])
        assert config.optim.learning_rate == pytest.approx(top["optim.learning_rate"])
    finally:
        jobs.stop_job(ws, started.job.id, grace=5.0)
    # A rate the user typed wins over the mode's.
    started = training.start_training(ws, "tiny", "10min", {"optim.learning_rate": 2e-4},
                                      tmp_path, mode="top")
    try:
        assert "optim.learning_rate=0.0002" in started.job.command
    finally:
        jobs.stop_job(ws, started.job.id, grace=5.0)
