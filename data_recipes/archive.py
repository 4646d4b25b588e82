"""Safe extraction of zip and tar archives that hold a source (audiofolder, Common Voice...).

An archive source is extracted into the workspace, then read like a folder::

    <workspace>/
      sources/
        <archive stem>/           what the archive holds (replaced on every extraction)
          corpus/metadata.csv     a single top-level folder is where the content is read
          corpus/clips/...

Formats: ``.zip``, ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``/``.tbz2``,
``.tar.xz``/``.txz``. Every member is checked from the headers before anything is
written, and the limits are enforced again while the bytes are written (headers can lie):

- refused members (each one named in the error): absolute paths, drive letters, ``..``
  components, symbolic and hard links, device files, FIFOs and other special files,
  encrypted zip members;
- limits: total uncompressed size (``max_bytes``), number of members (``max_members``),
  compression ratio per member (zip) and over the whole archive (``max_ratio``), the ratio
  counting only above ``ratio_floor`` bytes so small, very compressible text files pass.

Refusing costs no more than the limit crossed: a tar is read in forward passes over a
decompressed stream that counts every byte it yields, skipped member data included. The
headers are checked one by one *before* the data they announce is decompressed (to skip or
to write it), and the stream itself refuses anything past the limits (for instance a run of
oversized extended headers). A zip's sizes are in its central directory, read without
decompressing anything; its members are counted as they are written.

A refused or failed extraction leaves nothing behind: the archive is written into a hidden
staging folder next to the destination and only renamed into place once complete. macOS
metadata (``__MACOSX/``, ``.DS_Store``, ``._*`` AppleDouble files) is skipped.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from workbench.errors import WorkbenchError

DEFAULT_MAX_BYTES = 20 * 1024**3  # 20 GiB uncompressed: far above any low-resource corpus
DEFAULT_MAX_RATIO = 200.0  # uncompressed / compressed; audio hardly compresses at all
DEFAULT_MAX_MEMBERS = 200_000
RATIO_FLOOR = 100 * 1024**2  # the ratio only counts above 100 MB (text compresses ~10:1)
CHUNK = 1024**2  # bytes copied at a time while extracting
MAX_READ = 4 * CHUNK  # one read from a tar stream: data comes CHUNK at a time, headers in KBs
# Tar bytes outside member data (headers, padding, long-name and pax records) allowed on
# top of the data: per member seen, and once for a run of records before a member.
TAR_OVERHEAD_PER_MEMBER = 2048
TAR_OVERHEAD = 1024**2
# Compressed tar streams, by their first bytes (uncompressed tar otherwise).
_COMPRESSED = (
    (b"\x1f\x8b", lambda raw: gzip.GzipFile(fileobj=raw, mode="rb")),
    (b"BZh", bz2.BZ2File),
    (b"\xfd7zXZ\x00", lzma.LZMAFile),
)
_DAMAGED = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError,
            OSError)
SHOWN_MEMBERS = 10  # refused members named in one error message

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
ARCHIVE_SUFFIXES = (".zip", *TAR_SUFFIXES)
_JUNK_NAMES = (".DS_Store", "Thumbs.db")


class UnsafeArchiveError(WorkbenchError, ValueError):
    """An archive that could write outside its folder or fill the disk.

    Attributes:
        members: The names of the refused members (empty when a limit on the whole archive
            was crossed).
    """

    def __init__(self, message: str, members: list[str] | None = None):
        super().__init__(message)
        self.members = members or []


@dataclass(frozen=True)
class Limits:
    """What an extraction may write (see the module docstring)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_ratio: float = DEFAULT_MAX_RATIO
    max_members: int = DEFAULT_MAX_MEMBERS
    ratio_floor: int = RATIO_FLOOR


@dataclass(frozen=True)
class _Member:
    """One archive member to write, already checked."""

    name: str  # as the archive spells it, for messages
    parts: tuple[str, ...]  # safe relative path components
    is_dir: bool
    size: int  # uncompressed size the header declares
    compressed: int | None  # compressed size (zip members only)
    entry: zipfile.ZipInfo | tarfile.TarInfo


def is_archive(path: Path) -> bool:
    """Whether ``path`` is named like an archive this module extracts."""
    return Path(path).name.lower().endswith(ARCHIVE_SUFFIXES)


def archive_stem(path: Path) -> str:
    """The archive's name without its archive suffixes (``corpus.tar.gz`` -> ``corpus``)."""
    name = Path(path).name
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or "archive"
    return Path(path).stem


def extract_archive(
    archive: Path,
    dest_root: Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
    max_members: int = DEFAULT_MAX_MEMBERS,
    ratio_floor: int = RATIO_FLOOR,
    folder_name: str | None = None,
) -> Path:
    """Extract ``archive`` safely into ``dest_root/<archive stem>``, replacing an older copy.

    Args:
        archive: A zip or tar archive (see ``ARCHIVE_SUFFIXES``).
        dest_root: Folder that receives the extraction folder (a workspace's ``sources/``).
        max_bytes: Most uncompressed bytes the archive may hold.
        max_ratio: Highest compression ratio, per zip member and over the whole archive,
            once more than ``ratio_floor`` bytes are involved.
        max_members: Most members (files and folders) the archive may hold.
        ratio_floor: Uncompressed size below which the ratio is not checked.
        folder_name: Name of the extraction folder (default: the archive's stem).

    Returns:
        The folder that holds the content: the archive's single top-level folder if it has
        one, else the extraction folder.

    Raises:
        UnsafeArchiveError: A member is unsafe or a limit is crossed (nothing is written).
        WorkbenchError: The archive is missing, of an unknown kind, or damaged.
    """
    limits = Limits(max_bytes, max_ratio, max_members, ratio_floor)
    dest = Path(dest_root) / _plain_name(folder_name or archive_stem(archive))
    staging = _extract_to_staging(Path(archive), Path(dest_root), limits)
    _replace(staging, dest)
    return content_root(dest)


def _plain_name(name: str) -> str:
    """``name`` as one harmless path component (never ``.``, ``..`` or hidden)."""
    cleaned = name.replace("/", "_").replace("\\", "_").strip().lstrip(".")
    return cleaned or "archive"


def unpack_into(archive: Path, dest: Path, *, limits: Limits | None = None) -> Path:
    """Extract ``archive`` safely straight into ``dest``, replacing same-named entries.

    Used where the archive's own top-level folder is wanted in ``dest`` (the bundled demo).

    Args:
        archive: A zip or tar archive.
        dest: Folder to extract into (created if missing).
        limits: Extraction limits (default ``Limits()``).

    Returns:
        ``dest/<top folder>`` when the archive has a single top-level folder, else ``dest``.

    Raises:
        UnsafeArchiveError: A member is unsafe or a limit is crossed (nothing is written).
        WorkbenchError: The archive is missing, of an unknown kind, or damaged.
    """
    dest = Path(dest)
    staging = _extract_to_staging(Path(archive), dest, limits or Limits())
    try:
        tops = [_replace(entry, dest / entry.name) for entry in sorted(staging.iterdir())]
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return tops[0] if len(tops) == 1 and tops[0].is_dir() else dest


def _replace(source: Path, target: Path) -> Path:
    """Move ``source`` to ``target``, removing what was there before."""
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()
    os.replace(source, target)
    return target


def content_root(folder: Path) -> Path:
    """``folder``'s single subfolder when it holds nothing else, else ``folder``."""
    entries = list(Path(folder).iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return Path(folder)


def _extract_to_staging(archive: Path, parent: Path, limits: Limits) -> Path:
    """Check, then write every member into a new hidden folder under ``parent``."""
    if not archive.is_file():
        raise WorkbenchError(f"{archive}: archive not found.")
    with _open(archive, limits) as (kind, handle):
        members = _checked_members(archive, kind, handle, limits)
        created = not parent.exists()
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{archive_stem(archive)}.", dir=parent))
        try:
            _write_members(archive, kind, handle, members, staging, limits)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if created and not any(parent.iterdir()):
                parent.rmdir()
            raise
    return staging


@contextmanager
def _open(archive: Path, limits: Limits) -> Iterator[tuple[str, zipfile.ZipFile | _Tar]]:
    """Open a zip or tar archive, turning a damaged one into a readable error."""
    name = archive.name.lower()
    try:
        if name.endswith(".zip") or (not name.endswith(TAR_SUFFIXES)
                                     and zipfile.is_zipfile(archive)):
            with zipfile.ZipFile(archive) as handle:
                yield "zip", handle
        elif name.endswith(TAR_SUFFIXES) or tarfile.is_tarfile(archive):
            yield "tar", _Tar(archive, limits)
        else:
            raise WorkbenchError(
                f"{archive}: not a zip or tar archive. Give a folder, or an archive ending in "
                + ", ".join(ARCHIVE_SUFFIXES) + "."
            )
    except _DAMAGED as err:
        raise WorkbenchError(
            f"{archive}: cannot read the archive ({err}). It may be incomplete or damaged: "
            "download or copy it again, or extract it yourself and give the folder."
        ) from err


def _checked_members(archive: Path, kind: str, handle, limits: Limits) -> list[_Member]:
    """Every member to write, after the header checks; raise naming each refused member."""
    entries = handle.infolist() if kind == "zip" else _tar_entries(handle)
    if len(entries) > limits.max_members:
        raise UnsafeArchiveError(
            f"{archive}: refusing the archive: it holds more than {limits.max_members} "
            "members. Split it into several archives, or raise the member limit."
        )
    members, refused = [], []
    for entry in entries:
        member, reason = _member(entry)
        if reason:
            refused.append((_entry_name(entry), reason))
        elif member is not None:
            members.append(member)
    if refused:
        _raise_refused(archive, refused)
    _check_sizes(archive, members, limits)
    return members


class _CountedStream:
    """A tar's decompressed bytes, counted as they come; refused past ``limit``.

    tarfile skips member data by seeking: here a forward seek reads, and counts, what it
    skips, so nothing is decompressed uncounted; a backward seek (which would decompress
    everything again) is an error. ``limit`` is raised by the reader as members are
    accepted.
    """

    def __init__(self, archive: Path, inner: BinaryIO, limit: int):
        self.archive = archive
        self.inner = inner
        self.limit = limit
        self.count = 0  # bytes decompressed so far

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > MAX_READ:
            raise UnsafeArchiveError(
                f"{self.archive}: refusing the archive: it holds a header of more than "
                f"{_size(MAX_READ)} (a compression bomb, or a damaged archive). Nothing was "
                "extracted.")
        data = self.inner.read(min(size, self.limit - self.count + 1))
        self.count += len(data)
        if self.count > self.limit:
            raise UnsafeArchiveError(
                f"{self.archive}: refusing the archive (a compression bomb: it unpacks to "
                f"more than {_size(self.limit)} of data and headers). Nothing was "
                "extracted.")
        return data

    def tell(self) -> int:
        return self.count

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence != os.SEEK_SET or offset < self.count:
            raise OSError("the archive asks to be read backwards")
        while self.count < offset:
            if not self.read(min(CHUNK, offset - self.count)):
                raise EOFError("unexpected end of data")
        return self.count


class _Tar:
    """A tar archive (compressed or not), read in forward passes over counted streams."""

    def __init__(self, archive: Path, limits: Limits):
        self.archive = archive
        self.limits = limits
        self.data_limit = min(limits.max_bytes, max(
            limits.ratio_floor, int(limits.max_ratio * archive.stat().st_size)))
        self.decompressed = 0  # bytes of the whole stream, once a pass read every header

    @contextmanager
    def open(self, limit: int = TAR_OVERHEAD) -> Iterator[tuple[tarfile.TarFile,
                                                             _CountedStream]]:
        """One pass: the tar file over a fresh stream counted against ``limit``."""
        with open(self.archive, "rb") as raw:
            head = raw.read(8)
            raw.seek(0)
            opener = next((o for magic, o in _COMPRESSED if head.startswith(magic)), None)
            inner = opener(raw) if opener else raw
            with inner:
                stream = _CountedStream(self.archive, inner, limit)
                with tarfile.open(fileobj=stream, mode="r:") as tar:
                    yield tar, stream

    def members(self, tar: tarfile.TarFile, stream: _CountedStream
                ) -> Iterator[tarfile.TarInfo]:
        """Each header in turn, its data allowed only once its size passed the limits."""
        count, declared = 0, 0
        while (info := tar.next()) is not None:
            count += 1
            declared += _data_size(info)
            if count > self.limits.max_members:
                raise UnsafeArchiveError(
                    f"{self.archive}: refusing the archive: it holds more than "
                    f"{self.limits.max_members} members. Split it into several archives, "
                    "or raise the member limit.")
            if declared > self.data_limit:
                _raise_too_big(self.archive, declared, self.limits)
            stream.limit = (declared + TAR_OVERHEAD
                            + TAR_OVERHEAD_PER_MEMBER * count + tarfile.RECORDSIZE)
            yield info


def _data_size(info: tarfile.TarInfo) -> int:
    """Bytes of data after a tar header (what tarfile reads or skips; padding aside)."""
    if info.isreg() or info.type not in tarfile.SUPPORTED_TYPES:
        return info.size
    return 0


def _tar_entries(tar: _Tar) -> list[tarfile.TarInfo]:
    # Headers one by one: a bomb or a tar with millions of members stops at the first
    # limit crossed, before the data past it is decompressed.
    with tar.open() as (handle, stream):
        entries = list(tar.members(handle, stream))
        tar.decompressed = stream.count
    return entries


def _entry_name(entry: zipfile.ZipInfo | tarfile.TarInfo) -> str:
    return entry.filename if isinstance(entry, zipfile.ZipInfo) else entry.name


def _member(entry: zipfile.ZipInfo | tarfile.TarInfo) -> tuple[_Member | None, str]:
    """The checked member (None for skipped metadata), or the reason it is refused."""
    name = _entry_name(entry)
    parts, reason = _safe_parts(name)
    if reason:
        return None, reason
    if not parts or _is_junk(parts):
        return None, ""
    if isinstance(entry, zipfile.ZipInfo):
        kind_reason = _zip_kind_problem(entry)
        is_dir, size, compressed = entry.is_dir(), entry.file_size, entry.compress_size
    else:
        kind_reason = _tar_kind_problem(entry)
        is_dir, size, compressed = entry.isdir(), entry.size, None
    if kind_reason:
        return None, kind_reason
    return _Member(name, parts, is_dir, 0 if is_dir else size, compressed, entry), ""


def _safe_parts(name: str) -> tuple[tuple[str, ...], str]:
    """Path components of a member name, or why the name could leave the folder."""
    unified = name.replace("\\", "/")
    path = PurePosixPath(unified)
    if path.is_absolute() or unified.startswith("/"):
        return (), "absolute path"
    parts = tuple(part for part in path.parts if part not in ("", "."))
    if ".." in parts:
        return (), "'..' in the path leaves the folder"
    if parts and ":" in parts[0]:
        return (), "drive letter or device in the path"
    if any("\0" in part for part in parts):
        return (), "NUL character in the path"
    return parts, ""


def _is_junk(parts: tuple[str, ...]) -> bool:
    """macOS/Windows metadata that is never data."""
    return (parts[0] == "__MACOSX" or parts[-1] in _JUNK_NAMES
            or parts[-1].startswith("._"))


def _zip_kind_problem(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    if info.flag_bits & 0x1:
        return "encrypted member (unzip it with its password first)"
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: no type recorded
        return "device or special file"
    return ""


def _tar_kind_problem(info: tarfile.TarInfo) -> str:
    if info.issym():
        return f"symbolic link to {info.linkname!r}"
    if info.islnk():
        return f"hard link to {info.linkname!r}"
    if info.ischr() or info.isblk():
        return "device file"
    if not (info.isfile() or info.isdir()):
        return "special file (FIFO or unknown type)"
    return ""


def _raise_refused(archive: Path, refused: list[tuple[str, str]]) -> None:
    shown = "; ".join(f"refusing member {name!r} ({reason})"
                      for name, reason in refused[:SHOWN_MEMBERS])
    more = (f"; and {len(refused) - SHOWN_MEMBERS} more"
            if len(refused) > SHOWN_MEMBERS else "")
    raise UnsafeArchiveError(
        f"{archive}: nothing was extracted: {shown}{more}. Archives may hold only plain "
        "files and folders with relative paths: extract it yourself, remove the links, and "
        "give the folder (or re-create the archive from it).",
        [name for name, _ in refused],
    )


def _check_sizes(archive: Path, members: list[_Member], limits: Limits) -> None:
    """Size, ratio and bomb checks from the headers, before anything is written."""
    total = sum(m.size for m in members)
    if total > limits.max_bytes:
        _raise_too_big(archive, total, limits)
    for member in members:
        if member.compressed is not None and _over_ratio(member.size, member.compressed,
                                                         limits):
            raise UnsafeArchiveError(
                f"{archive}: refusing member {member.name!r} (a compression bomb: "
                f"{_size(member.compressed)} unpacks to {_size(member.size)}). Nothing "
                "was extracted.", [member.name])
    if _over_ratio(total, archive.stat().st_size, limits):
        _raise_too_big(archive, total, limits)


def _raise_too_big(archive: Path, total: int, limits: Limits) -> None:
    """Refuse an archive whose headers announce ``total`` bytes, past a limit."""
    if total > limits.max_bytes:
        raise UnsafeArchiveError(
            f"{archive}: refusing the archive: it would unpack to {_size(total)}, more than "
            f"the limit of {_size(limits.max_bytes)}. Raise the limit if that is right."
        )
    raise UnsafeArchiveError(
        f"{archive}: refusing the archive (a compression bomb: "
        f"{_size(archive.stat().st_size)} unpacks to {_size(total)} or more). Nothing was "
        "extracted.")


def _over_ratio(uncompressed: int, compressed: int, limits: Limits) -> bool:
    return (uncompressed > limits.ratio_floor
            and uncompressed > limits.max_ratio * max(compressed, 1))


def _size(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"


class _Budget:
    """Bytes written so far, checked against the limits while streaming."""

    def __init__(self, archive: Path, limits: Limits):
        self.archive = archive
        self.limits = limits
        self.archive_size = archive.stat().st_size
        self.total = 0

    def add(self, member: _Member, written: int, count: int) -> None:
        """Account ``count`` more bytes of ``member`` (``written`` before them)."""
        self.total += count
        written += count
        problem = ""
        if written > member.size:
            problem = "it holds more data than its header says"
        elif self.total > self.limits.max_bytes:
            problem = f"the archive unpacks to more than {_size(self.limits.max_bytes)}"
        elif member.compressed is not None and _over_ratio(written, member.compressed,
                                                           self.limits):
            problem = "a compression bomb"
        elif _over_ratio(self.total, self.archive_size, self.limits):
            problem = "the archive is a compression bomb"
        if problem:
            raise UnsafeArchiveError(
                f"{self.archive}: refusing member {member.name!r} ({problem}); the partial "
                "extraction was removed.", [member.name])


def _write_members(archive: Path, kind: str, handle, members: list[_Member],
                   staging: Path, limits: Limits) -> None:
    if kind == "tar":  # a second forward pass, no longer than the first
        with handle.open(handle.decompressed) as (tar, _):
            _write_checked(archive, kind, tar, members, staging, limits)
    else:
        _write_checked(archive, kind, handle, members, staging, limits)


def _write_checked(archive: Path, kind: str, handle, members: list[_Member],
                   staging: Path, limits: Limits) -> None:
    budget = _Budget(archive, limits)
    root = os.path.realpath(staging)
    for member in members:
        target = staging.joinpath(*member.parts)
        if os.path.commonpath([root, os.path.realpath(target)]) != root:
            raise UnsafeArchiveError(
                f"{archive}: refusing member {member.name!r} (path leaves the folder).",
                [member.name])
        try:
            if member.is_dir:
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with _member_stream(kind, handle, member) as source, open(target, "wb") as out:
                _copy_limited(source, out, member, budget)
        except OSError as err:
            raise WorkbenchError(
                f"{archive}: cannot extract member {member.name!r} ({err}). Extract the "
                "archive yourself and give the folder."
            ) from err


@contextmanager
def _member_stream(kind: str, handle, member: _Member) -> Iterator[BinaryIO]:
    if kind == "zip":
        with handle.open(member.entry) as stream:
            yield stream
    else:
        stream = handle.extractfile(member.entry)
        if stream is None:  # only for non-files, which were refused already
            raise OSError("not a regular file")
        with stream:
            yield stream


def _copy_limited(source: BinaryIO, out: BinaryIO, member: _Member, budget: _Budget) -> int:
    """Copy ``source`` to ``out`` in chunks, counting bytes against ``budget``.

    The header's sizes are not trusted: the budget raises as soon as the bytes actually
    read cross a limit, before they are written.

    Returns:
        The number of bytes written.
    """
    written = 0
    while chunk := source.read(CHUNK):
        budget.add(member, written, len(chunk))
        out.write(chunk)
        written += len(chunk)
    return written
