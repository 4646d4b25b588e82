"""Stamped directories for runs, jobs and uploads."""

from __future__ import annotations

import re

from workbench.workspace import new_stamped_dir


def test_stamped_dirs_never_collide(tmp_path):
    made = [new_stamped_dir(tmp_path, "tiny") for _ in range(3)]
    assert len(set(made)) == 3 and all(p.is_dir() for p in made)
    assert re.fullmatch(r"\d{8}-\d{6}-tiny", made[0].name)
    names = sorted(p.name for p in made)
    # Made within the same second, the later ones get -2, -3 (or a newer stamp).
    assert all(re.fullmatch(r"\d{8}-\d{6}-tiny(-\d+)?", n) for n in names)
    assert re.fullmatch(r"\d{8}-\d{6}", new_stamped_dir(tmp_path / "jobs").name)
