"""Praat TextGrids: the intervals of one tier are segments of a recording.

Layouts read::

    story.TextGrid       one file; its recording has the same name beside it (any audio
    story.wav            extension), or is named with ``media`` (also for a folder that
                         holds just this one TextGrid)

    corpus/              a folder: every .TextGrid under it, sorted, each with its recording
      north/rec01.TextGrid   north/rec01.wav
      south/rec01.TextGrid   south/rec01.flac     (same basename: ids stay apart)

Both of Praat's text formats are read, in UTF-8 (with or without BOM) or UTF-16 (with BOM,
either byte order), including the TextGrids ELAN exports::

    File type = "ooTextFile"            File type = "ooTextFile"
    Object class = "TextGrid"           Object class = "TextGrid"

    xmin = 0                            0
    xmax = 3.5                          3.5
    tiers? <exists>                     <exists>
    size = 1                            1
    item []:                            "IntervalTier"
        item [1]:                       "words"
            class = "IntervalTier"      0
            name = "words"              3.5
            xmin = 0                    2
            xmax = 3.5                  0
            intervals: size = 2         1.2
            intervals [1]:              "a ""b"" c"
                xmin = 0                1.2
                xmax = 1.2              3.5
                text = "a ""b"" c"      ""
            ...
    (long format)                       (short format)

The transcription tier is chosen with ``tier``; with no option the only interval tier with
text is used, and a file with several stops the import with a list of its tiers. Blank
intervals are skipped and counted. TextGrids name no speaker: give one with ``speaker``, or
use each tier's name with ``speaker_from_tier``. Utterance ids are ``<file>__<tier>__<n>``:
the file's path relative to the folder, and n the interval's position in its tier.
"""

from __future__ import annotations

import bisect
import codecs
import re
from dataclasses import dataclass
from pathlib import Path

from data_recipes.annotations import (
    FileSkipped,
    annotation_files,
    file_key,
    inspected_files,
    media_beside,
    read_each,
    require_rows,
)
from data_recipes.common import ImportIssue, ImportResult, SourceRead, SourceRow, import_sources
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

TEXTGRID_SUFFIX = ".textgrid"
INTERVAL_TIER = "IntervalTier"
POINT_TIER = "TextTier"  # Praat's class name for point tiers

# Why a parser of our own rather than praatio: praatio opens files as UTF-16 first, which
# silently garbles BOM-less UTF-8 files of even length, and it finds tiers and texts by
# searching for markers ('item [', '"IntervalTier"', line positions) that a transcript may
# itself contain. Both Praat text formats are just a sequence of tokens (numbers, quoted
# strings with "" for a quote, <flags>), with 'key =' labels and '[n]:' in the long format
# that Praat's own reader skips; so a tokenizer that keeps those three kinds reads both.
_TOKEN = re.compile(r'"(?:[^"]|"")*"|!.*|\S+')  # string (may span lines) | comment | word
_STRING = re.compile(r'"(?:[^"]|"")*"')
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_SAVE_AGAIN = ("The file may be damaged or not a Praat TextGrid: open it in Praat and save "
               "it again (Save as text file).")


@dataclass(frozen=True)
class Interval:
    """One interval (or point, with start == end) of a tier."""

    start: float
    end: float
    text: str
    line: int  # line of the file where the interval begins


@dataclass(frozen=True)
class TextGridTier:
    """One tier: its class (IntervalTier or TextTier), name and entries."""

    kind: str
    name: str
    entries: tuple[Interval, ...]

    @property
    def filled(self) -> int:
        """Entries with some text."""
        return sum(1 for e in self.entries if e.text.strip())

    def describe(self) -> str:
        """One line for the tier lists shown in errors."""
        kind = "interval tier" if self.kind == INTERVAL_TIER else "point tier"
        return (f"{kind} {self.name!r} ({self.filled} non-empty of {len(self.entries)} "
                f"{'intervals' if self.kind == INTERVAL_TIER else 'points'})")


@dataclass(frozen=True)
class TextGrid:
    """What ``parse_textgrid`` read from one file."""

    path: Path
    xmin: float
    xmax: float
    tiers: tuple[TextGridTier, ...]


# --------------------------------------------------------------------------- public API


def read_textgrid(source: Path, *, tier: str | None = None, media: Path | str | None = None,
                  speaker: str | None = None, speaker_from_tier: bool = False) -> SourceRead:
    """Read one TextGrid, or every TextGrid under a folder, into segment rows.

    Args:
        source: a .TextGrid file or a folder holding TextGrids (searched recursively).
        tier: the name of the interval tier holding the transcription.
        media: the recording of a single TextGrid (or of a folder's only TextGrid), when it
            has another name.
        speaker: the speaker of every segment (TextGrids name none).
        speaker_from_tier: use the tier's name as the speaker instead.

    Returns:
        The rows (segments with start/end in seconds) and the problems found, each naming
        the file, tier and interval.

    Raises:
        WorkbenchError: the source is missing or unreadable, the chosen tier is a point
            tier, ``media`` is missing or named for a folder of several TextGrids, or (with
            no ``tier``) a file has several interval tiers with text: the message lists them.
    """
    source = Path(source)
    options = {"tier": tier, "speaker": speaker or "", "speaker_from_tier": speaker_from_tier}
    if source.is_dir():
        files = annotation_files(source, TEXTGRID_SUFFIX)
        if not files:
            raise WorkbenchError(f"{source}: no .TextGrid files found in this folder or below "
                                 "it.")
        if media is None:
            return read_each(source, files, lambda path: _read_one(
                path, file_key(path, source), None, **options))
        if len(files) > 1:
            raise WorkbenchError(
                f"{source}: a media file can be named for a single TextGrid only, and this "
                f"folder holds {len(files)} ({', '.join(p.name for p in files[:3])}"
                f"{', ...' if len(files) > 3 else ''}). Leave out the media option and put "
                "each TextGrid's recording beside it with the same name, or import the "
                "TextGrid alone with its media.")
        (grid,) = files
        rows, issues = _read_one(grid, file_key(grid, source), _media_file(media, grid),
                                 **options)
        require_rows(source, rows, issues)
        return SourceRead(rows, issues, id_root=source, name=source.name)
    if not source.is_file():
        raise WorkbenchError(f"{source}: no such file or folder.")
    media_path = _media_file(media, source) if media is not None else None
    rows, issues = _read_one(source, source.stem, media_path, **options)
    require_rows(source, rows, issues)
    return SourceRead(rows, issues, id_root=source.parent, name=source.stem)


def prepare_textgrid(source: Path, workspace: Workspace, *, seed: int = 0,
                     progress: bool = True, **options) -> ImportResult:
    """Import TextGrids into ``workspace`` (see ``read_textgrid`` for the options)."""
    return import_sources([read_textgrid(source, **options)], workspace, seed=seed,
                          progress=progress)


def textgrid_tiers(source: Path) -> list[str]:
    """The interval tiers of a TextGrid, or of a folder's first ``MAX_FILES_INSPECTED``.

    Returns:
        Tier names in first-seen order (files that cannot be read are passed over: the
        import reports them).
    """
    names: dict[str, None] = {}
    for path in inspected_files(Path(source), TEXTGRID_SUFFIX):
        try:
            grid = parse_textgrid(path)
        except WorkbenchError:
            continue
        names.update(dict.fromkeys(t.name for t in grid.tiers if t.kind == INTERVAL_TIER))
    return list(names)


def parse_textgrid(path: Path) -> TextGrid:
    """Parse a TextGrid in Praat's long or short text format.

    Raises:
        FileSkipped: the file is not a text TextGrid, not UTF-8/UTF-16, or damaged; the
            message names the line.
    """
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise FileSkipped("unreadable_textgrid", f"{path}: cannot be read ({err}).") from None
    text = decode_textgrid(raw, path)
    tokens = _Tokens(text, path)
    file_type = tokens.string("the file type (\"ooTextFile\")")
    object_class = tokens.string("the object class (\"TextGrid\")")
    if not file_type.startswith("ooTextFile") or object_class != "TextGrid":
        raise FileSkipped("unreadable_textgrid",
                          f"{path}: not a TextGrid (file type {file_type!r}, object class "
                          f"{object_class!r}). {_SAVE_AGAIN}")
    xmin, xmax = tokens.number("xmin"), tokens.number("xmax")
    has_tiers = tokens.flag() != "<absent>"
    count = tokens.count("the number of tiers") if has_tiers else 0
    tiers = tuple(_read_tier(tokens) for _ in range(count))
    return TextGrid(path, xmin, xmax, tiers)


def decode_textgrid(raw: bytes, path: Path) -> str:
    """The text of a TextGrid: UTF-8 (BOM or not) or UTF-16 (BOM, or guessed from NULs).

    Raises:
        FileSkipped: a binary TextGrid, or text in another encoding.
    """
    if raw.startswith(b"ooBinaryFile"):
        raise FileSkipped("unreadable_textgrid",
                          f"{path}: a binary TextGrid. In Praat, open it and use Save as text "
                          "file, then import that.")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif b"\x00" in raw[:64]:  # UTF-16 without BOM: ASCII letters have a NUL byte beside
        encoding = "utf-16-le" if raw[1:2] == b"\x00" else "utf-16-be"
    else:
        encoding = "utf-8-sig"
    try:
        return raw.decode(encoding).replace("\r\n", "\n")  # texts may span (Windows) lines
    except UnicodeDecodeError as err:
        raise FileSkipped(
            "unreadable_textgrid",
            f"{path}: not UTF-8 or UTF-16 text ({err.reason} at byte {err.start}). In Praat "
            "set Praat > Preferences > Text writing preferences to UTF-8, open the file and "
            "save it again.") from None


# --------------------------------------------------------------------------- one file


def _media_file(media: Path | str, grid: Path) -> Path:
    """The recording named with ``media`` for ``grid``.

    Raises:
        WorkbenchError: it does not exist.
    """
    path = Path(media).expanduser()
    if not path.is_file():
        raise WorkbenchError(f"{path}: the media file named for {grid} does not exist.")
    return path


def _read_one(path: Path, key: str, media: Path | None, *, tier: str | None, speaker: str,
              speaker_from_tier: bool) -> tuple[list[SourceRow], list[ImportIssue]]:
    grid = parse_textgrid(path)
    chosen = _choose_tier(grid, tier)
    media = media or media_beside(path)
    if media is None:
        raise FileSkipped("media_not_found",
                          f"{path}: its recording was not found: put it next to the TextGrid "
                          f"with the same name ({path.stem}.wav, .flac, .mp3 ...) and import "
                          "them together; on the command line --media names it.")
    who = chosen.name if speaker_from_tier else speaker
    rows, empty = [], 0
    for index, interval in enumerate(chosen.entries, start=1):
        if not interval.text.strip():
            empty += 1
            continue
        rows.append(SourceRow(
            audio=media, text=interval.text.strip(), speaker=who, line=interval.line,
            item=f"{path}:{interval.line}: tier {chosen.name!r}, interval {index}",
            utterance_id=f"{key}__{chosen.name}__{index}",
            start=interval.start, end=interval.end))
    issues = []
    if empty:
        issues.append(ImportIssue(f"{path}: tier {chosen.name!r}", "empty_intervals",
                                  f"{empty} intervals have no text (pauses or untranscribed)",
                                  "skipped"))
    return rows, issues


def _choose_tier(grid: TextGrid, name: str | None) -> TextGridTier:
    """The tier named ``name``, else the only interval tier with text.

    Raises:
        WorkbenchError: with no name, several interval tiers have text (they are listed).
        FileSkipped: the named tier is missing, repeated or a point tier; or no tier fits.
    """
    listing = "\n".join(f"  - {t.describe()}" for t in grid.tiers) or "  (none)"
    if name is None:
        candidates = [t for t in grid.tiers if t.kind == INTERVAL_TIER and t.filled]
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            raise WorkbenchError(
                f"{grid.path}: several interval tiers have text; choose the one holding the "
                f"transcription with --tier NAME. Tiers:\n{listing}")
        raise FileSkipped("no_intervals", f"{grid.path}: no interval tier has text (point "
                                          f"tiers cannot hold transcripts). Tiers:\n{listing}")
    matches = [t for t in grid.tiers if t.name == name]
    if not matches:
        raise FileSkipped("tier_not_found",
                          f"{grid.path}: no tier named {name!r}. Tiers:\n{listing}")
    if len(matches) > 1:
        raise FileSkipped("tier_not_found",
                          f"{grid.path}: {len(matches)} tiers are named {name!r}; rename them "
                          f"apart in Praat. Tiers:\n{listing}")
    if matches[0].kind != INTERVAL_TIER:
        raise FileSkipped("point_tier",
                          f"{grid.path}: tier {name!r} is a point tier: its labels mark "
                          "instants, not stretches of speech, so it cannot hold transcripts. "
                          f"Choose an interval tier. Tiers:\n{listing}")
    return matches[0]


# --------------------------------------------------------------------------- tokens


class _Tokens:
    """The numbers, strings and <flags> of a Praat text file, read in order."""

    def __init__(self, text: str, path: Path) -> None:
        self.path = path
        newlines = [m.start() for m in re.finditer("\n", text)]
        self.items: list[tuple[str, str, int]] = []  # (kind, value, line)
        for match in _TOKEN.finditer(text):
            word = match.group()
            line = bisect.bisect_left(newlines, match.start()) + 1
            kind = _kind(word)
            if kind == "open string":
                raise FileSkipped("unreadable_textgrid",
                                  f"{path}:{line}: a text opened with \" is never closed. "
                                  f"{_SAVE_AGAIN}")
            if kind:
                self.items.append((kind, word, line))
        self.position = 0

    @property
    def line(self) -> int:
        """Line of the next token (or of the last one at the end)."""
        if not self.items:
            return 1
        return self.items[min(self.position, len(self.items) - 1)][2]

    def _next(self, kind: str, what: str) -> str:
        if self.position >= len(self.items):
            raise FileSkipped("unreadable_textgrid",
                              f"{self.path}:{self.line}: the file ends where {what} was "
                              f"expected. {_SAVE_AGAIN}")
        found, value, line = self.items[self.position]
        if found != kind:
            raise FileSkipped("unreadable_textgrid",
                              f"{self.path}:{line}: expected {what} but found {value[:40]!r}. "
                              f"{_SAVE_AGAIN}")
        self.position += 1
        return value

    def string(self, what: str) -> str:
        return self._next("string", what)[1:-1].replace('""', '"')

    def number(self, what: str) -> float:
        return float(self._next("number", what))

    def count(self, what: str) -> int:
        value = self.number(what)
        if value < 0 or value != int(value):
            raise FileSkipped("unreadable_textgrid",
                              f"{self.path}:{self.line}: {what} is {value}, not a count. "
                              f"{_SAVE_AGAIN}")
        return int(value)

    def flag(self) -> str | None:
        """The next token if it is a <flag> (consumed), else None."""
        if self.position < len(self.items) and self.items[self.position][0] == "flag":
            self.position += 1
            return self.items[self.position - 1][1]
        return None


def _kind(word: str) -> str:
    """'string', 'number', 'flag', 'open string', or '' for labels Praat skips."""
    if word.startswith('"'):
        return "string" if _STRING.fullmatch(word) else "open string"
    if word.startswith("<"):
        return "flag"
    if _NUMBER.fullmatch(word):
        return "number"
    return ""  # 'xmin', '=', 'item', '[1]:', 'intervals:', 'tiers?', '!' comments


def _read_tier(tokens: _Tokens) -> TextGridTier:
    kind = tokens.string("a tier class (\"IntervalTier\" or \"TextTier\")")
    if kind not in (INTERVAL_TIER, POINT_TIER):
        raise FileSkipped("unreadable_textgrid",
                          f"{tokens.path}:{tokens.line}: unknown tier class {kind!r}. "
                          f"{_SAVE_AGAIN}")
    name = tokens.string("the tier name")
    tokens.number("the tier's xmin")
    tokens.number("the tier's xmax")
    size = tokens.count("the number of intervals or points")
    entries = []
    for _ in range(size):
        line = tokens.line
        if kind == INTERVAL_TIER:
            start, end = tokens.number("an interval's xmin"), tokens.number("an interval's xmax")
            entries.append(Interval(start, end, tokens.string("an interval's text"), line))
        else:
            time = tokens.number("a point's time")
            entries.append(Interval(time, time, tokens.string("a point's mark"), line))
    return TextGridTier(kind, name, tuple(entries))
