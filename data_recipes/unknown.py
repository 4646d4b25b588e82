"""Why a folder is no source the recipes know: the message ``detect_format`` raises.

A folder without a transcript table, Common Voice, Kaldi or annotation files is often a
folder of recordings alone, or of one file that is not a recording at all (0 bytes, a text
file renamed .wav). The message then names those files and what is wrong with each rather
than the formats the folder is not. Messages are for the command line; ``page=`` carries the
browser page's wording (upload, not import; no folder path).
"""

from __future__ import annotations

from pathlib import Path

from data_recipes.common import audio_files_under
from workbench.audio import open_audio
from workbench.errors import WorkbenchError

PROBED_FILES = 5  # audio files opened to tell a recording from a file that is not one
NAMED_FILES = 3  # files named in a message before "and N more"
TRANSCRIPT_FILES = "a CSV/TSV table, ELAN or TextGrid file"


def unknown_folder_error(folder: Path, formats: list[str]) -> WorkbenchError:
    """The error for a folder whose format cannot be told (``formats``: the known ones)."""
    nested = _nested_table(folder)
    if nested is not None:
        where = nested.parent.relative_to(folder).as_posix()
        return WorkbenchError(
            f"{folder}: cannot tell the format of this folder, but {where}/ holds "
            f"{nested.name}: import {folder / where} instead, or choose a format with "
            "--format (" + ", ".join(formats) + ").",
            page=f"The transcripts table {nested.name} is in the folder {where}/ of this "
                 "upload, not at its top: zip that folder and upload it, or choose the "
                 "'Format'.")
    audio = audio_files_under(folder)
    if not audio:
        return WorkbenchError(
            f"{folder}: cannot tell the format of this folder (no metadata.csv, Common "
            "Voice validated.tsv, Kaldi wav.scp and text, .eaf or .TextGrid files). Choose "
            "one with --format (" + ", ".join(formats) + ").",
            page="Cannot tell what this upload holds: no audio files, and no metadata.csv, "
                 "CSV/TSV table, ELAN, TextGrid, Common Voice or Kaldi files. Upload the "
                 "recordings together with their transcripts, or choose the 'Format'.")
    empty, unreadable, readable = _sort_audio(folder, audio)
    found = []
    if empty:
        found.append(f"{_names(empty)} {_be(empty)} empty (0 bytes)")
    if unreadable:
        kind = "an audio file" if len(unreadable) == 1 else "audio files"
        found.append(f"{_names(unreadable)} {_be(unreadable)} not {kind} ffmpeg can read")
    bad = len(empty) + len(unreadable)
    cli = ("put a metadata.csv (columns file_name,transcription) beside {it}, or import "
           f"{TRANSCRIPT_FILES} that names {{it}}")
    return WorkbenchError(f"{folder}: " + _sentences(found, bad, readable, cli),
                          page=_sentences(found, bad, readable,
                                          f"upload {{it}} together with {TRANSCRIPT_FILES}"))


def _nested_table(folder: Path, depth: int = 3) -> Path | None:
    """The shallowest metadata table (``metadata.csv`` and the like) below ``folder``."""
    from data_recipes.table import METADATA_NAMES

    for level in range(1, depth + 1):
        pattern = "/".join(["*"] * level)
        found = sorted(p for name in METADATA_NAMES for p in folder.glob(f"{pattern}/{name}"))
        if found:
            return found[0]
    return None


def _sort_audio(folder: Path, audio: list[Path]) -> tuple[list[str], list[str], list[str]]:
    """Names (relative to ``folder``) of the empty, unreadable and readable audio files;
    files beyond the first :data:`PROBED_FILES` non-empty ones count as readable."""
    empty, unreadable, readable = [], [], []
    probed = 0
    for path in audio:
        name = path.relative_to(folder).as_posix()
        if path.stat().st_size == 0:
            empty.append(name)
        elif probed < PROBED_FILES:
            probed += 1
            (readable if _readable(path) else unreadable).append(name)
        else:
            readable.append(name)
    return empty, unreadable, readable


def _readable(path: Path) -> bool:
    try:
        open_audio(path).close()
    except WorkbenchError:
        return False
    return True


def _sentences(found: list[str], bad: int, readable: list[str], advice: str) -> str:
    """What is wrong with the files, then what to do (``advice``, ``{it}`` to fill in);
    ``bad``: how many files ``found`` names."""
    text = "".join(f"{item}. " for item in found)  # file names keep their case
    if readable:
        it, have = ("it", "has") if len(readable) == 1 else ("them", "have")
        return text + f"{_names(readable)} {have} no transcript: {advice.format(it=it)}."
    it, use = ("it", "the recording itself") if bad == 1 else ("them", "the recordings themselves")
    return text + f"Use {use}: {advice.format(it=it)}."


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:NAMED_FILES])
    more = len(names) - NAMED_FILES
    return f"{shown} and {more} more" if more > 0 else shown


def _be(names: list[str]) -> str:
    return "is" if len(names) == 1 else "are"
