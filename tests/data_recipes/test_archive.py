"""Safe archive extraction: nothing outside the destination, no bombs, no partial leftovers."""

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from data_recipes import archive as archive_module
from data_recipes.archive import UnsafeArchiveError, archive_stem, extract_archive, is_archive
from tests.conftest import make_subset
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.manifest import read_manifest
from workbench.workspace import Workspace


def listing(folder: Path) -> set[str]:
    """Every path under ``folder`` (relative), to compare before/after an extraction."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def zip_with(path: Path, members: dict[str, bytes], attrs: dict[str, int] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if attrs and name in attrs:
                info.external_attr = attrs[name] << 16
            zf.writestr(info, data)
    return path


def tar_with(path: Path, infos: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz" if path.name.endswith(".gz") else "w") as tar:
        for info, data in infos:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return path


def tar_info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.fixture
def sandbox(tmp_path):
    """A folder holding the archives and the workspace; its listing is checked afterwards."""
    box = tmp_path / "box"
    (box / "ws").mkdir(parents=True)
    return box


def refused(archive: Path, dest_root: Path, **limits) -> UnsafeArchiveError:
    parent = archive.parent
    before = listing(parent)
    with pytest.raises(UnsafeArchiveError) as caught:
        extract_archive(archive, dest_root, **limits)
    assert listing(parent) == before  # nothing written anywhere, not even the staging folder
    return caught.value


@pytest.mark.parametrize("name", ["../evil.txt", "corpus/../../evil.txt", "/tmp/evil.txt",
                                  "C:/evil.txt", "..\\evil.txt"])
@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_escaping_paths_are_refused(sandbox, name, kind):
    if kind == "zip":
        archive = zip_with(sandbox / "bad.zip", {"corpus/ok.txt": b"ok", name: b"boom"})
    else:
        archive = tar_with(sandbox / "bad.tar", [(tar_info("corpus/ok.txt"), b"ok"),
                                                 (tar_info(name), b"boom")])
    error = refused(archive, sandbox / "ws" / "sources")
    assert error.members == [name]
    assert repr(name) in str(error) and "refusing member" in str(error)


def test_links_and_devices_are_refused_and_each_named(sandbox):
    archive = tar_with(sandbox / "links.tar.gz", [
        (tar_info("corpus/metadata.csv"), b"file_name,transcription\n"),
        (tar_info("corpus/passwd", tarfile.SYMTYPE, "/etc/passwd"), b""),
        (tar_info("corpus/hard", tarfile.LNKTYPE, "corpus/metadata.csv"), b""),
        (tar_info("corpus/null", tarfile.CHRTYPE), b""),
        (tar_info("corpus/fifo", tarfile.FIFOTYPE), b""),
    ])
    error = refused(archive, sandbox / "ws" / "sources")
    assert error.members == ["corpus/passwd", "corpus/hard", "corpus/null", "corpus/fifo"]
    message = str(error)
    assert "symbolic link to '/etc/passwd'" in message and "hard link" in message
    assert "device file" in message


def test_zip_symlink_entry_is_refused(sandbox):
    archive = zip_with(sandbox / "link.zip",
                       {"corpus/a.txt": b"a", "corpus/link": b"/etc/passwd"},
                       attrs={"corpus/link": stat.S_IFLNK | 0o777,
                              "corpus/a.txt": stat.S_IFREG | 0o644})
    error = refused(archive, sandbox / "ws" / "sources")
    assert error.members == ["corpus/link"] and "symbolic link" in str(error)


def test_zip_bomb_is_refused_from_its_headers(sandbox):
    bomb = sandbox / "bomb.zip"
    chunk = bytes(1024**2)
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("corpus/metadata.csv", "file_name,transcription\n")
        with zf.open("corpus/zeros.wav", "w", force_zip64=True) as out:
            for _ in range(300):  # 300 MB of zeros, about 1.3 MB compressed
                out.write(chunk)
    error = refused(bomb, sandbox / "ws" / "sources")
    assert error.members == ["corpus/zeros.wav"] and "compression bomb" in str(error)


def test_limits_on_size_members_and_overall_ratio(sandbox):
    archive = zip_with(sandbox / "many.zip", {f"c/{i}.txt": b"x" * 100 for i in range(5)})
    assert "more than 3 members" in str(refused(archive, sandbox / "ws", max_members=3))
    assert "limit of 400 bytes" in str(refused(archive, sandbox / "ws", max_bytes=400))
    zeros = tar_with(sandbox / "zeros.tar.gz", [(tar_info("c/zeros.bin"), bytes(2 * 1024**2))])
    error = refused(zeros, sandbox / "ws", ratio_floor=1024**2)
    assert "compression bomb" in str(error)


def test_limits_are_enforced_while_writing_even_if_headers_lie(sandbox, monkeypatch):
    monkeypatch.setattr(archive_module, "_check_sizes", lambda *args: None)  # headers "lie"
    archive = zip_with(sandbox / "big.zip", {"c/a.bin": b"a" * 3000, "c/b.bin": b"b" * 3000})
    dest_root = sandbox / "ws" / "sources"
    error = refused(archive, dest_root, max_bytes=4000)
    assert error.members == ["c/b.bin"] and "partial extraction was removed" in str(error)
    assert not dest_root.exists()  # the partly written staging folder is gone


def test_damaged_archive_leaves_nothing(sandbox):
    good = zip_with(sandbox / "damaged.zip", {"c/a.txt": b"hello " * 1000})
    data = bytearray(good.read_bytes())
    data[60:70] = b"\xff" * 10  # corrupt the compressed bytes of the first member
    good.write_bytes(bytes(data))
    dest_root = sandbox / "ws" / "sources"
    with pytest.raises(WorkbenchError, match="damaged"):
        extract_archive(good, dest_root)
    assert not dest_root.exists()


def test_good_archive_extracts_and_replaces_an_older_copy(sandbox):
    archive = zip_with(sandbox / "corpus.zip", {
        "corpus/metadata.csv": b"file_name,transcription\n", "corpus/clips/a.txt": b"a",
        "__MACOSX/corpus/._metadata.csv": b"junk", "corpus/.DS_Store": b"junk"})
    dest_root = sandbox / "ws" / "sources"
    (dest_root / "corpus" / "stale").mkdir(parents=True)
    content = extract_archive(archive, dest_root)
    assert content == dest_root / "corpus" / "corpus"
    assert listing(dest_root) == {"corpus", "corpus/corpus", "corpus/corpus/metadata.csv",
                                  "corpus/corpus/clips", "corpus/corpus/clips/a.txt"}
    assert is_archive(Path("x.TAR.GZ")) and not is_archive(Path("x.gz"))
    assert archive_stem(Path("cv-qu.tar.gz")) == "cv-qu" and archive_stem(Path("a.tgz")) == "a"


def test_zipped_audiofolder_imports_from_the_cli(demo_corpus, tmp_path):
    corpus = make_subset(demo_corpus, tmp_path / "quechua", 6)
    archive = tmp_path / "quechua.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(corpus.rglob("*")):
            zf.write(path, Path("quechua") / path.relative_to(corpus))
    ws = tmp_path / "ws"
    for _ in range(2):  # safe to re-run: the extraction is replaced
        assert main(["prepare", str(archive), "-w", str(ws), "-q", "--json"]) == 0
    workspace = Workspace.at(ws)
    utterances = [u for s in ("train", "dev", "test")
                  for u in read_manifest(workspace.manifest_path(s))]
    assert len(utterances) == 6
    assert all(workspace.audio_path(u).is_file() for u in utterances)
    assert all(u.source.startswith(str(workspace.root / "sources" / "quechua"))
               for u in utterances)
    assert sorted(p.name for p in (workspace.root / "sources").iterdir()) == ["quechua"]


def test_archive_of_an_unknown_layout_says_what_it_holds(tmp_path, capsys):
    archive = zip_with(tmp_path / "notes.zip", {"notes/readme.txt": b"hi"})
    assert main(["prepare", str(archive), "-w", str(tmp_path / "ws"), "-q"]) == 2
    assert "notes.zip (extracted to" in capsys.readouterr().err


def test_a_dotted_archive_name_stays_inside_the_destination(sandbox):
    archive = zip_with(sandbox / "...zip", {"a.txt": b"a"})
    dest_root = sandbox / "ws" / "sources"
    assert extract_archive(archive, dest_root) == dest_root / "archive"
    assert listing(sandbox) == {"...zip", "ws", "ws/sources", "ws/sources/archive",
                                "ws/sources/archive/a.txt"}


# --------------------------------------------------------------------------- bombs, by bytes
# What a bomb costs is measured by the bytes the decompressors hand out (counted in the
# standard library's readers, outside the module under test), never by wall time.

MB = 1024**2
BOMB_FORMATS = ["tar.gz", "tar.xz", "tar.bz2", "zip"]


class Zeros(io.RawIOBase):
    """``size`` zero bytes, streamed (a bomb is made without holding it in memory)."""

    def __init__(self, size: int):
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def bomb_with(path: Path, sizes: list[int], pax: dict[str, str] | None = None) -> Path:
    """An archive whose members ``corpus/<i>.wav`` hold ``sizes`` zero bytes each."""
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for i, size in enumerate(sizes):
                with zf.open(f"corpus/{i}.wav", "w", force_zip64=True) as out:
                    for _ in range(size // MB):
                        out.write(bytes(MB))
                    out.write(bytes(size % MB))
        return path
    mode = "w:" + path.name.rsplit(".", 1)[1]
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as tar:
        for i, size in enumerate(sizes):
            info = tarfile.TarInfo(f"corpus/{i}.wav")
            info.size, info.pax_headers = size, dict(pax or {})
            tar.addfile(info, io.BufferedReader(Zeros(size)))
    return path


@pytest.fixture
def decompressed(monkeypatch) -> dict[str, int]:
    """Bytes handed out by gzip, bz2, lzma and zip decompression while the test runs."""
    import _compression
    import gzip

    counter = {"bytes": 0}

    def counting(cls, name):
        real = getattr(cls, name)

        def read(self, *args):
            data = real(self, *args)
            counter["bytes"] += len(data)
            return data

        monkeypatch.setattr(cls, name, read)

    counting(_compression.DecompressReader, "read")  # bz2 and lzma (seek reads through it)
    counting(gzip._GzipReader, "read")
    counting(zipfile.ZipExtFile, "_read1")
    return counter


@pytest.mark.parametrize("fmt", BOMB_FORMATS)
def test_a_bomb_is_refused_before_its_data_is_decompressed(sandbox, decompressed, fmt):
    bomb = bomb_with(sandbox / f"bomb.{fmt}", [16 * MB])
    decompressed["bytes"] = 0
    error = refused(bomb, sandbox / "ws" / "sources", ratio_floor=MB, max_ratio=10)
    assert "compression bomb" in str(error)
    # The header announcing 16 MB is refused; only the first buffer of the stream was read
    # (the old code decompressed all 16 MB to list the headers before refusing).
    assert decompressed["bytes"] <= 64 * 1024


@pytest.mark.parametrize("fmt", BOMB_FORMATS)
def test_the_first_limit_crossed_stops_the_decompression(sandbox, decompressed, fmt):
    archive = bomb_with(sandbox / f"many.{fmt}", [MB] * 12)
    decompressed["bytes"] = 0
    error = refused(archive, sandbox / "ws" / "sources", max_bytes=3 * MB + MB // 2)
    assert "more than the limit of 3.7 MB" in str(error)
    # Three members fit the limit; their data is skipped (and counted) on the way to the
    # fourth header, which crosses it. Nothing past it is decompressed (12 MB before).
    assert decompressed["bytes"] <= 3 * MB + 64 * 1024


def test_an_oversized_tar_header_is_refused_without_reading_it(sandbox, decompressed):
    archive = bomb_with(sandbox / "pax.tar.xz", [10], pax={"comment": "a" * 8 * MB})
    decompressed["bytes"] = 0
    error = refused(archive, sandbox / "ws" / "sources")
    assert "header of more than" in str(error)
    assert decompressed["bytes"] <= 64 * 1024


@pytest.mark.parametrize("fmt", ["tar", "tar.gz", "tar.xz", "tar.bz2"])
def test_every_tar_compression_extracts_in_full(sandbox, fmt):
    long_name = "corpus/" + "a" * 150 + ".txt"  # tar writes long names in a pax header
    files = {"corpus/metadata.csv": b"file_name,transcription\n" * 50, long_name: b"x" * 3000}
    archive = sandbox / f"corpus.{fmt}"
    with tarfile.open(archive, "w" if fmt == "tar" else "w:" + fmt[4:]) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    content = extract_archive(archive, sandbox / "ws" / "sources")
    assert {str(p.relative_to(content.parent)): p.read_bytes()
            for p in content.rglob("*")} == files
