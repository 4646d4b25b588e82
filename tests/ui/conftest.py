"""Fixtures of the UI tests: a small prepared workspace, and one with a (random) model run."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.conftest import prepared_workspace, private_copy
from tests.workbench.ctc_fixtures import save_tiny_model
from workbench.config import build_config, save_config
from workbench.workspace import Workspace

os.environ.setdefault("OMP_NUM_THREADS", "1")


def free_port() -> int:
    """A TCP port nothing listens on now (for a test server)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The page as `workbench ui` serves it (no --auth), on a root of its own: (app, root)."""
    from ui.app import ServeOptions, serve
    from ui.workspaces import WorkspaceRoot

    root = WorkspaceRoot.create(tmp_path_factory.mktemp("served"))
    app = serve(root, ServeOptions(port=free_port()), prevent_thread_lock=True, quiet=True)
    yield app, root
    app.close()
RUN = "20240101-000000-tiny"


@pytest.fixture(scope="session")
def ui_prepared(demo_corpus, tmp_path_factory) -> Workspace:
    """24 clips of the demo corpus imported, once per session (copy it before changing it)."""
    return prepared_workspace(demo_corpus, tmp_path_factory.mktemp("ui"), 24)


@pytest.fixture
def ws(ui_prepared, tmp_path) -> Workspace:
    """A private copy of the prepared workspace."""
    return private_copy(ui_prepared, tmp_path / "ws")


@pytest.fixture
def ws_with_run(ws) -> Workspace:
    """The workspace with a vocabulary and a finished run holding a random tiny model."""
    from workbench.vocab import build_workspace_vocab

    build_workspace_vocab(ws)
    run_dir = ws.runs_dir / RUN
    save_tiny_model(run_dir / "model")
    save_config(build_config(preset="10min", overrides=["model.name=tiny"]),
                run_dir / "config.yaml")
    (run_dir / "result.json").write_text("{}", encoding="utf-8")
    return ws


def touch_tree(folder: Path) -> list[str]:
    """Every file under ``folder``, relative, sorted (for assertions)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
