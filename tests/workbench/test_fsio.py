"""Durable writes: atomic files and folders, staged replacements that roll back, locks."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from workbench import fsio
from workbench.fsio import (
    FAULTS_ENV,
    DiskFullError,
    HeldLock,
    Replacement,
    atomic_output,
    existing_dir,
    lock_holder,
    recover,
    recover_dir,
    replace_dir,
    staged_dir,
    write_json_atomic,
)
from workbench.workspace import new_stamped_dir


@pytest.fixture
def faults(monkeypatch):
    def arm(spec: str) -> None:
        monkeypatch.setenv(FAULTS_ENV, spec)
        fsio.reset_faults()
    return arm


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.endswith(".lock")}


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "report.json"
    write_json_atomic(path, {"v": 1})
    with pytest.raises(RuntimeError), atomic_output(path) as out:
        out.write('{"v": 2')  # half a document, then the writer dies
        raise RuntimeError("killed")
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_full_disk_while_writing_names_the_disk(tmp_path, faults):
    path = tmp_path / "vocab.json"
    write_json_atomic(path, ["old"])
    faults("atomic.before_fsync=enospc")
    with pytest.raises(DiskFullError) as caught:
        write_json_atomic(path, ["new"])
    message = str(caught.value)
    assert f"The disk holding {path} is full" in message and "free" in message
    assert json.loads(path.read_text()) == ["old"] and len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize("exchange_works", [True, False])
@pytest.mark.parametrize("fault", ["staged", "swapped", "aside"])
def test_a_folder_replacement_cut_short_leaves_a_complete_folder(tmp_path, faults, monkeypatch,
                                                                  exchange_works, fault):
    if not exchange_works:
        monkeypatch.setattr(fsio, "exchange", lambda a, b: False)
    final = tmp_path / "model"
    final.mkdir()
    (final / "weights").write_text("old")
    staging = tmp_path / ".model.tmp"
    staging.mkdir()
    (staging / "weights").write_text("new")
    faults(f"replace_dir.{fault}=error")
    try:
        replace_dir(staging, final)
        reached = False
    except RuntimeError:
        reached = True
    if reached:  # cut short exactly there: a reader still finds one complete folder
        assert (existing_dir(final) / "weights").read_text() in ("old", "new")
        recover_dir(final)
        assert (final / "weights").read_text() in ("old", "new")
    else:  # this path has no such window (exchange has no 'aside', rename no 'swapped')
        assert (final / "weights").read_text() == "new"
    assert fault != "staged" or reached


def test_replace_dir_swaps_atomically_and_cleans_up(tmp_path):
    final = tmp_path / "ckpt"
    with staged_dir(final, what="saving") as staging:
        (staging / "a").write_text("1")
    with staged_dir(final, what="saving") as staging:
        (staging / "a").write_text("2")
    assert (final / "a").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_staged_dir_refuses_up_front_when_the_disk_is_too_small(tmp_path):
    with pytest.raises(DiskFullError, match="needs about"), staged_dir(
            tmp_path / "model", what="saving the model", needed=1 << 62):
        raise AssertionError("never reached: nothing is written")
    assert list(tmp_path.iterdir()) == []


def make_folder(root: Path, version: str) -> None:
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "audio" / "a.wav").write_text(f"audio {version}")
    (root / "manifests").mkdir(exist_ok=True)
    (root / "manifests" / "train.jsonl").write_text(f"manifest {version}")
    (root / "import.json").write_text(f"report {version}")


@pytest.mark.parametrize("step", range(4))
def test_a_replacement_cut_at_any_step_rolls_back_to_exactly_the_old(tmp_path, faults, step):
    make_folder(tmp_path, "old")
    (tmp_path / "audit.json").write_text("audit old")
    before = tree(tmp_path)
    replacement = Replacement(tmp_path, "import")
    make_folder(replacement.begin(), "new")
    faults(f"import.commit.{step}=error")
    with pytest.raises(RuntimeError):
        replacement.commit(["audio", "manifests", "import.json"], remove=["audit.json"])
    assert recover(tmp_path, "import")
    assert tree(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [
        ".workbench.lock"]


def test_a_replacement_past_its_commit_point_keeps_the_new(tmp_path, faults):
    make_folder(tmp_path, "old")
    replacement = Replacement(tmp_path, "import")
    make_folder(replacement.begin(), "new")
    (replacement.staging / "workbench.yaml").write_text("settings new")
    faults("import.committed=error")
    with pytest.raises(RuntimeError):
        replacement.commit(["audio", "manifests", "import.json", "workbench.yaml"])
    assert not recover(tmp_path, "import")
    assert (tmp_path / "manifests" / "train.jsonl").read_text() == "manifest new"
    assert (tmp_path / "workbench.yaml").read_text() == "settings new"
    assert not (tmp_path / ".import.done").exists()


def test_a_lock_is_freed_when_its_holder_is_killed(tmp_path):
    path = tmp_path / ".training.lock"
    script = ("import sys, time; from pathlib import Path; from workbench.fsio import HeldLock;"
              f"HeldLock.try_acquire(Path({str(path)!r}), {{'run': 'r1'}}); print('held', "
              "flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout.readline().strip() == "held"
        assert lock_holder(path) == {"run": "r1"}
        assert HeldLock.try_acquire(path, {"run": "r2"}) is None
    finally:
        holder.kill()
        holder.wait()
    assert lock_holder(path) is None
    mine = HeldLock.try_acquire(path, {"run": "r2"})
    assert mine is not None and lock_holder(path) == {"run": "r2"}
    mine.release()


def test_stamped_folders_are_claimed_once_even_at_the_same_moment(tmp_path):
    made: list[Path] = []
    threads = [threading.Thread(target=lambda: made.append(new_stamped_dir(tmp_path, "x")))
               for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == len(set(made)) == 16 and all(p.is_dir() for p in made)


def test_fault_points_count_hits(monkeypatch):
    monkeypatch.setenv(FAULTS_ENV, "here@3=enospc")
    fsio.reset_faults()
    fsio.fault_point("here")
    fsio.fault_point("here")
    with pytest.raises(OSError) as caught:
        fsio.fault_point("here")
    assert caught.value.errno == errno.ENOSPC
    fsio.fault_point("here")  # only the third hit
    monkeypatch.delenv(FAULTS_ENV)
    fsio.fault_point("here")
    assert os.environ.get(FAULTS_ENV) is None
