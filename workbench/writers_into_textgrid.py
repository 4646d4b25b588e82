"""``--into FILE.TextGrid``: the transcript's tiers added to the user's own TextGrid.

Long or short text format, UTF-8 (BOM or not) or UTF-16; every tier is read (interval and
point tiers) and written back as Praat writes it, in the file's own format, encoding and line
ends, with the two new interval tiers after the file's own (see
:func:`workbench.writers.textgrid_tiers`); a tier name already taken gets ``-2``, ``-3`` ...
A file Praat saved comes back with its lines unchanged but the tier count. If the recording
is longer than the TextGrid, the TextGrid and each of its tiers are extended to the recording's
end (an interval tier with an empty interval), as Praat's Extend time does. Comments (``!``)
are not kept.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.writers import (
    INTERVAL_TIER,
    POINT_TIER,
    PraatTier,
    TimedTranscript,
    free_name,
    praat_textgrid,
    textgrid_tiers,
    words_tier_name,
)

EXTEND_TOLERANCE_S = 0.001  # a recording longer than a TextGrid by less does not extend it
_SAVE_TEXTGRID = ("Open it in Praat and save it again (Save as text file), then run this "
                  "again.")


def render_textgrid_into(transcript: TimedTranscript, data: bytes, source: Path) -> bytes:
    """The bytes of the TextGrid ``data`` (read from ``source``) with the transcript's tiers,
    in the file's own format, encoding and line ends.

    Raises:
        WorkbenchError: a binary, damaged or non-UTF TextGrid; the message says what to do.
    """
    text, codec, bom = _textgrid_text(data, source)
    grid = _read_textgrid(text, source)
    lo, hi = _domain(grid, transcript)
    tiers = grid.tiers
    if (lo, hi) != (grid.xmin, grid.xmax):
        tiers = [_extended(tier, lo, hi) for tier in tiers]
    name = free_name(transcript.tier, {tier.name for tier in tiers}, words_tier_name)
    out = praat_textgrid(lo, hi, tiers + textgrid_tiers(transcript, name, lo, hi),
                         short=grid.short, file_type=grid.file_type)
    newline = "\r\n" if "\r\n".encode(codec) in data else "\n"
    return bom + out.replace("\n", newline).encode(codec)


def _domain(grid: _Grid, t: TimedTranscript) -> tuple[float, float]:
    """The TextGrid's time domain, widened to the recording and its transcript if they
    reach past it (by more than a rounding error)."""
    words = [w for s in t.segments for w in s.words]
    lo = min([grid.xmin, *(round(x.start, 3) for x in [*t.segments, *words])])
    hi = max([grid.xmax, round(t.duration, 3), *(round(x.end, 3) for x in [*t.segments,
                                                                         *words])])
    return (grid.xmin if grid.xmin - lo < EXTEND_TOLERANCE_S else lo,
            grid.xmax if hi - grid.xmax < EXTEND_TOLERANCE_S else hi)


def check_textgrid(data: bytes, source: Path) -> None:
    """Raise the error :func:`render_textgrid_into` would raise for an unusable file."""
    _read_textgrid(_textgrid_text(data, source)[0], source)


@dataclass
class _Grid:
    file_type: str
    xmin: float
    xmax: float
    tiers: list[PraatTier]
    short: bool


_TOKEN = re.compile(r'"(?:[^"]|"")*"|!.*|\S+')  # string (may span lines) | comment | word
_STRING = re.compile(r'"(?:[^"]|"")*"')
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _textgrid_text(data: bytes, source: Path) -> tuple[str, str, bytes]:
    """The text of a TextGrid (newlines as ``\\n``), its encoding and its byte-order mark."""
    if data.startswith(b"ooBinaryFile"):
        raise WorkbenchError(f"{source}: a binary TextGrid. In Praat, open it and use Save as "
                             "text file, then run this again with that file.")
    codec, bom = "utf-8", b""
    for mark, name in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                       (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(mark):
            codec, bom = name, mark
            break
    else:
        if b"\x00" in data[:64]:  # UTF-16 without BOM: ASCII letters have a NUL beside
            codec = "utf-16-le" if data[1:2] == b"\x00" else "utf-16-be"
    try:
        return data[len(bom):].decode(codec).replace("\r\n", "\n"), codec, bom
    except UnicodeDecodeError as err:
        raise WorkbenchError(
            f"{source}: not UTF-8 or UTF-16 text ({err.reason} at byte {err.start}). In Praat "
            "set Praat > Preferences > Text writing preferences to UTF-8, open the file, save "
            "it again and run this again.") from None


def _read_textgrid(text: str, source: Path) -> _Grid:
    """Every tier of a TextGrid in Praat's long or short text format."""
    values = _Values(text, source)
    file_type = values.take("string", 'the file type ("ooTextFile")')
    object_class = values.take("string", 'the object class ("TextGrid")')
    if not file_type.startswith("ooTextFile") or object_class != "TextGrid":
        raise WorkbenchError(f"{source}: not a TextGrid (file type {file_type!r}, object class "
                             f"{object_class!r}). {_SAVE_TEXTGRID}")
    short = 2 not in values.labelled  # the long format labels the TextGrid's xmin
    xmin, xmax = values.take("number", "the xmin"), values.take("number", "the xmax")
    tiers = []
    if values.take("flag", "<exists>") != "<absent>":
        tiers = [_read_tier(values) for _ in range(values.count("the number of tiers"))]
    return _Grid(file_type, xmin, xmax, tiers, short)


def _read_tier(values: _Values) -> PraatTier:
    kind = values.take("string", 'a tier class ("IntervalTier" or "TextTier")')
    if kind not in (INTERVAL_TIER, POINT_TIER):
        raise WorkbenchError(f"{values.source}: unknown tier class {kind!r}. {_SAVE_TEXTGRID}")
    name = values.take("string", "the tier name")
    xmin, xmax = values.take("number", "a tier's xmin"), values.take("number", "a tier's xmax")
    entries = []
    for _ in range(values.count("the number of intervals or points")):
        if kind == INTERVAL_TIER:
            start = values.take("number", "an interval's xmin")
            end = values.take("number", "an interval's xmax")
            entries.append((start, end, values.take("string", "an interval's text")))
        else:
            time = values.take("number", "a point's time")
            entries.append((time, time, values.take("string", "a point's mark")))
    return PraatTier(kind, name, xmin, xmax, entries)


class _Values:
    """The strings, numbers and <flags> of a Praat text file, in order.

    Both of Praat's text formats are that sequence; the long one adds labels (``xmin =``,
    ``item [1]:``) that Praat's own reader skips, and so does this one.
    """

    def __init__(self, text: str, source: Path) -> None:
        self.text, self.source = text, source
        self.items: list[tuple[str, Any, int]] = []  # kind, value, offset in the text
        self.labelled: set[int] = set()  # positions in items that a label stood before
        for match in _TOKEN.finditer(text):
            word = match.group()
            if word.startswith('"'):
                if not _STRING.fullmatch(word):
                    raise WorkbenchError(f"{source}:{self.line(match.start())}: a text opened "
                                         f"with \" is never closed. {_SAVE_TEXTGRID}")
                self.items.append(("string", word[1:-1].replace('""', '"'), match.start()))
            elif word.startswith("<"):
                self.items.append(("flag", word, match.start()))
            elif _NUMBER.fullmatch(word):
                self.items.append(("number", float(word), match.start()))
            elif not word.startswith("!"):  # a comment is skipped; a label noted
                self.labelled.add(len(self.items))
        self.position = 0

    def take(self, kind: str, what: str) -> Any:
        """The next value, which must be of ``kind`` (string, number or flag)."""
        if self.position >= len(self.items):
            raise WorkbenchError(f"{self.source}: the file ends where {what} was expected. "
                                 f"{_SAVE_TEXTGRID}")
        found, value, offset = self.items[self.position]
        if found != kind:
            raise WorkbenchError(f"{self.source}:{self.line(offset)}: expected {what} but found "
                                 f"{str(value)[:40]!r}. {_SAVE_TEXTGRID}")
        self.position += 1
        return value

    def count(self, what: str) -> int:
        value = self.take("number", what)
        if value < 0 or value != int(value):
            raise WorkbenchError(f"{self.source}: {what} is {value}, not a count. "
                                 f"{_SAVE_TEXTGRID}")
        return int(value)

    def line(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1


def _extended(tier: PraatTier, lo: float, hi: float) -> PraatTier:
    """``tier`` over ``lo``..``hi`` at least: an interval tier gets empty intervals there."""
    entries = list(tier.entries)
    if tier.kind == INTERVAL_TIER:
        if tier.xmin > lo:
            entries.insert(0, (lo, tier.xmin, ""))
        if tier.xmax < hi:
            entries.append((tier.xmax, hi, ""))
    return PraatTier(tier.kind, tier.name, min(tier.xmin, lo), max(tier.xmax, hi), entries)
