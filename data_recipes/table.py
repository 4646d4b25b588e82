"""Transcript tables: audiofolder layout and plain CSV/TSV files naming audio paths.

Layouts read::

    audiofolder/                         table.csv  (or .tsv)
      metadata.csv (.tsv, .jsonl)          path,text,speaker
      clips/a.wav                          clips/a.wav,hola,spk1
      b.flac                               /abs/b.mp3,chau,spk2

metadata columns: ``file_name,transcription[,speaker]`` (other names are recognised, see
the ``*_COLUMNS`` tuples, or chosen with ``--audio-column``/``--text-column``/
``--speaker-column``). Relative audio paths are relative to the table's folder.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from data_recipes.common import (
    ImportIssue,
    ImportResult,
    SourceRead,
    SourceRow,
    audio_files_under,
    import_sources,
)
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

AUDIO_COLUMNS = ("file_name", "path", "audio", "file", "filename", "audio_path", "wav")
TEXT_COLUMNS = ("transcription", "sentence", "text", "transcript", "normalized_text")
SPEAKER_COLUMNS = ("speaker", "speaker_id", "client_id", "participant")
METADATA_NAMES = ("metadata.csv", "metadata.tsv", "metadata.jsonl")


@dataclass(frozen=True)
class Columns:
    """Which table columns hold the audio path, the transcript and the speaker."""

    audio: str
    text: str
    speaker: str | None


def read_audiofolder(source: Path, *, audio_column: str | None = None,
                     text_column: str | None = None,
                     speaker_column: str | None = None) -> SourceRead:
    """Read a folder with ``metadata.csv``/``.tsv`` and audio files beside it.

    Audio files under the folder that no row names are reported as ``audio_without_row``.
    """
    source = Path(source)
    table = next((source / n for n in METADATA_NAMES if (source / n).is_file()), None)
    if table is None:
        raise WorkbenchError(
            f"{source}: no metadata.csv, .tsv or .jsonl found. An audiofolder needs a table "
            "with the columns file_name,transcription[,speaker] next to the audio files."
        )
    read = read_csv(table, audio_column=audio_column, text_column=text_column,
                    speaker_column=speaker_column)
    read.issues += _unlisted_audio(source, read.rows)
    read.name = source.name
    return read


def read_csv(source: Path, *, audio_column: str | None = None, text_column: str | None = None,
             speaker_column: str | None = None) -> SourceRead:
    """Read a CSV (or TSV) transcript table naming audio files."""
    table = Path(source)
    rows, issues = read_table(table, audio_column=audio_column, text_column=text_column,
                              speaker_column=speaker_column)
    return SourceRead(rows, issues, id_root=table.parent, name=table.stem)


read_tsv = read_csv


def prepare_audiofolder(source: Path, workspace: Workspace, *, seed: int = 0,
                        progress: bool = True, **columns) -> ImportResult:
    """Import an audiofolder into ``workspace`` (see ``read_audiofolder``)."""
    return import_sources([read_audiofolder(source, **columns)], workspace, seed=seed,
                          progress=progress)


def prepare_csv(source: Path, workspace: Workspace, *, seed: int = 0, progress: bool = True,
                **columns) -> ImportResult:
    """Import a CSV/TSV transcript table into ``workspace`` (see ``read_csv``)."""
    return import_sources([read_csv(source, **columns)], workspace, seed=seed,
                          progress=progress)


prepare_tsv = prepare_csv


def read_table(
    table: Path,
    *,
    audio_column: str | None = None,
    text_column: str | None = None,
    speaker_column: str | None = None,
) -> tuple[list[SourceRow], list[ImportIssue]]:
    """Parse a transcript table (CSV, TSV or JSON lines); bad rows become issues naming
    file and line."""
    if not table.is_file():
        raise WorkbenchError(f"{table}: file not found.")
    text, issues = _read_text(table)
    if table.suffix.lower() == ".jsonl":
        records = _jsonl_records(text, table, issues)
    else:
        records = _csv_records(text, table)
    header = next(records, None)
    if not header or not header[1]:
        raise WorkbenchError(f"{table}: the table is empty; it needs a header row.")
    header = [h.strip() for h in header[1]]
    columns = _choose_columns(header, table, audio_column, text_column, speaker_column)
    rows = []
    for line_number, record in records:
        if not any(str(cell).strip() for cell in record):
            continue
        row = _row_from_record(record, header, columns, table, line_number)
        (rows if isinstance(row, SourceRow) else issues).append(row)
    return rows, issues


def _csv_records(text: str, table: Path):
    """(line number, fields) pairs; the first is the header. Quoted newlines are kept."""
    reader = csv.reader(io.StringIO(text, newline=""), _sniff_dialect(text, table))
    line = 1
    for record in reader:
        yield line, record
        line = reader.line_num + 1


def _jsonl_records(text: str, table: Path, issues: list[ImportIssue]):
    """JSON lines as (line number, values) pairs, after a header made of all keys seen."""
    parsed = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            issues.append(ImportIssue(f"{table}:{number}", "malformed_row",
                                      f"not valid JSON ({err.msg})"))
            continue
        if not isinstance(record, dict):
            issues.append(ImportIssue(f"{table}:{number}", "malformed_row",
                                      "each line must be a JSON object"))
            continue
        parsed.append((number, record))
    if not parsed:
        return
    keys = list(dict.fromkeys(k for _, record in parsed for k in record))
    yield 0, keys
    for number, record in parsed:
        yield number, ["" if record.get(k) is None else str(record[k]) for k in keys]


def _read_text(table: Path) -> tuple[str, list[ImportIssue]]:
    """The table's text: UTF-8 (BOM or not), UTF-16 with BOM, else Windows-1252 with a note."""
    raw = table.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), []
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
    try:
        text = raw.decode("cp1252")
    except UnicodeDecodeError:
        raise WorkbenchError(
            f"{table}, line {line}: not UTF-8 text. Save the table as UTF-8 (in a "
            "spreadsheet: 'CSV UTF-8') and import again."
        ) from None
    note = ImportIssue(str(table), "encoding_guessed",
                       f"not UTF-8 (first bad byte on line {line}); read as Windows-1252. "
                       "Check accented letters in the transcripts, or save the table as UTF-8",
                       action="imported (check the characters)")
    return text, [note]


def _sniff_dialect(text: str, table: Path) -> type[csv.Dialect] | csv.Dialect:
    if table.suffix.lower() == ".tsv":
        return csv.excel_tab
    first_line = text.splitlines()[0] if text.strip() else ""
    if "\t" in first_line and "," not in first_line:
        return csv.excel_tab
    try:
        return csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        return csv.excel


def _choose_columns(header, table, audio, text, speaker) -> Columns:
    def pick(explicit, candidates, what, required=True):
        if explicit:
            if explicit not in header:
                raise WorkbenchError(
                    f"{table}: no column named {explicit!r} for the {what}. "
                    f"Columns found: {', '.join(header)}."
                )
            return explicit
        lowered = {h.lower(): h for h in header}
        found = next((lowered[c] for c in candidates if c in lowered), None)
        if found is None and required:
            raise WorkbenchError(
                f"{table}: cannot tell which column holds the {what}. Columns found: "
                f"{', '.join(header)}. Name it with --{what.split()[0]}-column."
            )
        return found

    return Columns(
        audio=pick(audio, AUDIO_COLUMNS, "audio path"),
        text=pick(text, TEXT_COLUMNS, "text (transcript)"),
        speaker=pick(speaker, SPEAKER_COLUMNS, "speaker", required=False),
    )


def _row_from_record(record, header, columns, table, line_number) -> SourceRow | ImportIssue:
    item = f"{table}:{line_number}"
    if len(record) != len(header):
        return ImportIssue(item, "malformed_row",
                           f"{len(record)} fields where the header has {len(header)}; "
                           "check for an unquoted delimiter in the transcript")
    values = dict(zip(header, record, strict=True))
    audio_name = values[columns.audio].strip()
    if not audio_name:
        return ImportIssue(item, "malformed_row", "the audio path is empty")
    audio = Path(audio_name)
    if not audio.is_absolute():
        audio = table.parent / audio
    speaker = values[columns.speaker].strip() if columns.speaker else ""
    return SourceRow(audio=audio, text=values[columns.text], speaker=speaker, item=item,
                     line=line_number)


def _unlisted_audio(root: Path, rows: list[SourceRow]) -> list[ImportIssue]:
    listed = {row.audio.resolve() for row in rows}
    return [
        ImportIssue(str(path), "audio_without_row",
                    "no row of the metadata table names this file; add its transcript to "
                    "import it")
        for path in audio_files_under(root)
        if path.resolve() not in listed
    ]
