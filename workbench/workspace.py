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

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml

from workbench.errors import WorkbenchError
from workbench.manifest import SPLITS, Utterance, read_manifest

STAMP = "%Y%m%d-%H%M%S"  # UTC start time that names runs, jobs and uploads (sortable)


def new_stamped_dir(parent: Path, tail: str = "") -> Path:
    """Create ``parent/<UTC stamp>[-tail]``, with ``-2``, ``-3``... when the name is taken."""
    base = datetime.now(timezone.utc).strftime(STAMP) + (f"-{tail}" if tail else "")
    folder, suffix = parent / base, 1
    while folder.exists():
        suffix += 1
        folder = parent / f"{base}-{suffix}"
    folder.mkdir(parents=True)
    return folder


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
        return self.root / "audit.json"

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
        return read_manifest(self.manifest_path(split))

    def read_all(self) -> dict[str, list[Utterance]]:
        """All splits, keyed by split name."""
        return {split: self.read_split(split) for split in SPLITS}

    def require_prepared(self) -> None:
        """Raise a readable error when `workbench prepare` has not been run here."""
        if not self.manifest_path("train").exists():
            raise WorkbenchError(
                f"{self.root} has no prepared data (manifests/train.jsonl is missing). "
                f"Run `workbench prepare SOURCE -w {self.root}` first."
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
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            yaml.safe_dump(settings, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
