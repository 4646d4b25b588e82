"""Faults survived: kills at exact moments (fault points, not luck) and full disks.

- A training run killed with SIGKILL inside a checkpoint save, inside the best-model export,
  between steps and while writing its result resumes to the end; after every kill ``model/``
  loads in ``pipeline()``, and the final weights are those of a run never interrupted.
- ``prepare`` killed while decoding or in the middle of swapping the new data in leaves the
  workspace exactly as it was, and it trains as before.
- A full disk stops prepare, training and export with a message that names the disk and the
  space needed; nothing half-written remains; with space freed, the work goes on.

The full-disk tests use a small tmpfs mounted for the test (real ENOSPC from the kernel).
Where mounting is not allowed (not root), the same tests inject ENOSPC at the same writes
through fault points instead, and say so in their output.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import make_subset, prepared_workspace, private_copy
from workbench.config import build_config
from workbench.fsio import FAULTS_ENV, DiskFullError, reset_faults
from workbench.manifest import write_manifest
from workbench.run import Run, find_run, training_now
from workbench.train import resume_run, train
from workbench.vocab import vocab_is_stale
from workbench.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
SETTINGS = ["data.max_batch_seconds=12", "run.log_every=1", "run.threads=1",
            "run.eval_every=2", "model.mask_time_prob=0.2", "model.hidden_dropout=0.1",
            "model.layerdrop=0.2"]
STEPS = 10
# Each kill lands in one window; the run is resumed after each (hit counts are per process).
KILLS = [
    "checkpoint.weights@2",   # half-way through writing the second checkpoint
    "export.swapped@1",       # new model swapped in, old one not yet removed
    "checkpoint.swapped@1",   # new checkpoint swapped in, old one not yet removed
    "export.weights@1",       # half-way through writing model/
    "checkpoint.staged@1",    # checkpoint complete under its staging name, not yet swapped
    "train.step@1",           # between two optimiser steps
    "export.staged@1",        # model complete under its staging name
    "atomic.before_fsync@2",  # writing result.json at the very end (config.yaml is the 1st)
]


def cli(*args: str, faults: str = "", check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", FAULTS_ENV: faults}
    done = subprocess.run([sys.executable, "-m", "workbench.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (lock files aside) with its content hash."""
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(".lock")}


def leftovers(root: Path) -> list[str]:
    """Staging or set-aside copies a write left behind."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.name.endswith((".tmp", ".old", ".staging", ".journal", ".done")))


@pytest.fixture(scope="module")
def prepared(demo_corpus, tmp_path_factory) -> Workspace:
    return prepared_workspace(demo_corpus, tmp_path_factory.mktemp("faults"), 36, vocab=True)


# --------------------------------------------------------------------------- training


@pytest.fixture
def no_dev(prepared, tmp_path) -> Workspace:
    """Without a dev set every evaluation exports the latest model: exports happen often."""
    ws = private_copy(prepared, tmp_path / "ws")
    write_manifest(ws.manifest_path("dev"), [])
    assert not vocab_is_stale(ws)
    return ws


def test_training_killed_at_every_window_resumes_to_the_uninterrupted_weights(no_dev,
                                                                                tmp_path):
    from transformers import pipeline

    reference_ws = private_copy(no_dev, tmp_path / "reference")
    config = build_config(preset="10min", overrides=["model.name=tiny", *SETTINGS,
                                                     f"optim.max_steps={STEPS}"])
    expected = load_file(Run(train(reference_ws, config, progress=False).run_dir)
                         .last_checkpoint / "model.safetensors")
    clip = str(no_dev.audio_path(no_dev.read_split("test")[0]))

    start = ["train", "-w", str(no_dev.root), "--quiet", "--model", "tiny", "--max-steps",
             str(STEPS), *SETTINGS]
    resume = ["train", "-w", str(no_dev.root), "--quiet", "--resume"]
    for number, fault in enumerate(KILLS):
        done = cli(*(resume if number else start), faults=f"{fault}=kill", check=False)
        assert done.returncode == -9, f"{fault} was never reached: {done.stderr[-2000:]}"
        run = find_run(no_dev)
        assert training_now(no_dev) is None  # the kernel freed the lock of the killed process
        assert run.state(no_dev) == "stopped", fault
        if run.has_model:  # whatever moment the kill hit, model/ is a complete model
            assert isinstance(pipeline("automatic-speech-recognition",
                                       model=str(run.model_dir))(clip)["text"], str)
    cli(*resume)
    run = find_run(no_dev)
    assert run.read_result()["steps"] == STEPS and not leftovers(run.root)
    final = load_file(run.last_checkpoint / "model.safetensors")
    for key, value in expected.items():
        torch.testing.assert_close(final[key], value, rtol=0, atol=1e-6, msg=key)
    steps = [r["step"] for r in run.read_metrics() if r["event"] == "train"]
    assert steps == list(range(1, STEPS + 1))  # lines after each checkpoint were cut
    # One start line per checkpoint resumed from (a start cut short was cut with its steps).
    assert [r["step"] for r in run.read_metrics() if r["event"] == "start"] == [0, 2, 4, 10]


def test_a_second_training_is_refused_while_one_runs_and_allowed_once_it_is_killed(no_dev):
    command = [sys.executable, "-m", "workbench.cli", "train", "-w", str(no_dev.root),
               "--quiet", "--model", "tiny", "--max-steps", "10000", *SETTINGS]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        holder, deadline = None, time.monotonic() + 300
        while holder is None or not holder.get("run"):
            assert process.poll() is None, "the training process ended early"
            assert time.monotonic() < deadline, "the training process never started"
            time.sleep(0.2)
            holder = training_now(no_dev)
        busy = holder["run"]
        done = cli("train", "-w", str(no_dev.root), "--quiet", "--model", "tiny",
                   "--max-steps", "2", *SETTINGS, check=False)
        assert done.returncode == 2
        assert f"Run {busy} is being trained" in done.stderr
        assert len(list(no_dev.runs_dir.glob("2*"))) == 1  # the refused start made no run
    finally:
        process.kill()
        process.wait()
    assert training_now(no_dev) is None
    assert Run(no_dev.runs_dir / busy).state(no_dev) in ("stopped", "not started")


# --------------------------------------------------------------------------- prepare


@pytest.mark.parametrize("fault", ["import.clip@5", "import.commit.0", "import.commit.1",
                                   "import.commit.2", "import.commit.3"])
def test_prepare_killed_leaves_the_workspace_as_it_was(prepared, demo_corpus, tmp_path, fault):
    ws = private_copy(prepared, tmp_path / "ws")
    before = snapshot(ws.root)
    other = make_subset(demo_corpus, tmp_path / "other", 20)
    done = cli("prepare", str(other), "-w", str(ws.root), "--quiet", "--seed", "3",
               faults=f"{fault}=kill", check=False)
    assert done.returncode == -9, done.stderr[-2000:]
    ws.read_split("train")  # any reader first puts back what a cut-short import moved
    assert snapshot(ws.root) == before
    assert not leftovers(ws.root)
    assert not vocab_is_stale(ws)
    result = train(ws, build_config(preset="10min", overrides=["model.name=tiny", *SETTINGS,
                                                               "optim.max_steps=2"]),
                   progress=False)
    assert result.steps == 2


def test_prepare_killed_after_its_commit_point_has_the_new_data_whole(prepared, demo_corpus,
                                                                      tmp_path):
    ws = private_copy(prepared, tmp_path / "ws")
    other = make_subset(demo_corpus, tmp_path / "other", 20)
    cli("prepare", str(other), "-w", str(ws.root), "--quiet", faults="import.committed=kill",
        check=False)
    clean = Workspace.at(tmp_path / "clean")
    cli("prepare", str(other), "-w", str(clean.root), "--quiet")
    ws.read_split("train")
    assert not leftovers(ws.root)
    ours = {k: v for k, v in snapshot(ws.root).items() if k.startswith(("audio", "manifests"))}
    theirs = {k: v for k, v in snapshot(clean.root).items()
              if k.startswith(("audio", "manifests"))}
    assert ours == theirs and not (ws.root / "audit.json").exists()


# --------------------------------------------------------------------------- full disk


class SmallDisk:
    """A small file system for one test: a tmpfs where allowed, else injected ENOSPC."""

    def __init__(self, folder: Path, size_mb: int):
        self.folder = folder
        folder.mkdir(parents=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs",
                               str(folder)], capture_output=True, text=True)
        self.real = done.returncode == 0
        if not self.real:
            print(f"tmpfs not mountable here ({done.stderr.strip()}): ENOSPC is injected")

    def fill(self, leave_bytes: int) -> None:
        """Take all but ``leave_bytes`` of the free space (tmpfs), or arm the fault points."""
        if self.real:
            free = shutil.disk_usage(self.folder).free
            with open(self.folder / "filler", "wb") as out:
                os.posix_fallocate(out.fileno(), 0, max(free - leave_bytes, 1))
        else:
            os.environ[FAULTS_ENV] = ("import.clip@3=enospc,checkpoint.weights@1=enospc,"
                                      "export.weights@1=enospc,onnx.staged@1=enospc")
            reset_faults()

    def free(self) -> None:
        (self.folder / "filler").unlink(missing_ok=True)
        os.environ.pop(FAULTS_ENV, None)

    def close(self) -> None:
        self.free()
        if self.real:
            gc.collect()  # loaded models may still map files on it
            if subprocess.run(["umount", str(self.folder)], capture_output=True).returncode:
                subprocess.run(["umount", "--lazy", str(self.folder)], check=True)


@pytest.fixture
def disk(tmp_path):
    small = SmallDisk(tmp_path / "disk", 48)
    yield small
    small.close()


def test_prepare_on_a_full_disk_stops_cleanly_and_works_once_space_is_freed(
        prepared, demo_corpus, disk, tmp_path):
    ws = Workspace.at(disk.folder / "ws")
    shutil.copytree(prepared.root, ws.root)
    before = snapshot(ws.root)
    other = make_subset(demo_corpus, tmp_path / "other", 24)
    disk.fill(leave_bytes=200_000)
    from data_recipes import prepare_sources

    with pytest.raises(DiskFullError) as caught:
        prepare_sources([other], ws, progress=False)
    message = str(caught.value)
    assert "is full" in message and "import" in message
    if disk.real:
        assert str(disk.folder) in message and "needs about" in message
    assert snapshot(ws.root) == before and not leftovers(ws.root)
    disk.free()
    result = prepare_sources([other], ws, progress=False)
    assert len(result.utterances) == 24
    assert sum(len(us) for us in ws.read_all().values()) == 24  # the new data replaced the old


def test_training_on_a_full_disk_stops_cleanly_and_resumes_once_space_is_freed(
        prepared, disk):
    ws = Workspace.at(disk.folder / "ws")
    shutil.copytree(prepared.root, ws.root)
    config = build_config(preset="10min", overrides=["model.name=tiny", *SETTINGS,
                                                     "optim.max_steps=8"])

    def fill_after_the_first_checkpoint(event):
        if event["event"] == "train" and event["step"] == 3:
            disk.fill(leave_bytes=64_000)

    with pytest.raises(DiskFullError, match="resume the run") as caught:
        train(ws, config, progress=False, on_event=fill_after_the_first_checkpoint)
    if disk.real:
        assert str(disk.folder) in str(caught.value) and "needs about" in str(caught.value)
    run = find_run(ws)
    assert not leftovers(run.root)
    assert json.loads((run.last_checkpoint / "state.json").read_text())["step"] == 2
    disk.free()
    assert resume_run(ws, progress=False).steps == 8
    assert run.finished and not leftovers(run.root)


def test_export_on_a_full_disk_stops_cleanly_and_works_once_space_is_freed(prepared, disk):
    from workbench.onnx_export import export_onnx

    ws = Workspace.at(disk.folder / "ws")
    shutil.copytree(prepared.root, ws.root)
    run = Run(train(ws, build_config(preset="10min", overrides=[
        "model.name=tiny", *SETTINGS, "optim.max_steps=2"]), progress=False).run_dir)
    disk.fill(leave_bytes=64_000)
    with pytest.raises(DiskFullError, match="ONNX export"):
        export_onnx(run.root)
    assert not run.onnx_dir().exists() and not leftovers(run.root)
    disk.free()
    assert export_onnx(run.root).onnx_path.is_file()

