"""Durable writes: every file a user or a later command relies on goes through here.

- A file is written to a temporary name in its folder, flushed, fsynced and renamed over the
  old one, then the folder is fsynced: a kill or a power cut at any moment leaves either the
  old file or the new one, never a mix (:func:`atomic_output` and the ``write_*`` helpers).
- A folder (a model, a checkpoint) is built under a staging name and swapped in with one
  atomic exchange (Linux ``renameat2(RENAME_EXCHANGE)``); where the file system cannot
  exchange, the old folder is renamed aside first and :func:`existing_dir` /
  :func:`recover_dir` find it again if a crash fell between the two renames
  (:func:`replace_dir`).
- Several paths of one folder change together (an import replaces the audio cache, the
  manifests and the import report) through a :class:`Replacement`: a journal keeps the old
  versions until the new ones are all in place, and :func:`recover` rolls back a replacement
  a crash interrupted, so the folder is exactly as it was before.
- A full disk (``ENOSPC``) becomes a :class:`DiskFullError` naming the disk, the free space
  and the space needed; what was half written is removed.

Fault points (:func:`fault_point`) let tests land a kill or a full disk at an exact moment:
``WORKBENCH_FAULTS="checkpoint.staged@2=kill,import.clip@5=enospc"`` kills the process the
second time it passes ``checkpoint.staged`` and raises ENOSPC at the fifth ``import.clip``.
They cost one dictionary lookup when the variable is unset.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from workbench.errors import WorkbenchError

FAULTS_ENV = "WORKBENCH_FAULTS"
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
RENAME_EXCHANGE = 2  # linux/fs.h
AT_FDCWD = -100
LOCK_NAME = ".workbench.lock"  # flock held while a Replacement commits or rolls back


# --------------------------------------------------------------------------- fault points


_fault_hits: dict[str, int] = {}
_fault_spec: tuple[str, dict[str, tuple[int, str]]] = ("", {})


def fault_point(name: str) -> None:
    """Kill the process, or raise ENOSPC, here if ``WORKBENCH_FAULTS`` asks for it (tests)."""
    spec = os.environ.get(FAULTS_ENV)
    if not spec:
        return
    wanted = _parse_faults(spec).get(name)
    if wanted is None:
        return
    _fault_hits[name] = _fault_hits.get(name, 0) + 1
    count, action = wanted
    if _fault_hits[name] != count:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC) + f" (fault point {name})")
    raise RuntimeError(f"fault point {name}")


def reset_faults() -> None:
    """Start counting fault-point hits afresh (tests that arm the same spec again)."""
    global _fault_spec
    _fault_spec = ("", {})
    _fault_hits.clear()


def _parse_faults(spec: str) -> dict[str, tuple[int, str]]:
    global _fault_spec
    if _fault_spec[0] != spec:
        parsed = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            where, _, action = item.partition("=")
            name, _, count = where.partition("@")
            parsed[name] = (int(count or 1), action or "kill")
        _fault_spec = (spec, parsed)
        _fault_hits.clear()
    return _fault_spec[1]


# --------------------------------------------------------------------------- full disk


class DiskFullError(WorkbenchError):
    """The disk ran out of space; nothing half-written was left behind."""


def is_disk_full(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS


def mount_point(path: Path) -> Path:
    """The mount point of the file system holding ``path`` (or its nearest existing parent)."""
    path = Path(os.path.abspath(path))
    while not path.exists():
        path = path.parent
    while not os.path.ismount(path):
        path = path.parent
    return path


def free_bytes(path: Path) -> int:
    """Bytes free for an unprivileged writer on the disk holding ``path``."""
    where = Path(os.path.abspath(path))
    while not where.exists():
        where = where.parent
    return shutil.disk_usage(where).free


def human_bytes(count: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if abs(count) < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


def disk_full_error(path: Path, what: str, needed: int | None = None,
                    then: str = "run the command again") -> DiskFullError:
    """A readable message for a full disk: which disk, how much is free, how much is needed."""
    mount = mount_point(path)
    free = free_bytes(path)
    need = f" It needs about {human_bytes(needed)}." if needed else ""
    more = (f" Free at least {human_bytes(max(needed - free, 0) * 1.1 + 1e6)} "
            if needed else " Free some space ")
    return DiskFullError(
        f"The disk holding {path} is full (file system {mount}: {human_bytes(free)} free), "
        f"so {what} stopped; nothing half-written was kept.{need}{more.rstrip()} there "
        f"(or use a folder on another disk), then {then}."
    )


def check_free_space(path: Path, needed: int, what: str,
                     then: str = "run the command again") -> None:
    """Refuse up front when the disk holding ``path`` has less than ``needed`` bytes free."""
    if needed > free_bytes(path):
        raise disk_full_error(path, what, needed, then)


# --------------------------------------------------------------------------- fsync


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new entry in ``folder`` durable."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # not supported here (e.g. Windows): the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """Make every file and folder under ``folder`` durable (files a library wrote, a cache).

    One ``syncfs`` of the folder's file system where Linux has it (thousands of cached clips
    cost one flush instead of thousands of fsyncs); else every file and folder is fsynced.
    """
    if _syncfs(folder):
        return
    for current, _, files in os.walk(folder, topdown=False):
        for name in files:
            fd = os.open(os.path.join(current, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(current))


def _syncfs(folder: Path) -> bool:
    """``syncfs(2)`` on the file system holding ``folder``; False where unavailable."""
    try:
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(folder, os.O_RDONLY)
    try:
        if syncfs(fd) == 0:
            return True
        code = ctypes.get_errno()
        if code in DISK_FULL_ERRNOS or code == errno.EIO:
            raise OSError(code, os.strerror(code), str(folder))
        return False
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- files


@contextmanager
def atomic_output(path: Path, mode: str = "w", *, encoding: str | None = "utf-8",
                  newline: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` durably.

    On an exception (or a full disk) the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding,
                       newline=None if binary else newline) as out:
            yield out
            out.flush()
            fault_point("atomic.before_fsync")
            os.fsync(out.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if is_disk_full(err):
            raise disk_full_error(path, f"writing {path.name}") from err
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_output(path, "wb") as out:
        out.write(data)


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_output(path) as out:
        out.write(text)


def write_json_atomic(path: Path, data: object) -> None:
    """One JSON document, pretty-printed UTF-8, written atomically."""
    with atomic_output(path) as out:
        json.dump(data, out, ensure_ascii=False, indent=2)
        out.write("\n")


def write_jsonl_atomic(path: Path, records: Iterable[dict]) -> None:
    """JSON lines, written atomically."""
    with atomic_output(path) as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------- folders


def aside_name(final: Path) -> Path:
    """Where :func:`replace_dir` keeps the old folder when it cannot exchange atomically."""
    return final.with_name(f".{final.name}.old")


def remove_temporaries(folder: Path) -> None:
    """Remove what killed writers left in ``folder``: ``.NAME*.tmp`` files and folders.

    Only call it where no other process can be writing (under the lock of that folder).
    """
    if not folder.is_dir():
        return
    for path in folder.glob(".*.tmp"):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux renameat2); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def replace_dir(staging: Path, final: Path, *, fault: str = "replace_dir") -> None:
    """Put the complete folder ``staging`` in the place of ``final`` (which may not exist).

    Readers see the old folder or the new one: with an atomic exchange always; otherwise the
    old one is renamed aside first and :func:`existing_dir` finds it during the gap.
    """
    fsync_tree(staging)
    fault_point(f"{fault}.staged")
    recover_dir(final)
    if final.exists() and exchange(staging, final):
        fsync_dir(final.parent)
        fault_point(f"{fault}.swapped")
        shutil.rmtree(staging)  # the old folder, now under the staging name
        return
    aside = aside_name(final)
    if final.exists():
        shutil.rmtree(aside, ignore_errors=True)
        final.rename(aside)
        fault_point(f"{fault}.aside")
    staging.rename(final)
    fsync_dir(final.parent)
    shutil.rmtree(aside, ignore_errors=True)


def recover_dir(final: Path) -> None:
    """Undo a :func:`replace_dir` cut between its two renames (the old folder comes back)."""
    aside = aside_name(final)
    if aside.is_dir():
        if final.exists():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            aside.rename(final)
            fsync_dir(final.parent)


def existing_dir(final: Path) -> Path:
    """``final``, or the copy :func:`replace_dir` set aside if a crash left ``final`` missing."""
    if not final.exists() and aside_name(final).is_dir():
        return aside_name(final)
    return final


@contextmanager
def staged_dir(final: Path, *, what: str, needed: int | None = None,
               then: str = "run the command again", fault: str = "replace_dir") -> Iterator[Path]:
    """A fresh staging folder beside ``final``; on success it replaces ``final`` atomically.

    On any error the staging folder is removed; a full disk becomes a :class:`DiskFullError`.
    """
    staging = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        if needed:
            check_free_space(final.parent, needed, what, then)
        staging.mkdir()
        yield staging
        replace_dir(staging, final, fault=fault)
    except BaseException as err:
        shutil.rmtree(staging, ignore_errors=True)
        if is_disk_full(err) or isinstance(err.__cause__, OSError) and is_disk_full(
                err.__cause__):
            if isinstance(err, DiskFullError):
                raise
            raise disk_full_error(final.parent, what, needed, then) from err
        raise


# --------------------------------------------------------------------------- locks


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (waits for the holder; freed if it dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class HeldLock:
    """An exclusive ``flock`` taken without waiting, held until :meth:`release`.

    The kernel frees it when the holder dies, even by SIGKILL, so no stale lock outlives a
    crash. The lock file records who holds it (for messages).
    """

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd

    @classmethod
    def try_acquire(cls, path: Path, owner: dict) -> HeldLock | None:
        """The lock, or None when another process holds it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(owner).encode(), 0)
        return cls(path, fd)

    def update(self, owner: dict) -> None:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(owner).encode(), 0)

    def release(self) -> None:
        if self.fd >= 0:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = -1


def lock_holder(path: Path) -> dict | None:
    """What the holder of the lock at ``path`` recorded, or None when nobody holds it."""
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            data = os.pread(fd, 4096, 0)
            try:
                owner = json.loads(data.decode() or "{}")
            except ValueError:
                owner = {}
            return owner if isinstance(owner, dict) else {}
        return None
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- replacements


JOURNAL_FILE = "JOURNAL.json"


class Replacement:
    """Replace several paths under ``root`` together: after a crash, all old or all new.

    Write the new versions under :attr:`staging` (same relative paths), then :meth:`commit`.
    The commit moves each old path into a journal folder and the new one into place, then
    renames the journal (the commit point) and deletes it. :func:`recover`, run by readers
    before they look, rolls back a commit cut short, so the folder is exactly as before.
    """

    def __init__(self, root: Path, name: str):
        self.root = Path(root)
        self.name = name
        self.staging = self.root / f".{name}.staging"
        self.journal = self.root / f".{name}.journal"
        self.done = self.root / f".{name}.done"

    def begin(self) -> Path:
        """A fresh, empty staging folder (left-overs of a killed attempt are removed)."""
        recover(self.root, self.name)
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(parents=True)
        return self.staging

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    def commit(self, paths: Iterable[str], remove: Iterable[str] = ()) -> None:
        """Move ``staging/<p>`` to ``root/<p>`` for each of ``paths``; delete ``remove``."""
        paths, remove = list(paths), list(remove)
        fsync_tree(self.staging)
        with locked(self.root / LOCK_NAME):
            shutil.rmtree(self.journal, ignore_errors=True)
            self.journal.mkdir()
            existed = {p: (self.root / p).exists() for p in (*paths, *remove)}
            write_json_atomic(self.journal / JOURNAL_FILE, {"existed": existed})
            for step, rel in enumerate((*paths, *remove)):
                if existed[rel]:
                    (self.journal / rel).parent.mkdir(parents=True, exist_ok=True)
                    (self.root / rel).rename(self.journal / rel)
                fault_point(f"{self.name}.commit.{step}")
                if rel in paths:
                    (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
                    (self.staging / rel).rename(self.root / rel)
            fsync_dir(self.root)
            self.journal.rename(self.done)  # the commit point
            fsync_dir(self.root)
            fault_point(f"{self.name}.committed")
            shutil.rmtree(self.done, ignore_errors=True)
        shutil.rmtree(self.staging, ignore_errors=True)


def recover(root: Path, name: str) -> bool:
    """Finish or undo a :class:`Replacement` a crash interrupted; True when one was undone."""
    journal = root / f".{name}.journal"
    done = root / f".{name}.done"
    if not journal.exists() and not done.exists():
        return False
    with locked(root / LOCK_NAME):
        shutil.rmtree(done, ignore_errors=True)  # committed: only the old copies were left
        if not journal.exists():
            return False
        _roll_back(root, journal)
        shutil.rmtree(root / f".{name}.staging", ignore_errors=True)  # its writer is dead
        return True


def _roll_back(root: Path, journal: Path) -> None:
    try:
        existed = json.loads((journal / JOURNAL_FILE).read_text(encoding="utf-8"))["existed"]
    except (OSError, ValueError, KeyError):
        existed = {}  # killed before the journal was written: nothing was moved yet
    for rel, was_there in existed.items():
        old = journal / rel
        current = root / rel
        if old.exists():
            _remove(current)
            old.rename(current)
        elif not was_there:
            _remove(current)  # new, and there was nothing before it
    fsync_dir(root)
    shutil.rmtree(journal, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
