"""The on-disk project a user works in: one folder per language project.

Layout::

    <workspace>/
      workbench.yaml            what the user chose: sources, split, seed
      orthography.yaml          the orthography profile (optional; defaults apply)
      audio/                    decoded 16 kHz mono clips
      manifests/{train,dev,test}.jsonl
      import.json               what the last import set aside (rows without audio, ...)
      audit.json                the last audit
      vocab.json                the character vocabulary (built from train only)
      vocab_report.json         character counts, rare and unseen characters
      runs/<run-id>/            config.yaml, checkpoints/, metrics.jsonl, model/, report.json
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml

from workbench.errors import WorkbenchError
from workbench.fsio import HeldLock, Replacement, lock_holder, recover, write_text_atomic
from workbench.manifest import SPLITS, Utterance, read_manifest

IMPORT = "import"  # name of the staged replacement an import makes (fsio.Replacement)
IMPORT_LOCK = ".import.lock"
AUDIT_FILE = "audit.json"
# What an import replaces, all together: the clips, the manifests, its report, the settings.
IMPORTED = ("audio", "manifests", "import.json", "workbench.yaml")
STAMP = "%Y%m%d-%H%M%S"  # UTC start time that names runs, jobs and uploads (sortable)


def new_stamped_dir(parent: Path, tail: str = "") -> Path:
    """Create ``parent/<UTC stamp>[-tail]``, with ``-2``, ``-3``... when the name is taken.

    The folder is claimed by ``mkdir`` itself, so two processes never get the same one.
    """
    base = datetime.now(timezone.utc).strftime(STAMP) + (f"-{tail}" if tail else "")
    parent.mkdir(parents=True, exist_ok=True)
    for suffix in itertools.count(1):
        folder = parent / (base if suffix == 1 else f"{base}-{suffix}")
        try:
            folder.mkdir()  # atomic: of two callers in the same second, one gets -2
        except FileExistsError:
            continue
        return folder
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Workspace:
    """Paths of one workspace folder; creating the object touches nothing on disk."""

    root: Path

    @classmethod
    def at(cls, path: str | Path) -> Workspace:
        """Workspace rooted at ``path`` (resolved to an absolute path)."""
        return cls(Path(path).expanduser().resolve())

    @property
    def config_path(self) -> Path:
        return self.root / "workbench.yaml"

    @property
    def profile_path(self) -> Path:
        return self.root / "orthography.yaml"

    @property
    def audio_dir(self) -> Path:
        return self.root / "audio"

    @property
    def manifests_dir(self) -> Path:
        return self.root / "manifests"

    @property
    def import_report_path(self) -> Path:
        return self.root / "import.json"

    @property
    def audit_path(self) -> Path:
        return self.root / AUDIT_FILE

    @property
    def vocab_path(self) -> Path:
        return self.root / "vocab.json"

    @property
    def vocab_report_path(self) -> Path:
        return self.root / "vocab_report.json"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def manifest_path(self, split: str) -> Path:
        """JSONL manifest of one split."""
        if split not in SPLITS:
            raise WorkbenchError(f"Unknown split {split!r}; choose one of {', '.join(SPLITS)}.")
        return self.manifests_dir / f"{split}.jsonl"

    def read_split(self, split: str) -> list[Utterance]:
        """Utterances of one split (empty if the split has none)."""
        self.recover()
        return read_manifest(self.manifest_path(split))

    def recover(self) -> None:
        """Undo an import a crash cut short (see :meth:`importing`), and clear what it left.

        A commit cut short is rolled back; the staging folder of an import that died (its
        lock is free) is removed.
        """
        recover(self.root, IMPORT)
        staging = Replacement(self.root, IMPORT).staging
        if staging.exists() and lock_holder(self.root / IMPORT_LOCK) is None:
            shutil.rmtree(staging, ignore_errors=True)

    @contextmanager
    def importing(self, settings: dict | None = None) -> Iterator[Workspace]:
        """A staging workspace for a new import; on success its data replaces this one's.

        The new audio cache, manifests and import report (and ``settings`` merged into
        workbench.yaml) are written under a staging folder and swapped in together; the old
        audit goes with the old data. An import that fails, runs out of disk or is killed
        leaves the workspace exactly as it was. One import at a time per workspace.

        Raises:
            WorkbenchError: Another import into this workspace is running.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        lock = HeldLock.try_acquire(self.root / IMPORT_LOCK, {"pid": os.getpid()})
        if lock is None:
            raise WorkbenchError(
                f"Another import into {self.root.name} is running (process "
                f"{(lock_holder(self.root / IMPORT_LOCK) or {}).get('pid', '?')}); wait for it "
                "to finish, then import again.")
        replacement = Replacement(self.root, IMPORT)
        try:
            staging = Workspace(replacement.begin())
            staging.audio_dir.mkdir()
            yield staging
            if settings is not None:
                staging.write_settings({**self.read_settings(), **settings})
            paths = [p for p in IMPORTED if (staging.root / p).exists()]
            replacement.commit(paths, remove=[AUDIT_FILE])
        except BaseException:
            replacement.abort()
            raise
        finally:
            lock.release()

    def read_all(self) -> dict[str, list[Utterance]]:
        """All splits, keyed by split name."""
        return {split: self.read_split(split) for split in SPLITS}

    def require_prepared(self) -> None:
        """Raise a readable error when `workbench prepare` has not been run here."""
        self.recover()
        if not self.manifest_path("train").exists():
            raise WorkbenchError(
                f"{self.root} has no prepared data (manifests/train.jsonl is missing). "
                f"Run `workbench prepare SOURCE -w {self.root}` first.",
                page=f"{self.root.name} has no prepared data yet: upload recordings with "
                     "their transcripts in step 1, Data, and press Import.",
            )

    def audio_path(self, utterance: Utterance) -> Path:
        """Absolute path of an utterance's cached clip."""
        return self.root / utterance.audio

    def read_settings(self) -> dict:
        """The user's choices recorded in workbench.yaml (empty if none yet)."""
        if not self.config_path.exists():
            return {}
        return yaml.safe_load(self.config_path.read_text(encoding="utf-8")) or {}

    def write_settings(self, settings: dict) -> None:
        """Record the user's choices in workbench.yaml."""
        write_text_atomic(self.config_path,
                          yaml.safe_dump(settings, allow_unicode=True, sort_keys=False))
