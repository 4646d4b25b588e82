"""Shared fixtures: small corpora cut from the bundled demo corpus (no apt package needed).

Also the policy for tests that run system programs (ffmpeg, espeak-ng): mark them
``@pytest.mark.needs_tool("ffmpeg")``. Without the program such a test is skipped on a
developer's machine, with the reason and the fix, and fails in CI (where ``CI`` is set, as
tests/ui/test_browser.py does for chromium), so CI never skips it unnoticed.
`bash scripts/setup.sh --test` installs every program the tests use.
"""

from __future__ import annotations

import os

# Tests never touch the network: set before anything imports huggingface_hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import csv  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import NoReturn  # noqa: E402

import pytest  # noqa: E402

from data_recipes.synthetic import DEMO_ARCHIVE, DEMO_NAME, unpack_corpus  # noqa: E402

# Debian package of each system program the tests run (what setup.sh --test installs).
TOOL_PACKAGES = {"ffmpeg": "ffmpeg", "ffprobe": "ffmpeg", "espeak-ng": "espeak-ng"}


def in_ci() -> bool:
    """Whether the tests run in CI (the ``CI`` variable is set, whatever its value)."""
    return "CI" in os.environ


def skip_or_fail(message: str) -> NoReturn:
    """Skip with ``message`` on a developer's machine; fail with it in CI."""
    if in_ci():
        pytest.fail(f"{message} (CI is set, so this fails instead of being skipped)",
                    pytrace=False)
    pytest.skip(message)


def require_tools(*names: str) -> None:
    """Skip (developer's machine) or fail (CI) unless every program in ``names`` is on PATH."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        packages = " ".join(sorted({TOOL_PACKAGES.get(name, name) for name in missing}))
        skip_or_fail(f"This test runs {' and '.join(missing)}: not found on PATH. To fix, run "
                     f"`bash scripts/setup.sh --test` as root (or `apt-get install {packages}`).")


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``needs_tool`` marker."""
    config.addinivalue_line(
        "markers", "needs_tool(*names): runs these system programs; skipped without them on a "
        "developer's machine, failed without them when CI is set")


@pytest.hookimpl(tryfirst=True)  # before fixtures are set up (they may run the program)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Apply ``@pytest.mark.needs_tool(...)``: see :func:`require_tools`."""
    for mark in item.iter_markers(name="needs_tool"):
        require_tools(*mark.args)


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory) -> Path:
    """The bundled Quechua demo corpus, unpacked once per test session (read-only use)."""
    root = tmp_path_factory.mktemp("demo")
    unpack_corpus(DEMO_ARCHIVE, root)
    return root / DEMO_NAME


def make_subset(demo_corpus: Path, dest: Path, count: int) -> Path:
    """An audiofolder with the first ``count`` clips of the demo corpus (copied)."""
    with open(demo_corpus / "metadata.csv", encoding="utf-8") as table:
        rows = list(csv.DictReader(table))[:count]
    (dest / "clips").mkdir(parents=True)
    for row in rows:
        shutil.copy(demo_corpus / row["file_name"], dest / row["file_name"])
    with open(dest / "metadata.csv", "w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=["file_name", "transcription", "speaker"])
        writer.writeheader()
        writer.writerows({k: r[k] for k in ("file_name", "transcription", "speaker")}
                         for r in rows)
    return dest


@pytest.fixture
def small_corpus(demo_corpus, tmp_path) -> Path:
    """48 clips (about 2.5 minutes, every voice) in audiofolder layout."""
    return make_subset(demo_corpus, tmp_path / "corpus", 48)


def prepared_workspace(demo_corpus: Path, root: Path, count: int, *, vocab: bool = False):
    """A workspace with the first ``count`` demo clips imported (and its vocabulary)."""
    from data_recipes import prepare_sources
    from workbench.vocab import build_workspace_vocab
    from workbench.workspace import Workspace

    ws = Workspace.at(root / "ws")
    prepare_sources([make_subset(demo_corpus, root / "corpus", count)], ws, progress=False)
    if vocab:
        build_workspace_vocab(ws)
    return ws


def private_copy(ws, dest: Path):
    """A copy of a shared workspace, so one test's runs never show up in another."""
    from workbench.workspace import Workspace

    copy = Workspace.at(dest)
    shutil.copytree(ws.root, copy.root)
    return copy


def run_workbench(ws, command: str, *extra: str, ranks: int = 1, timeout: int = 600) -> None:
    """`workbench COMMAND -w WS --quiet --json EXTRA...` in a fresh process (under torchrun
    with ``ranks`` CPU processes when more than one), one thread each; asserts it succeeded."""
    import subprocess
    import sys

    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                 f"--nproc_per_node={ranks}"] if ranks > 1 else [sys.executable])
    argv = [*launcher, "-m", "workbench.cli", command, "-w", str(ws.root), "--quiet", "--json",
            *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(argv, cwd=Path(__file__).resolve().parents[1], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
