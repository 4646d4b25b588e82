"""Several sources, of any formats, into one workspace."""

import shutil
import zipfile
from pathlib import Path

from data_recipes import prepare_sources
from tests.conftest import make_subset
from workbench.manifest import read_manifest
from workbench.workspace import Workspace


def all_utterances(ws):
    return [u for s in ("train", "dev", "test") for u in read_manifest(ws.manifest_path(s))]


def zip_folder(folder: Path, archive: Path) -> Path:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, Path(folder.name) / path.relative_to(folder))
    return archive


def test_colliding_clip_names_from_two_folders_are_all_kept(demo_corpus, tmp_path):
    # Both folders hold the same clip names (clips/qu_00000.ogg ...) and the same folder name.
    first = make_subset(demo_corpus, tmp_path / "a" / "corpus", 4)
    second = make_subset(demo_corpus, tmp_path / "b" / "corpus", 4)
    ws = Workspace.at(tmp_path / "ws")
    result = prepare_sources([first, second], ws, progress=False)
    utterances = all_utterances(ws)
    assert len(result.utterances) == len(utterances) == 8
    assert len({u.id for u in utterances}) == 8
    assert len({u.audio for u in utterances}) == 8
    assert all(ws.audio_path(u).is_file() for u in utterances)
    assert {Path(u.source).parents[2].name for u in utterances} == {"a", "b"}
    # Same source name "corpus": the second source's ids get a suffix.
    ids = sorted(u.id for u in utterances)
    plain = [i for i in ids if not i.endswith("-2")]
    assert len(plain) == 4 and all(i.startswith("corpus__clips__") for i in plain)
    assert sorted(i for i in ids if i.endswith("-2")) == [i + "-2" for i in plain]


def test_a_folder_and_two_archives_with_the_same_stem(demo_corpus, tmp_path):
    corpus = make_subset(demo_corpus, tmp_path / "corpus", 3)
    one = zip_folder(corpus, tmp_path / "x" / "data.zip")
    shutil.copy(one, tmp_path / "data.zip")
    folder = make_subset(demo_corpus, tmp_path / "field", 2)
    ws = Workspace.at(tmp_path / "ws")
    result = prepare_sources([one, tmp_path / "data.zip", folder], ws, progress=False)
    assert len(result.utterances) == 8 and not result.issues
    assert len({u.id for u in result.utterances}) == 8
    assert len({u.audio for u in result.utterances}) == 8
    # Each archive got its own extraction folder, so neither replaced the other's audio.
    assert sorted(p.name for p in (ws.root / "sources").iterdir()) == ["data", "data-2"]
    sources = {Path(u.source).parents[2].name for u in result.utterances}
    assert sources == {"data", "data-2", tmp_path.name}
    assert {u.id.split("__")[0] for u in result.utterances} == {"data", "data-2", "field"}
