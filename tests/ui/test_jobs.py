"""Training jobs run as separate processes that a reloaded page or a new UI finds again."""

import json
import os
import sys
import textwrap
import time

import pytest

from ui import jobs
from ui.steps.train import NOT_STARTED, training_view
from workbench.errors import WorkbenchError
from workbench.run import TrainingLock, training_now
from workbench.workspace import Workspace

# A stand-in for `workbench train`: makes a run folder as workbench.run.new_run does, writes
# metrics, then sleeps or finishes. "locked" holds the workspace's training lock, as the real
# command does, for a run whose name says it is older than the job.
FAKE_TRAIN = textwrap.dedent("""
    import json, sys, time
    from datetime import datetime, timezone
    from pathlib import Path
    runs = Path(sys.argv[1]) / "runs"
    run = runs / (datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S") + "-fake")
    if sys.argv[2] == "locked":
        from workbench.run import TrainingLock
        from workbench.workspace import Workspace
        run = runs / "20000101-000000-old"
        lock = TrainingLock.acquire(Workspace.at(Path(sys.argv[1])), run.name)
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("preset: 10min\\n")
    with open(run / "metrics.jsonl", "w") as out:
        out.write(json.dumps({"event": "start", "step": 0, "max_steps": 10}) + "\\n")
        out.write(json.dumps({"event": "train", "step": 1, "loss": 3.5}) + "\\n")
    print("started", flush=True)
    if sys.argv[2] in ("sleep", "locked"):
        time.sleep(60)
    elif sys.argv[2] == "fail":
        print("error: the model could not be loaded", file=sys.stderr)
        sys.exit(2)
    else:
        (run / "result.json").write_text("{}")
""")


def fake(ws: Workspace, mode: str) -> list[str]:
    return [sys.executable, "-c", FAKE_TRAIN, str(ws.root), mode]


def wait_for(predicate, seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.fixture
def ws(tmp_path) -> Workspace:
    ws = Workspace.at(tmp_path / "ws")
    ws.root.mkdir()
    return ws


def test_a_finished_job_claims_its_run(ws):
    job = jobs.start_job(ws, fake(ws, "finish"))
    status = wait_for(lambda: (s := jobs.job_status(ws, job.id)).state == jobs.FINISHED and s)
    assert status.job.run.endswith("-fake") and status.job.returncode == 0
    assert "started" in status.log_tail
    record = json.loads((ws.root / "jobs" / job.id / "job.json").read_text())
    assert record["pid"] == job.pid and record["command"] == fake(ws, "finish")
    assert record["run"] == status.job.run
    assert jobs.job_for_run(ws, status.job.run).job.id == job.id
    assert jobs.active_job(ws) is None


def test_a_failed_job_says_why(ws):
    job = jobs.start_job(ws, fake(ws, "fail"))
    status = wait_for(lambda: (s := jobs.job_status(ws, job.id)).state == jobs.FAILED and s)
    assert status.job.returncode == 2
    assert "could not be loaded" in status.log_tail


def test_one_job_at_a_time_stop_and_find_it_again(ws):
    job = jobs.start_job(ws, fake(ws, "sleep"))
    wait_for(lambda: jobs.job_status(ws, job.id).state == jobs.RUNNING)
    run = jobs.job_status(ws, job.id).job.run
    with pytest.raises(WorkbenchError, match=f"Run {run} is being trained in workspace ws "
                       f"\\(job {job.id}\\)"):
        jobs.start_job(ws, fake(ws, "sleep"))
    assert [j.id for j in jobs.list_jobs(ws)] == [job.id]
    # A reloaded page (or a restarted UI) knows nothing but the workspace.
    found = jobs.active_job(ws)
    assert found is not None and found.job.id == job.id and found.active
    stopped = jobs.stop_job(ws, job.id, grace=5.0)
    assert stopped.state == jobs.STOPPED and not stopped.active
    view = training_view(ws, None, job.id)  # stopped before its first checkpoint
    assert view.state == NOT_STARTED and "cannot be resumed" in view.status
    assert jobs.active_job(ws) is None
    with pytest.raises(WorkbenchError, match="not running"):
        jobs.stop_job(ws, job.id)


def test_a_recycled_pid_is_not_mistaken_for_the_job(ws):
    """After a restart the job is not our child; a live pid running something else is not it."""
    record = jobs.Job("20240101-000000", os.getpid(), ["python", "-m", "workbench.cli", "train"],
                      time.time())
    jobs._save(ws, record)
    assert jobs.job_status(ws, record.id).state == jobs.FAILED
    assert jobs.active_job(ws) is None


def test_commands_are_the_cli(ws):
    command = jobs.train_command(ws, model="tiny", preset="10min", overrides=["run.threads=1"])
    assert command[1:4] == ["-m", "workbench.cli", "train"]
    assert command[-1] == "run.threads=1" and "--model" in command
    assert jobs.resume_command(ws, "R")[-3:] == ["--resume", "--run", "R"]


def test_training_on_the_command_line_refuses_a_start_naming_its_run(ws):
    cli = TrainingLock.acquire(ws, "20240101-000000-tiny")  # `workbench train` in a terminal
    try:
        with pytest.raises(WorkbenchError, match="Run 20240101-000000-tiny is being trained in "
                           "workspace ws .*One training at a time"):
            jobs.start_job(ws, fake(ws, "finish"))
        assert jobs.list_jobs(ws) == [] and not (ws.runs_dir / "20240101-000000-tiny").exists()
    finally:
        cli.release()
    job = jobs.start_job(ws, fake(ws, "finish"))  # once it is done, a start goes through
    assert wait_for(lambda: jobs.job_status(ws, job.id).state == jobs.FINISHED)


def test_a_job_claims_the_run_it_holds_the_training_lock_for(ws):
    """Not the time in a run's name: the run the job's process trains."""
    job = jobs.start_job(ws, fake(ws, "locked"))
    status = wait_for(lambda: (s := jobs.job_status(ws, job.id)).state == jobs.RUNNING and s)
    assert status.job.run == "20000101-000000-old"
    assert training_now(ws)["pid"] == job.pid
    with pytest.raises(WorkbenchError, match="Run 20000101-000000-old is being trained"):
        jobs.start_job(ws, fake(ws, "finish"))
    assert jobs.stop_job(ws, job.id, grace=5.0).state == jobs.STOPPED
    assert training_now(ws) is None
