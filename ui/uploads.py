"""Uploaded sources: copied into the workspace, inspected, then imported with the recipes.

An upload is everything the user dropped on the page at once. Its files are copied into the
workspace, archives are extracted there safely (``data_recipes.archive``), and the import
reads only from those folders::

    <workspace>/uploads/<time>/          the uploaded files, as uploaded (names made safe)
    <workspace>/sources/<time>-<stem>/   what each uploaded archive holds

A table or annotation file may name audio anywhere (``/home/me/rec.wav``, ``clips/a.wav``).
Rows are kept only when their audio lies inside the upload; a name that does not resolve
there is looked up among the uploaded files by file name (browsers upload files without their
folders), and a row whose audio is elsewhere on the server is reported, never read.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from data_recipes import READERS, SOURCES_DIR, detect_format, hf_dataset, read_source
from data_recipes.archive import archive_stem, content_root, extract_archive, is_archive
from data_recipes.common import AUDIO_EXTENSIONS, ImportIssue, SourceRead, import_sources
from data_recipes.elan import elan_choices
from data_recipes.options import ImportOptions as ReaderOptions
from data_recipes.table import METADATA_NAMES
from data_recipes.textgrid import textgrid_tiers
from ui.messages import for_page
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace, new_stamped_dir

UPLOADS_DIR = "uploads"
TABLE_SUFFIXES = (".csv", ".tsv")
AUTO = "auto"


@dataclass(frozen=True)
class ImportOptions(ReaderOptions):
    """What the user chose: the readers' options (``data_recipes.options``), the format
    (None: detected) and the seed of the split."""

    fmt: str | None = None
    seed: int = 0


@dataclass
class SourceInfo:
    """One source found in an upload, and the choices it offers."""

    path: Path
    label: str
    fmt: str = ""
    problem: str = ""
    columns: list[str] = field(default_factory=list)
    tiers: list[str] = field(default_factory=list)
    participants: list[str] = field(default_factory=list)
    linguistic_types: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)


@dataclass
class UploadInfo:
    """What an upload holds."""

    name: str
    files: list[str]
    sources: list[SourceInfo]

    def choices(self, attribute: str) -> list[str]:
        """Every value of a SourceInfo list attribute over the sources, in first-seen order."""
        seen: dict[str, None] = {}
        for source in self.sources:
            seen.update(dict.fromkeys(getattr(source, attribute)))
        return list(seen)

    @property
    def formats(self) -> list[str]:
        return [s.fmt for s in self.sources if s.fmt]


# --------------------------------------------------------------------------- staging


def uploads_dir(ws: Workspace) -> Path:
    return ws.root / UPLOADS_DIR


def stage_upload(ws: Workspace, files: Sequence[str | Path]) -> str:
    """Copy uploaded files into ``<workspace>/uploads/<time>/`` and extract archives.

    Args:
        ws: The workspace.
        files: Paths of the uploaded files (Gradio's temporary copies).

    Returns:
        The upload's name.

    Raises:
        WorkbenchError: Nothing was uploaded, or an archive is unsafe or damaged (then
            nothing of the upload is kept: its folder and what its archives gave are
            removed, and the message names the archive by its file name).
    """
    paths = [Path(f) for f in files or [] if f]
    if not paths:
        raise WorkbenchError("Choose the files to upload first: a zip archive, or audio files "
                             "with a CSV/TSV table, ELAN (.eaf) or Praat (.TextGrid) files.")
    folder = _new_upload_dir(ws)
    try:
        for path in paths:
            target = _free_name(folder, safe_file_name(path.name))
            shutil.copyfile(path, target)
        for archive in sorted(p for p in folder.iterdir() if is_archive(p)):
            _extract_upload(ws, folder, archive)
    except BaseException:
        _discard_upload(ws, folder)
        raise
    return folder.name


def _extract_upload(ws: Workspace, folder: Path, archive: Path) -> None:
    """Extract one archive of an upload; a refusal names it by the name it was uploaded as."""
    try:
        extract_archive(archive, ws.root / SOURCES_DIR,
                        folder_name=_archive_folder(ws, folder.name, archive))
    except WorkbenchError as err:
        message = str(err).replace(str(archive), archive.name)
        raise WorkbenchError(f"{message} The upload was not kept.") from err


def _discard_upload(ws: Workspace, folder: Path) -> None:
    """Remove an upload that failed, with what its archives were extracted to."""
    if folder.is_dir():
        for extracted in _extraction_folders(ws, folder.name):
            shutil.rmtree(extracted, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)


def safe_file_name(name: str) -> str:
    """One harmless path component for an uploaded file's name."""
    cleaned = re.sub(r"[^\w.()+ -]+", "_", Path(name).name, flags=re.UNICODE)
    cleaned = cleaned.strip().lstrip(".")
    return cleaned or "file"


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    stem, suffix, count = target.stem, target.suffix, 1
    while target.exists():
        count += 1
        target = folder / f"{stem}-{count}{suffix}"
    return target


def _archive_folder(ws: Workspace, upload: str, archive: Path) -> str:
    """Extraction folder name for an archive of an upload (unique within the upload)."""
    base = f"{upload}-{safe_file_name(archive_stem(archive))}"
    archives = sorted(p for p in (uploads_dir(ws) / upload).iterdir() if is_archive(p))
    same = [p for p in archives if safe_file_name(archive_stem(p)) == safe_file_name(
        archive_stem(archive))]
    index = same.index(archive)
    return base if index == 0 else f"{base}-{index + 1}"


def _new_upload_dir(ws: Workspace) -> Path:
    return new_stamped_dir(uploads_dir(ws))


def list_uploads(ws: Workspace) -> list[str]:
    """Upload names, newest first."""
    folder = uploads_dir(ws)
    if not folder.is_dir():
        return []
    return sorted((p.name for p in folder.iterdir() if p.is_dir()), reverse=True)


def upload_folder(ws: Workspace, name: str) -> Path:
    """The folder of upload ``name`` (only names that exist are accepted).

    Raises:
        WorkbenchError: There is no such upload.
    """
    if name not in list_uploads(ws):
        raise WorkbenchError(f"There is no upload {name!r} in this workspace; upload the "
                             "files again.")
    return uploads_dir(ws) / name


# --------------------------------------------------------------------------- sources


def upload_sources(ws: Workspace, name: str) -> list[Path]:
    """The sources an upload holds: each archive's content, then the loose files.

    Raises:
        WorkbenchError: The loose files hold several tables (import them one at a time).
    """
    folder = upload_folder(ws, name)
    entries = sorted(p for p in folder.iterdir() if p.is_file())
    sources = [content_root(folder) for folder in _extraction_folders(ws, name)]
    loose = [p for p in entries if not is_archive(p)]
    if loose:
        sources.append(_loose_source(folder, loose))
    return sources


def upload_roots(ws: Workspace, name: str) -> list[Path]:
    """The folders an upload occupies: its own and those its archives were extracted to."""
    return [upload_folder(ws, name), *_extraction_folders(ws, name)]


def _extraction_folders(ws: Workspace, name: str) -> list[Path]:
    folder = upload_folder(ws, name)
    archives = sorted(p for p in folder.iterdir() if p.is_file() and is_archive(p))
    return [ws.root / SOURCES_DIR / _archive_folder(ws, name, p) for p in archives]


def _loose_source(folder: Path, files: list[Path]) -> Path:
    """What to read among loose uploaded files: a metadata folder, a table, or the folder."""
    if any(p.name.lower() in METADATA_NAMES for p in files):
        return folder
    tables = [p for p in files if p.suffix.lower() in TABLE_SUFFIXES]
    if len(tables) > 1:
        raise WorkbenchError(
            f"The upload holds {len(tables)} tables ({', '.join(p.name for p in tables)}); "
            "upload one table at a time, with the audio files it names."
        )
    return tables[0] if tables else folder


def inspect_upload(ws: Workspace, name: str) -> UploadInfo:
    """The files of an upload and, per source, its format and the choices it offers."""
    folder = upload_folder(ws, name)
    files = sorted(p.name for p in folder.iterdir() if p.is_file())
    try:
        sources = upload_sources(ws, name)
    except WorkbenchError as err:
        return UploadInfo(name, files, [SourceInfo(folder, name, problem=for_page(err))])
    return UploadInfo(name, files, [inspect_source(ws, path) for path in sources])


def inspect_source(ws: Workspace, path: Path) -> SourceInfo:
    """Format, table columns and annotation tiers of one source."""
    info = SourceInfo(path, _label(ws, path))
    try:
        info.fmt = detect_format(path)
    except WorkbenchError as err:
        info.problem = for_page(err)
        return info
    if info.fmt in ("csv", "tsv"):
        info.columns = table_header(path)
    elif info.fmt == "audiofolder":
        table = next(path / n for n in METADATA_NAMES if (path / n).is_file())
        info.columns = table_header(table)
    elif info.fmt == "elan":
        _elan_choices(path, info)
    elif info.fmt == "textgrid":
        info.tiers = _textgrid_tiers(path)
    elif info.fmt == hf_dataset.FORMAT:
        info.columns, info.splits = hf_dataset.describe(path)
    return info


def _label(ws: Workspace, path: Path) -> str:
    try:
        return str(path.relative_to(ws.root))
    except ValueError:
        return path.name


def table_header(table: Path) -> list[str]:
    """Column names of a CSV/TSV table or the keys of a JSON-lines table ([] if unreadable)."""
    try:
        text = table.read_text(encoding="utf-8-sig", errors="replace")
    except OSError:
        return []
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    if table.suffix.lower() == ".jsonl":
        try:
            record = json.loads(lines[0])
        except json.JSONDecodeError:
            return []
        return [str(k) for k in record] if isinstance(record, dict) else []
    delimiter = "\t" if table.suffix.lower() == ".tsv" or "\t" in lines[0] else None
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(lines[0], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    return [h.strip() for h in next(csv.reader([lines[0]], delimiter=delimiter)) if h.strip()]


def _elan_choices(path: Path, info: SourceInfo) -> None:
    choices = elan_choices(path)
    info.tiers, info.participants, info.linguistic_types = (
        choices["tiers"], choices["participants"], choices["linguistic_types"])


def _textgrid_tiers(path: Path) -> list[str]:
    return textgrid_tiers(path)


# --------------------------------------------------------------------------- import


def import_uploads(ws: Workspace, names: Sequence[str], options: ImportOptions) -> dict:
    """Import the sources of the chosen uploads together into the workspace.

    The workspace's data is replaced by what these uploads hold (as `workbench prepare`
    does), and the choices are recorded in ``workbench.yaml``.

    Returns:
        The import summary (``ImportResult.summary()``).

    Raises:
        WorkbenchError: No upload chosen, an unknown format, or nothing could be imported.
    """
    if not names:
        raise WorkbenchError("Choose at least one upload to import.")
    if options.fmt is not None and options.fmt not in READERS:
        raise WorkbenchError(f"Unknown format {options.fmt!r}; choose one of "
                             f"{', '.join(READERS)}.")
    sources = [source for name in names for source in upload_sources(ws, name)]
    allowed = [root for name in names for root in upload_roots(ws, name)]
    allowed += [hf_dataset.clips_folder(ws, source) for source in sources]  # audio it wrote
    try:
        reads = [read_source(source, options.fmt, workspace=ws, **options.reader_options())
                 for source in sources]
        reads = [confine_rows(read, allowed) for read in reads]
        settings = {"seed": options.seed,
                    "sources": [{"path": str(s), "format": options.fmt or AUTO}
                                for s in sources]}
        result = import_sources(reads, ws, seed=options.seed, progress=False,
                                settings=settings)
    except WorkbenchError as err:
        raise WorkbenchError(str(err), page=for_page(err)) from err
    return result.summary()


def confine_rows(read: SourceRead, allowed: Sequence[Path]) -> SourceRead:
    """Keep only rows whose audio lies inside ``allowed`` folders (found by name if need be).

    Args:
        read: What a recipe read.
        allowed: The folders the upload occupies.

    Returns:
        A copy whose rows all point inside ``allowed``; rows naming audio elsewhere are
        reported as ``audio_not_uploaded`` issues.
    """
    roots = [Path(p).resolve() for p in allowed]
    by_name = _audio_by_name(roots)
    rows, issues = [], list(read.issues)
    for row in read.rows:
        audio = row.audio.resolve()
        inside = any(audio.is_relative_to(root) for root in roots)
        if inside and audio.is_file():
            rows.append(row)
            continue
        found = by_name.get(row.audio.name, [])
        if len(found) == 1:
            rows.append(replace(row, audio=found[0]))
        elif inside:
            rows.append(row)  # missing inside the upload: the importer reports it
        else:
            issues.append(ImportIssue(
                row.item or row.audio.name, "audio_not_uploaded",
                f"the audio {row.audio.name!r} it names was not uploaded with it; upload the "
                "recording together with its transcripts"))
    return SourceRead(rows, issues, read.id_root, read.name)


def _audio_by_name(roots: Iterable[Path]) -> dict[str, list[Path]]:
    found: dict[str, set[Path]] = {}
    for root in roots:
        for path in root.rglob("*"):
            if path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file():
                found.setdefault(path.name, set()).add(path.resolve())
    return {name: sorted(paths) for name, paths in found.items()}
