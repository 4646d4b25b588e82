"""``--into FILE``: the new tiers added to the user's own ELAN file or TextGrid, all else kept.

The result is a new file beside the user's (or in ``out_dir``); the user's file is only read::

    interview.eaf                   the user's file
    interview.<run>.eaf             a copy with two tiers more: <run> (utterances) and
                                    <run>-words (words, each inside its utterance)
    interview.TextGrid              the same for Praat
    interview.<run>.TextGrid

How each format is merged: :mod:`workbench.writers_into_eaf` (the new elements spliced into
the file's own bytes) and :mod:`workbench.writers_into_textgrid` (every tier read and written
back as Praat writes it, in the file's own format and encoding).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.fsio import write_bytes_atomic
from workbench.writers import TimedTranscript, refuse_existing
from workbench.writers_into_eaf import check_eaf, render_eaf_into
from workbench.writers_into_textgrid import check_textgrid, render_textgrid_into

FORMATS = {".eaf": "eaf", ".textgrid": "textgrid"}  # suffix (any case) -> format
_RENDER = {"eaf": render_eaf_into, "textgrid": render_textgrid_into}
_CHECK = {"eaf": check_eaf, "textgrid": check_textgrid}


def into_format(existing: Path) -> str:
    """``eaf`` or ``textgrid``, from the file's extension.

    Raises:
        WorkbenchError: neither an .eaf nor a .TextGrid file.
    """
    kind = FORMATS.get(Path(existing).suffix.lower())
    if kind is None:
        raise WorkbenchError(
            f"{existing}: --into takes an ELAN file (.eaf) or a Praat TextGrid (.TextGrid).",
            page=f"{Path(existing).name}: choose an ELAN file (.eaf) or a Praat TextGrid "
                 "(.TextGrid) to add the tiers to.")
    return kind


def into_path(existing: Path, tier: str, out_dir: Path | None = None) -> Path:
    """``<out_dir or the file's folder>/<file's stem>.<tier>.<file's extension>``.

    Raises:
        WorkbenchError: not an .eaf or .TextGrid, or the result would be ``existing`` itself.
    """
    existing = Path(existing)
    into_format(existing)
    folder = Path(out_dir) if out_dir else existing.parent
    path = folder / f"{existing.stem}.{_file_name_part(tier)}{existing.suffix}"
    if path.resolve() == existing.resolve() or (
            path.exists() and existing.exists() and os.path.samefile(path, existing)):
        raise WorkbenchError(f"{path} is the file the tiers are added to; it is never "
                             "replaced. Choose another output folder (-o).")
    return path


def check_into(existing: Path) -> None:
    """Read ``existing`` as :func:`write_into` will, so that a file it cannot use stops a
    command before the transcription.

    Raises:
        WorkbenchError: not .eaf/.TextGrid, missing, unreadable, unsafe or damaged; the
            message names the file and says what to do.
    """
    existing = Path(existing)
    kind = into_format(existing)
    _CHECK[kind](_read(existing), existing)


def write_into(transcript: TimedTranscript, existing: Path, out_dir: Path | None = None, *,
               force: bool = False) -> Path:
    """Write a copy of ``existing`` (.eaf or .TextGrid) with the transcript's two tiers added.

    The copy is :func:`into_path` (``<stem>.<run>.<extension>`` beside ``existing`` or in
    ``out_dir``), written atomically; ``existing`` itself is never written.

    Raises:
        WorkbenchError: the file is not .eaf/.TextGrid, missing, unreadable, unsafe or
            damaged; the copy exists and ``force`` is False; or a time cannot be placed.
    """
    existing = Path(existing)
    render = _RENDER[into_format(existing)]
    path = into_path(existing, transcript.tier, out_dir)
    refuse_existing(path, force)
    merged = render(transcript, _read(existing), existing)
    write_bytes_atomic(path, merged)
    return path


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise WorkbenchError(f"{path}: no such file; give the .eaf or .TextGrid to add the "
                             "tiers to.") from None
    except OSError as err:
        raise WorkbenchError(f"{path}: cannot be read ({err.strerror or err}); check that it "
                             "is a file you may read.") from None


def _file_name_part(name: str) -> str:
    """``name`` as part of a file name: only letters, digits, ``.``, ``-`` and ``_``."""
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "workbench"
