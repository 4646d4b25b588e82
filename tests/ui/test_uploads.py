"""Uploads are copied into the workspace, inspected, and imported from there only."""

import shutil
import zipfile

import pytest

from tests.conftest import make_subset
from tests.data_recipes.test_elan import aligned, recording, write_eaf
from ui import uploads
from ui.uploads import ImportOptions
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace.at(tmp_path / "ws")


@pytest.fixture
def corpus(demo_corpus, tmp_path):
    return make_subset(demo_corpus, tmp_path / "corpus", 12)


def flat_files(corpus, tmp_path):
    """What a browser uploads: the table and the clips, without their folders."""
    browser = tmp_path / "browser"
    browser.mkdir()
    files = [shutil.copy(corpus / "metadata.csv", browser / "transcripts.csv")]
    files += [shutil.copy(p, browser / p.name) for p in sorted((corpus / "clips").iterdir())]
    return files


def test_a_zip_is_kept_in_the_workspace_and_imported(ws, corpus, tmp_path):
    archive = tmp_path / "my corpus.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(corpus.rglob("*")):
            out.write(path, f"corpus/{path.relative_to(corpus)}")
    name = uploads.stage_upload(ws, [archive])
    assert (ws.root / "uploads" / name / "my corpus.zip").is_file()
    info = uploads.inspect_upload(ws, name)
    assert [s.fmt for s in info.sources] == ["audiofolder"]
    assert {"file_name", "transcription", "speaker"} <= set(info.sources[0].columns)
    assert info.sources[0].path.is_relative_to(ws.root / "sources")
    summary = uploads.import_uploads(ws, [name], ImportOptions())
    assert summary["utterances"] == 12
    assert ws.read_settings()["sources"][0]["path"].startswith(str(ws.root))


def test_a_table_with_flat_audio_files_finds_its_clips_by_name(ws, corpus, tmp_path):
    name = uploads.stage_upload(ws, flat_files(corpus, tmp_path))
    info = uploads.inspect_upload(ws, name)
    assert [s.fmt for s in info.sources] == ["csv"]  # clips/x.wav in the table, x.wav here
    summary = uploads.import_uploads(ws, [name], ImportOptions(text_column="transcription"))
    assert summary["utterances"] == 12 and not summary["issues"]


def test_audio_outside_the_upload_is_never_read(ws, corpus, tmp_path):
    secret = recording(tmp_path / "elsewhere" / "private.wav")
    table = tmp_path / "browser" / "table.csv"
    table.parent.mkdir()
    rows = (corpus / "metadata.csv").read_text(encoding="utf-8").splitlines()
    rows.append(f"{secret},should not be read,x")
    table.write_text("\n".join(rows) + "\n", encoding="utf-8")
    files = [table, *(shutil.copy(p, table.parent / p.name) for p in
                      sorted((corpus / "clips").iterdir()))]
    name = uploads.stage_upload(ws, files)
    summary = uploads.import_uploads(ws, [name], ImportOptions())
    assert summary["utterances"] == 12
    refused = [i for i in summary["issues"] if i["check"] == "audio_not_uploaded"]
    assert len(refused) == 1 and "private.wav" in refused[0]["detail"]
    assert all("private" not in u.source for us in ws.read_all().values() for u in us)


def test_elan_tiers_are_offered_and_the_message_speaks_the_page(ws, tmp_path):
    folder = tmp_path / "browser"
    files = []
    for session in ("s1", "s2", "s3"):
        files.append(recording(folder / f"{session}.wav", seconds=8.0))
        files.append(write_eaf(folder / f"{session}.eaf", [
            ("Maria", "Maria", "utterance", "", [aligned("a1", 100, 1900, "allin p'unchaw"),
                                                 aligned("a2", 2500, 4200, "imaynalla")]),
            ("notes", "Maria", "utterance", "", [aligned("n1", 100, 1900, "greeting")]),
        ], relative_url=f"./{session}.wav"))
    name = uploads.stage_upload(ws, files)
    info = uploads.inspect_upload(ws, name)
    assert [s.fmt for s in info.sources] == ["elan"]
    assert info.choices("tiers") == ["Maria", "notes"]
    assert info.choices("participants") == ["Maria"]
    with pytest.raises(WorkbenchError) as err:
        uploads.import_uploads(ws, [name], ImportOptions())
    shown = err.value.for_page()  # what the page shows (the CLI's words stay in the message)
    assert "--tier" not in shown and "'Tier' import option" in shown
    assert "--tier" in str(err.value)
    summary = uploads.import_uploads(ws, [name], ImportOptions(tier="Maria"))
    assert summary["utterances"] == 6


def test_names_are_made_safe_and_nothing_is_refused_silently(ws, tmp_path):
    weird = tmp_path / "..evil name;rm.csv"
    weird.write_text("file_name,transcription\n", encoding="utf-8")
    name = uploads.stage_upload(ws, [weird])
    stored = [p.name for p in (ws.root / "uploads" / name).iterdir()]
    assert stored == ["evil name_rm.csv"]
    with pytest.raises(WorkbenchError, match="Choose the files"):
        uploads.stage_upload(ws, [])
    with pytest.raises(WorkbenchError, match="no upload"):
        uploads.import_uploads(ws, ["../../etc"], ImportOptions())
    with pytest.raises(WorkbenchError, match="at least one"):
        uploads.import_uploads(ws, [], ImportOptions())


def test_two_tables_in_one_upload_ask_for_one_at_a_time(ws, tmp_path):
    files = []
    for stem in ("a", "b"):
        path = tmp_path / f"{stem}.csv"
        path.write_text("file_name,transcription\n", encoding="utf-8")
        files.append(path)
    name = uploads.stage_upload(ws, files)
    info = uploads.inspect_upload(ws, name)
    assert "one table at a time" in info.sources[0].problem


def test_a_refused_archive_leaves_nothing_of_its_upload(ws, tmp_path):
    """A bomb beside a good archive: the whole upload goes, the message names the file."""
    good = tmp_path / "browser" / "good.zip"
    good.parent.mkdir()
    with zipfile.ZipFile(good, "w") as out:
        out.writestr("corpus/metadata.csv", "file_name,transcription\n")
    bomb = tmp_path / "browser" / "zbomb.zip"  # extracted after good.zip
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        with out.open("corpus/zeros.wav", "w", force_zip64=True) as member:
            for _ in range(110):  # 110 MB of zeros: past the 100 MB floor of the ratio
                member.write(bytes(1024**2))
    kept = uploads.stage_upload(ws, [good])
    with pytest.raises(WorkbenchError) as err:
        uploads.stage_upload(ws, [good, bomb])
    message = str(err.value)
    assert "zbomb.zip" in message and "compression bomb" in message
    assert "not kept" in message and str(tmp_path) not in message and "/uploads/" not in message
    assert uploads.list_uploads(ws) == [kept]  # the earlier upload stays, the refused one not
    assert sorted(p.name for p in (ws.root / "sources").iterdir()) == [f"{kept}-good"]
