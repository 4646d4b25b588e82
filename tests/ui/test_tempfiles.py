"""Gradio's temporary files live under the served root, and what the page no longer needs
is removed from there (ui/tempfiles.py)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from tests.data_recipes.test_elan import recording
from tests.ui.conftest import RUN, free_port
from ui import tempfiles


def private_temp_dir(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """:func:`ui.tempfiles.use_private_temp_dir` for ``root``, undone when ``monkeypatch``
    is (so other tests find Gradio as they left it)."""
    monkeypatch.delenv(tempfiles.GRADIO_TEMP_VARIABLE, raising=False)
    for name in tempfiles.TEMP_DIR_MODULES:
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "DEFAULT_TEMP_DIR"):
            monkeypatch.setattr(module, "DEFAULT_TEMP_DIR", module.DEFAULT_TEMP_DIR)
    return tempfiles.use_private_temp_dir(root)


def start_server(root: Path, default: Path | None = None):
    """The page as `workbench ui` serves ``root`` (call :func:`private_temp_dir` first)."""
    from ui.app import ServeOptions, serve
    from ui.workspaces import WorkspaceRoot

    served = WorkspaceRoot.create(root, default)
    app = serve(served, ServeOptions(port=free_port()), prevent_thread_lock=True, quiet=True)
    return app, served


def unique_upload(folder: Path, token: str) -> list[Path]:
    """A table and a recording whose names and bytes are found nowhere else."""
    import numpy as np
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    clip = folder / f"{token}.wav"
    sf.write(clip, 0.1 * np.random.default_rng().standard_normal(16000), 16000)
    table = folder / f"{token}.csv"
    table.write_text(f"file_name,transcription\n{token}.wav,{token} allin\n", encoding="utf-8")
    return [table, clip]


SYSTEM_TEMP = Path(tempfile.gettempdir())


def copies_of(files: list[Path], token: str, skip: list[Path],
              under: Path = SYSTEM_TEMP) -> list[Path]:
    """Files under ``under`` (the system's temporary folder), but not in ``skip``, named
    with ``token`` or holding the bytes of one of ``files``."""
    contents = {p.stat().st_size: p.read_bytes() for p in files}
    skipped = {p.resolve() for p in skip}
    found = []
    for folder, dirs, names in os.walk(under):
        dirs[:] = [d for d in dirs if (Path(folder) / d).resolve() not in skipped]
        for name in names:
            path = Path(folder) / name
            try:
                size = path.lstat().st_size
                same = (size in contents and path.is_file()
                        and path.read_bytes() == contents[size])
            except OSError:
                continue
            if token in name or same:
                found.append(path)
    return sorted(found)


def new_token() -> str:
    return f"wb{uuid.uuid4().hex}"


@pytest.fixture
def private_temp(tmp_path, monkeypatch) -> Path:
    """Gradio's temporary folder under ``tmp_path/root``."""
    return private_temp_dir(tmp_path / "root", monkeypatch)


@pytest.fixture
def closing():
    """Apps to close after the test (before the temporary folders go)."""
    apps = []
    yield apps
    for app in apps:
        app.close()


def test_gradio_keeps_its_files_in_a_private_folder_under_the_root(private_temp, tmp_path):
    import gradio.route_utils
    import gradio.routes
    from gradio.utils import get_upload_folder

    from ui.workspaces import WorkspaceRoot

    root = tmp_path / "root"
    assert private_temp == root.resolve() / ".workbench-tmp" / "gradio"
    assert get_upload_folder() == str(private_temp)  # uploads and served copies
    assert gradio.route_utils.DEFAULT_TEMP_DIR == str(private_temp)  # media routes
    assert gradio.routes.DEFAULT_TEMP_DIR == str(private_temp)
    for folder in (private_temp, private_temp.parent):
        assert folder.stat().st_mode & 0o777 == 0o700
    (root / "quechua" / "manifests").mkdir(parents=True)
    assert WorkspaceRoot.create(root).names() == ["quechua"]  # the dot folder is no workspace


def test_a_restart_removes_what_a_killed_server_left_a_day_ago(private_temp, tmp_path):
    old, fresh = private_temp / "abc123", private_temp / "def456"
    for folder in (old, fresh):
        folder.mkdir()
        (folder / "interview.wav").write_bytes(b"RIFF")
    day_ago = time.time() - tempfiles.MAX_AGE_S - 60
    for path in (old / "interview.wav", old):
        os.utime(path, (day_ago, day_ago))
    assert tempfiles.use_private_temp_dir(tmp_path / "root") == private_temp
    assert not old.exists() and (fresh / "interview.wav").is_file()


def test_only_gradios_copies_of_an_upload_are_removed(private_temp, tmp_path):
    copy = private_temp / "0f1e2d" / "interview.wav"
    same_name = private_temp / "aa11" / "interview.wav"  # another upload: kept
    outside = tmp_path / "mine" / "interview.wav"
    for path in (copy, same_name, outside):
        path.parent.mkdir()
        path.write_bytes(b"RIFF")
    link = private_temp / "link.wav"
    link.symlink_to(outside)
    sneaky = f"{private_temp}/../../mine/interview.wav"
    removed = tempfiles.remove_gradio_copies(
        [str(copy), str(outside), str(link), sneaky, str(private_temp), None, ""])
    assert removed == 1
    assert not copy.exists() and not copy.parent.exists()  # its folder went with it
    assert outside.is_file() and same_name.is_file() and private_temp.is_dir()


def test_exports_are_staged_in_gradios_folder_and_old_ones_removed(private_temp):
    old = private_temp / f"{tempfiles.EXPORT_PREFIX}old"
    old.mkdir()
    (old / "run-model.zip").write_bytes(b"PK")
    day_ago = time.time() - tempfiles.MAX_AGE_S - 60
    for path in (old / "run-model.zip", old):
        os.utime(path, (day_ago, day_ago))
    earlier = tempfiles.new_export_folder()
    folder = tempfiles.new_export_folder()
    assert folder.parent == private_temp and folder.is_dir() and folder != earlier
    assert earlier.is_dir() and not old.exists()


def test_an_upload_leaves_no_copy_outside_the_workspace(private_temp, closing, tmp_path):
    from gradio_client import Client, handle_file

    app, root = start_server(tmp_path / "root")
    closing.append(app)
    client = Client(app.local_url, verbose=False, download_files=False)
    client.predict("quechua", api_name="/create_workspace")
    token = new_token()
    picked = unique_upload(tmp_path / "picked", token)
    result = client.predict([handle_file(p) for p in picked], api_name="/upload")
    assert result[0].startswith("**Upload ") and "2 file(s)" in result[0]
    assert result[-1] is None  # the upload box is emptied
    upload = root.open("quechua").root / "uploads" / result[1]["value"][0]
    assert sorted(p.name for p in upload.iterdir()) == sorted(p.name for p in picked)
    # Before the server stops (Gradio empties its folder then): only the workspace has them.
    assert copies_of(picked, token, skip=[tmp_path / "picked"]) == sorted(
        upload / p.name for p in picked)
    assert private_temp.is_relative_to(root.root.resolve())


def test_exports_are_served_from_the_private_folder(private_temp, closing, ws_with_run,
                                                    tmp_path):
    from gradio_client import Client, handle_file

    from workbench.transcribe import transcribe_files

    app, _ = start_server(tmp_path / "root", ws_with_run.root)
    closing.append(app)
    client = Client(app.local_url, verbose=False, download_files=False)
    exported = client.predict(RUN, api_name="/export_model")  # the file, as before
    staged = Path(exported.get("value", exported)["path"])
    assert staged.parent.parent == private_temp
    assert staged.parent.name.startswith(tempfiles.EXPORT_PREFIX)
    assert staged.name == f"{RUN}-model.zip"
    with zipfile.ZipFile(staged) as archive:
        assert f"{RUN}/model/model.safetensors" in archive.namelist()
    assert list(private_temp.rglob("*.zip")) == [staged]  # served as it is, not copied

    clip = recording(tmp_path / "try" / "hello.wav", seconds=1.0)
    expected = transcribe_files([clip], ws_with_run.runs_dir / RUN / "model",
                                progress=False)[0].text
    assert client.predict(RUN, handle_file(clip), api_name="/transcribe") == (expected, "")


def test_a_second_server_in_the_process_keeps_the_first_ones_folder(private_temp, closing,
                                                                    tmp_path):
    from gradio_client import Client, handle_file

    first, _ = start_server(tmp_path / "root")
    closing.append(first)
    assert tempfiles.use_private_temp_dir(tmp_path / "other") == private_temp
    closing.append(start_server(tmp_path / "other")[0])
    assert not (tmp_path / "other" / tempfiles.TEMP_FOLDER).exists()
    client = Client(first.local_url, verbose=False, download_files=False)
    client.predict("quechua", api_name="/create_workspace")
    picked = unique_upload(tmp_path / "picked", new_token())
    result = client.predict([handle_file(p) for p in picked], api_name="/upload")
    assert "2 file(s)" in result[0]  # the first server still takes its uploads
