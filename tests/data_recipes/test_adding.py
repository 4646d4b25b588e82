"""Adding a later source to a prepared workspace: new utterances to train, nothing else moves."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from data_recipes.adding import add_source
from data_recipes.table import read_audiofolder
from tests.conftest import prepared_workspace
from tests.workbench.test_audiofolder import flagged, recording, transcript
from workbench import fsio
from workbench.audiofolder import write_audiofolder
from workbench.errors import WorkbenchError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def ws(demo_corpus, tmp_path):
    return prepared_workspace(demo_corpus, tmp_path, 12)


@pytest.fixture
def clips(tmp_path) -> Path:
    audio = recording(tmp_path / "talk.wav")
    return write_audiofolder(transcript(audio), tmp_path / "aligned", flagged=flagged(),
                             keep_flagged=True)


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".lock" not in p.name}


def test_new_utterances_go_to_train_and_the_rest_stays(ws, clips):
    before = ws.read_all()
    result = add_source(read_audiofolder(clips), ws, progress=False)
    after = ws.read_all()
    assert after["dev"] == before["dev"] and after["test"] == before["test"]
    assert after["train"][:len(before["train"])] == before["train"]
    assert sorted(u.text for u in result.utterances) == sorted(["kami tomu", "ñuqa wasiy", "अब घर"])
    assert all(u.split == "train" for u in result.utterances)
    assert all(ws.audio_path(u).is_file() for split in after.values() for u in split)
    report = (ws.import_report_path).read_text(encoding="utf-8")
    assert "Added 3 utterances" in report
    again = add_source(read_audiofolder(clips), ws, progress=False)  # the same ids again
    ids = [u.id for split in ws.read_all().values() for u in split]
    assert len(ids) == len(set(ids)) and {u.id for u in again.utterances}.isdisjoint(
        u.id for u in result.utterances)


def test_adding_needs_prepared_data_and_a_known_split(ws, tmp_path, clips):
    from workbench.workspace import Workspace

    with pytest.raises(WorkbenchError, match="no prepared data"):
        add_source(read_audiofolder(clips), Workspace.at(tmp_path / "empty"), progress=False)
    with pytest.raises(WorkbenchError, match="Unknown split 'training'"):
        add_source(read_audiofolder(clips), ws, split="training", progress=False)


def test_a_full_disk_while_adding_leaves_the_workspace_as_it_was(ws, clips, monkeypatch):
    before = snapshot(ws.root)
    monkeypatch.setenv(fsio.FAULTS_ENV, "import.clip@2=enospc")
    fsio.reset_faults()
    with pytest.raises(fsio.DiskFullError):
        add_source(read_audiofolder(clips), ws, progress=False)
    assert snapshot(ws.root) == before


@pytest.mark.parametrize("fault", ["import.commit.0", "import.commit.1", "import.committed"])
def test_a_kill_while_adding_leaves_the_old_data_or_the_new(ws, clips, fault):
    before = snapshot(ws.root)
    script = (f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
              "from pathlib import Path\n"
              "from data_recipes.adding import add_source\n"
              "from data_recipes.table import read_audiofolder\n"
              "from workbench.workspace import Workspace\n"
              f"add_source(read_audiofolder(Path({str(clips)!r})), "
              f"Workspace.at(Path({str(ws.root)!r})), progress=False)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          env={**os.environ, fsio.FAULTS_ENV: f"{fault}=kill"}, timeout=300)
    assert done.returncode == -9, done.stderr[-2000:]
    ws.recover()  # what the next command does
    train = ws.read_split("train")
    if fault == "import.committed":  # past the commit point: the new data, whole
        assert sum(1 for u in train if u.speaker == "talk") == 3
        assert all(ws.audio_path(u).is_file() for u in train)
    else:
        assert snapshot(ws.root) == before


def test_prepare_add_on_the_command_line(ws, clips, capsys):
    import json

    from workbench.cli import main

    before = ws.read_all()
    assert main(["prepare", str(clips), "-w", str(ws.root), "--add", "--json", "-q"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["utterances"] == 3 and summary["splits"]["train"]["utterances"] == 3
    after = ws.read_all()
    assert after["test"] == before["test"] and len(after["train"]) == len(before["train"]) + 3
    assert ws.read_settings()["sources"][-1]["added_to"] == "train"
