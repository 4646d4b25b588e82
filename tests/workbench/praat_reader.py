"""praatio as the independent reader of the TextGrids the workbench writes."""

from __future__ import annotations

import codecs
import tempfile
from pathlib import Path

from praatio.textgrid import Textgrid, openTextgrid


def praat_open(path: Path) -> Textgrid:
    """praatio's reading of a TextGrid, checked strictly (``reportingMode="error"``).

    praatio opens every file as UTF-16 first, which garbles a BOM-less UTF-8 file of even
    length instead of failing; so a UTF-8 file is handed to it as a UTF-16 copy.
    """
    data = Path(path).read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return openTextgrid(str(path), includeEmptyIntervals=True, reportingMode="error")
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "copy.TextGrid"
        copy.write_bytes(data.decode("utf-8-sig").encode("utf-16"))
        return openTextgrid(str(copy), includeEmptyIntervals=True, reportingMode="error")
