"""Two browser sessions at once against one served page (two gradio clients), as two people
on one machine, or one person in two tabs, would use it.

Each session in its own workspace uploads, imports, checks and trains at the same time as the
other, and both runs finish. Two sessions on the same workspace train once: the second start
is refused with a message that names the run being trained. Every run is bounded by its steps;
the time limits below only stop a test that hangs.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from tests.conftest import make_subset
from tests.ui.test_app import (
    start_training,
    upload,
    wait_for_result,
    wait_for_status,
    zipped,
)
from ui import jobs
from workbench.run import find_run, list_runs, training_now
from workbench.workspace import Workspace

CLIPS = 24  # per workspace: 16 train, 4 dev, 4 test
SAFETY_S = 300  # a hung test fails after this; nothing waits for it otherwise


def prepare(client: Client, name: str, corpus) -> None:
    """Create workspace ``name`` in the client's session and take it to step 4."""
    client.predict(name, api_name="/create_workspace")
    upload_name = upload(client, corpus)
    summary = client.predict(selected=[upload_name], api_name="/import_data")[0]
    assert summary.startswith(f"Imported **{CLIPS} utterances**"), summary
    client.predict(20, api_name="/run_check")
    client.predict(api_name="/build_alphabet")


def session_flow(url: str, name: str, corpus) -> Client:
    """One session: its own workspace, prepared, and Start pressed."""
    client = Client(url, verbose=False)
    prepare(client, name, corpus)
    started = start_training(client, max_steps=6)
    assert started[1].startswith("**Starting**") or started[1].startswith("**Training**")
    return client


def only_job(ws: Workspace) -> str:
    """The id of the workspace's one training job (the page keeps it in the session)."""
    found = jobs.list_jobs(ws)
    assert len(found) == 1, found
    return found[0].id


def test_two_sessions_train_in_their_own_workspaces_at_once(server, demo_corpus, tmp_path):
    app, root = server
    names = ("alpha", "beta")
    corpora = {name: zipped(make_subset(demo_corpus, tmp_path / name, CLIPS),
                            tmp_path / f"{name}.zip") for name in names}
    with ThreadPoolExecutor(max_workers=2) as pool:  # both sessions at the same time
        futures = {name: pool.submit(session_flow, app.local_url, name, corpora[name])
                   for name in names}
        sessions = {name: future.result(timeout=SAFETY_S) for name, future in futures.items()}
    for name, client in sessions.items():
        ws = Workspace.at(root.root / name)
        job_id = only_job(ws)
        run = wait_for_result(ws)
        status = wait_for_status(client, run, "Finished")
        assert "6 / 6 steps" in status[2]
        assert [r.name for r in list_runs(ws)] == [run] and find_run(ws, run).has_model
        assert jobs.job_status(ws, job_id).job.run == run
        assert only_job(ws) == job_id
    alpha, beta = (Workspace.at(root.root / name) for name in names)
    assert not set(alpha.runs_dir.iterdir()) & set(beta.runs_dir.iterdir())


def test_the_same_workspace_from_two_sessions_trains_once(server, demo_corpus, tmp_path):
    app, root = server
    first, second = Client(app.local_url, verbose=False), Client(app.local_url, verbose=False)
    prepare(first, "shared", zipped(make_subset(demo_corpus, tmp_path / "c", CLIPS),
                                    tmp_path / "c.zip"))
    second.predict("shared", api_name="/open_workspace")
    ws = Workspace.at(root.root / "shared")
    start_training(first, max_steps=2000)  # stopped below, long before its end
    job_id = only_job(ws)
    run = wait_until(lambda: jobs.job_status(ws, job_id).job.run)
    try:
        assert wait_until(lambda: training_now(ws))["run"] == run
        with pytest.raises(AppError, match=f"Run {run} is being trained in workspace shared"):
            start_training(second, max_steps=6)
        with pytest.raises(AppError, match=f"Run {run} is still training"):
            second.predict(run, api_name="/resume_training")
        assert only_job(ws) == job_id
        assert [r.name for r in list_runs(ws)] == [run]
        # The second session sees the first one's training and may stop it.
        assert "**Training**" in second.predict(run, api_name="/training_status")[1]
        stopped = second.predict("", run, api_name="/stop_training")
        assert stopped[1].startswith("**Stopped**"), stopped[1]
        assert jobs.job_status(ws, job_id).state == jobs.STOPPED
    finally:
        if jobs.job_status(ws, job_id).active:
            jobs.stop_job(ws, job_id)
    assert training_now(ws) is None


def wait_until(condition, seconds: float = SAFETY_S):
    """The first true value of ``condition()`` (polled); fails after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")
