"""ELAN annotation files (.eaf): the annotations of one tier are segments of a recording.

Layouts read::

    session.eaf          one file; its recording is found through the .eaf's media link
    session.wav          (RELATIVE_MEDIA_URL, then MEDIA_URL, then the same name beside it)

    corpus/              a folder: every .eaf under it, sorted, each with its own recording
      village1/rec01.eaf   village1/rec01.wav
      village2/rec01.eaf   village2/rec01.wav      (same basename: ids stay apart)
      story.eaf            media/story.wav         (RELATIVE_MEDIA_URL="../media/story.wav")

Inside an .eaf::

    <ANNOTATION_DOCUMENT>
      <HEADER><MEDIA_DESCRIPTOR MEDIA_URL="file:///..." RELATIVE_MEDIA_URL="./rec01.wav"/>
      <TIME_ORDER><TIME_SLOT TIME_SLOT_ID="ts1" TIME_VALUE="1200"/> ... (milliseconds)
      <TIER TIER_ID="Maria" PARTICIPANT="Maria" LINGUISTIC_TYPE_REF="utterance">
        <ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a1" TIME_SLOT_REF1="ts1"
            TIME_SLOT_REF2="ts2"><ANNOTATION_VALUE>allin p'unchaw</ANNOTATION_VALUE> ...
      <TIER TIER_ID="gloss" PARENT_REF="Maria" LINGUISTIC_TYPE_REF="translation">
        <ANNOTATION><REF_ANNOTATION ANNOTATION_ID="a9" ANNOTATION_REF="a1"> ...
      <LINGUISTIC_TYPE LINGUISTIC_TYPE_ID="translation" CONSTRAINTS="Symbolic_Association"/>

Which tier holds the transcription is chosen with ``tier`` (its TIER_ID), ``participant``
or ``linguistic_type`` (every tier matching all the given options, one per speaker); with no
option the only tier with time-aligned, non-empty annotations is used, and a file with
several such tiers stops the import with a list of its tiers. A tier's PARTICIPANT becomes
the speaker. Annotations on Symbolic_Association tiers take the time of their parent
annotation. Utterance ids are ``<file>__<tier>__<n>``: the file's path relative to the
folder, and n the annotation's position in its tier.

The XML is parsed with ``defusedxml`` only: files declaring entities (external-entity or
"billion laughs" payloads) are refused, never expanded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, parse

from data_recipes.common import (
    AUDIO_EXTENSIONS,
    ImportIssue,
    ImportResult,
    SourceRead,
    SourceRow,
    import_sources,
)
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

EAF_SUFFIX = ".eaf"
SYMBOLIC_ASSOCIATION = "Symbolic_Association"
MS_PER_SECOND = 1000.0  # EAF time slots and TIME_ORIGIN are in milliseconds
# When several recordings share the .eaf's name, the first of these is used.
PREFERRED_AUDIO = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".aif", ".aiff",
                   ".wma", ".webm")
MAX_LISTED_PROBLEMS = 3  # problems quoted in an error when a whole folder gave nothing


class FileSkipped(WorkbenchError):
    """A problem with one file of a folder: reported, and the other files still read.

    Reading a single file raises it like any ``WorkbenchError``.
    """

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check


@dataclass(frozen=True)
class Annotation:
    """One annotation as the .eaf stores it; times in milliseconds, None when unknown."""

    id: str
    index: int  # 1-based position in its tier (document order), for stable ids
    value: str
    start_ms: float | None = None
    end_ms: float | None = None
    parent_id: str = ""  # ANNOTATION_REF of a REF_ANNOTATION
    time_problem: str = ""  # why start/end are unknown


@dataclass(frozen=True)
class Tier:
    """One tier: its name (TIER_ID), who speaks, its type and its annotations."""

    name: str
    participant: str
    linguistic_type: str
    constraint: str  # CONSTRAINTS of the linguistic type; "" for independent tiers
    parent: str
    annotations: tuple[Annotation, ...]

    @property
    def filled(self) -> int:
        """Annotations with some text."""
        return sum(1 for a in self.annotations if a.value.strip())

    @property
    def aligned_filled(self) -> int:
        """Time-aligned (ALIGNABLE) annotations with some text."""
        return sum(1 for a in self.annotations if a.value.strip() and not a.parent_id)

    def describe(self) -> str:
        """One line for the tier lists shown in errors."""
        return (f"tier {self.name!r} (participant {self.participant or '-'!r}, "
                f"linguistic type {self.linguistic_type or '-'!r}, "
                f"{self.filled} non-empty annotations of {len(self.annotations)})")


@dataclass(frozen=True)
class MediaLink:
    """One MEDIA_DESCRIPTOR of the header."""

    url: str
    relative_url: str
    mime_type: str
    time_origin_ms: float


@dataclass(frozen=True)
class EafDocument:
    """What ``parse_eaf`` read from one .eaf file."""

    path: Path
    tiers: tuple[Tier, ...]
    media: tuple[MediaLink, ...]

    def tier(self, name: str) -> Tier | None:
        return next((t for t in self.tiers if t.name == name), None)


# --------------------------------------------------------------------------- public API


def read_elan(source: Path, *, tier: str | None = None, participant: str | None = None,
              linguistic_type: str | None = None) -> SourceRead:
    """Read one .eaf file, or every .eaf under a folder, into segment rows.

    Args:
        source: an .eaf file or a folder holding .eaf files (searched recursively).
        tier: the TIER_ID of the transcription tier.
        participant: use the tiers of this PARTICIPANT.
        linguistic_type: use the tiers of this LINGUISTIC_TYPE_REF.

    Returns:
        The rows (segments with start/end in seconds) and the problems found, each naming
        the file, tier and annotation.

    Raises:
        WorkbenchError: the source is missing or unreadable, or (with no option) a file has
            several candidate tiers: the message lists them.
    """
    source = Path(source)
    options = {"tier": tier, "participant": participant, "linguistic_type": linguistic_type}
    if source.is_dir():
        files = annotation_files(source, EAF_SUFFIX)
        if not files:
            raise WorkbenchError(f"{source}: no .eaf files found in this folder or below it.")
        return read_each(source, files, lambda path: _read_one(path, file_key(path, source),
                                                               **options))
    if not source.is_file():
        raise WorkbenchError(f"{source}: no such file or folder.")
    rows, issues = _read_one(source, source.stem, **options)
    require_rows(source, rows, issues)
    return SourceRead(rows, issues, id_root=source.parent, name=source.stem)


def prepare_elan(source: Path, workspace: Workspace, *, seed: int = 0, progress: bool = True,
                 **options) -> ImportResult:
    """Import ELAN files into ``workspace`` (see ``read_elan`` for the options)."""
    return import_sources([read_elan(source, **options)], workspace, seed=seed,
                          progress=progress)


def parse_eaf(path: Path) -> EafDocument:
    """Parse an .eaf file safely (defusedxml) into tiers with their annotations' times.

    Raises:
        FileSkipped: the file is not well-formed XML, not an ELAN file, or declares XML
            entities (refused unexpanded).
    """
    root = _parse_xml(path)
    slots = {slot.get("TIME_SLOT_ID", ""): slot.get("TIME_VALUE")
             for slot in root.iter("TIME_SLOT")}
    constraints = {lt.get("LINGUISTIC_TYPE_ID", ""): lt.get("CONSTRAINTS", "")
                   for lt in root.iter("LINGUISTIC_TYPE")}
    tiers = tuple(_tier(element, slots, constraints) for element in root.iter("TIER"))
    media = tuple(MediaLink(d.get("MEDIA_URL", ""), d.get("RELATIVE_MEDIA_URL", ""),
                            d.get("MIME_TYPE", ""), _number(d.get("TIME_ORIGIN")) or 0.0)
                  for d in root.iter("MEDIA_DESCRIPTOR"))
    return EafDocument(path, tiers, media)


def choose_tiers(doc: EafDocument, *, tier: str | None = None, participant: str | None = None,
                 linguistic_type: str | None = None) -> list[Tier]:
    """The tiers to import from ``doc`` (see the module docstring for the rules).

    Raises:
        WorkbenchError: with no option, several tiers qualify (the message lists them); or
            the options pick several tiers of one speaker.
        FileSkipped: no tier matches the options, or no tier has annotations.
    """
    if tier is None and participant is None and linguistic_type is None:
        return [_only_candidate(doc)]
    matched = [t for t in doc.tiers
               if (tier is None or t.name == tier)
               and (participant is None or t.participant == participant)
               and (linguistic_type is None or t.linguistic_type == linguistic_type)]
    wanted = ", ".join(f"{name} {value!r}" for name, value in
                       (("tier", tier), ("participant", participant),
                        ("linguistic type", linguistic_type)) if value is not None)
    if not matched:
        raise FileSkipped("tier_not_found",
                          f"{doc.path}: no tier with {wanted}. Its tiers:\n"
                          + _tier_list(doc.tiers))
    used = [t for t in matched if t.filled]
    if not used:
        raise FileSkipped("no_annotations",
                          f"{doc.path}: the tiers with {wanted} have no non-empty annotations:"
                          "\n" + _tier_list(matched))
    _one_tier_per_speaker(doc, used)
    return used


# --------------------------------------------------------------------------- folders

# Shared with data_recipes/textgrid.py (they would sit well in common.py, which other
# recipes could then use too).


def annotation_files(folder: Path, suffix: str) -> list[Path]:
    """Files under ``folder`` whose suffix is ``suffix`` (any case), sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() == suffix and p.is_file())


def file_key(path: Path, folder: Path) -> str:
    """The id part naming ``path``: relative to ``folder``, without suffix, '/' -> '__'."""
    return "__".join(path.relative_to(folder).with_suffix("").parts)


FileReader = Callable[[Path], tuple[list[SourceRow], list[ImportIssue]]]


def read_each(folder: Path, files: list[Path], read_one: FileReader) -> SourceRead:
    """Read every file of a folder; a file that cannot be used becomes one issue.

    Raises:
        WorkbenchError: no file gave any row (the first problems are quoted).
    """
    rows: list[SourceRow] = []
    issues: list[ImportIssue] = []
    for path in files:
        try:
            file_rows, file_issues = read_one(path)
        except FileSkipped as err:
            issues.append(ImportIssue(str(path), err.check, str(err), "file not imported"))
            continue
        rows += file_rows
        issues += file_issues
    require_rows(folder, rows, issues)
    return SourceRead(rows, issues, id_root=folder, name=folder.name)


def require_rows(source: Path, rows: list[SourceRow], issues: list[ImportIssue]) -> None:
    """Stop with the reasons when a source gave no segment at all.

    Raises:
        WorkbenchError: ``rows`` is empty; the first problems are quoted.
    """
    if rows:
        return
    shown = "\n".join(f"- {issue.item}: {issue.detail}" if issue.item not in issue.detail
                      else f"- {issue.detail}" for issue in issues[:MAX_LISTED_PROBLEMS])
    raise WorkbenchError(f"{source}: no transcribed segment could be read. First problems:\n"
                         f"{shown or '- (none reported)'}")


def media_beside(path: Path) -> Path | None:
    """A recording with the same name as ``path`` (any audio extension) in its folder."""
    found = {p.suffix.lower(): p for p in path.parent.glob(f"{_glob_escape(path.stem)}.*")
             if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()}
    return next((found[ext] for ext in PREFERRED_AUDIO if ext in found), None)


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


# --------------------------------------------------------------------------- one file


def _read_one(path: Path, key: str, **options) -> tuple[list[SourceRow], list[ImportIssue]]:
    doc = parse_eaf(path)
    tiers = choose_tiers(doc, **options)
    media, origin_ms = _find_media(doc)
    times = _annotation_times(doc)
    rows: list[SourceRow] = []
    issues: list[ImportIssue] = []
    for tier in tiers:
        tier_rows, tier_issues = _tier_rows(doc, tier, times, media, origin_ms, key)
        rows += tier_rows
        issues += tier_issues
    return rows, issues


def _tier_rows(doc: EafDocument, tier: Tier, times: dict, media: Path, origin_ms: float,
               key: str) -> tuple[list[SourceRow], list[ImportIssue]]:
    """Rows for one tier's annotations; problems become issues naming the annotation."""
    speaker = tier.participant or _parent_participant(doc, tier)
    rows, issues, empty = [], [], 0
    unsupported = 0
    for annotation in tier.annotations:
        item = f"{doc.path}: tier {tier.name!r}, annotation {annotation.id}"
        if not annotation.value.strip():
            empty += 1
            continue
        if annotation.parent_id and tier.constraint != SYMBOLIC_ASSOCIATION:
            unsupported += 1
            continue
        start_ms, end_ms, problem = times.get(annotation.id, (None, None, "unknown annotation"))
        if problem:
            issues.append(ImportIssue(item, "missing_time", problem))
            continue
        rows.append(SourceRow(
            audio=media, text=annotation.value.strip(), speaker=speaker, item=item,
            utterance_id=f"{key}__{tier.name}__{annotation.index}",
            start=(start_ms + origin_ms) / MS_PER_SECOND,
            end=(end_ms + origin_ms) / MS_PER_SECOND))
    issues += _overlaps(rows)
    if empty:
        issues.append(ImportIssue(f"{doc.path}: tier {tier.name!r}", "empty_annotations",
                                  f"{empty} annotations have no text", "skipped"))
    if unsupported:
        issues.append(ImportIssue(
            f"{doc.path}: tier {tier.name!r}", "unsupported_tier",
            f"{unsupported} annotations have no time of their own (linguistic type "
            f"{tier.linguistic_type!r}, constraint {tier.constraint!r}); only "
            "Symbolic_Association tiers take their parent's time. Choose the time-aligned "
            "tier with --tier"))
    return rows, issues


def _overlaps(rows: list[SourceRow]) -> list[ImportIssue]:
    """Segments of one tier that overlap an earlier one (the one reaching furthest)."""
    issues = []
    ordered = sorted(rows, key=lambda r: (r.start, r.end))
    reaching: SourceRow | None = None  # the earlier segment that ends last
    for row in ordered:
        if reaching is not None and row.start < reaching.end:
            issues.append(ImportIssue(
                row.item, "overlapping_annotations",
                f"{row.start:.3f}-{row.end:.3f} s overlaps {reaching.item.rsplit(', ', 1)[-1]}"
                f" ({reaching.start:.3f}-{reaching.end:.3f} s); both kept, the shared audio "
                "is in both clips", "kept (warning)"))
        if reaching is None or row.end > reaching.end:
            reaching = row
    return issues


def _annotation_times(doc: EafDocument) -> dict[str, tuple[float | None, float | None, str]]:
    """(start_ms, end_ms, problem) per annotation id; REF annotations take their parent's."""
    by_id = {a.id: a for t in doc.tiers for a in t.annotations}
    resolved: dict[str, tuple[float | None, float | None, str]] = {}
    for annotation_id in by_id:
        resolved[annotation_id] = _times_of(annotation_id, by_id)
    return resolved


def _times_of(annotation_id: str, by_id: dict[str, Annotation]):
    seen = set()
    current = by_id.get(annotation_id)
    while current is not None and current.parent_id:
        if current.id in seen:
            return None, None, "its ANNOTATION_REF chain loops back on itself"
        seen.add(current.id)
        parent = by_id.get(current.parent_id)
        if parent is None:
            return None, None, (f"its parent annotation {current.parent_id} (ANNOTATION_REF) "
                                "is not in the file")
        current = parent
    if current is None:
        return None, None, "the annotation is not in the file"
    if current.time_problem:
        via = "" if current.id == annotation_id else f" (parent annotation {current.id})"
        return None, None, current.time_problem + via
    return current.start_ms, current.end_ms, ""


def _parent_participant(doc: EafDocument, tier: Tier) -> str:
    parent = doc.tier(tier.parent) if tier.parent else None
    return parent.participant if parent else ""


def _only_candidate(doc: EafDocument) -> Tier:
    candidates = [t for t in doc.tiers if t.aligned_filled]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise FileSkipped("no_annotations",
                          f"{doc.path}: no tier has time-aligned annotations with text. Its "
                          "tiers:\n" + _tier_list(doc.tiers))
    raise WorkbenchError(
        f"{doc.path}: several tiers have time-aligned annotations; choose the one holding the "
        "transcription with --tier NAME (or all tiers of a kind with --participant / "
        "--linguistic-type). Tiers:\n" + _tier_list(doc.tiers))


def _one_tier_per_speaker(doc: EafDocument, tiers: list[Tier]) -> None:
    """Refuse a choice that takes two tiers of one speaker (e.g. transcription + translation)."""
    by_speaker: dict[str, list[Tier]] = {}
    for tier in tiers:
        by_speaker.setdefault(tier.participant, []).append(tier)
    shared = next((group for group in by_speaker.values() if len(group) > 1), None)
    if shared:
        raise WorkbenchError(
            f"{doc.path}: the options pick {len(shared)} tiers of participant "
            f"{shared[0].participant or '(none)'!r}, so a translation or a second layer could "
            "be imported as transcription. Narrow the choice with --tier, --participant or "
            "--linguistic-type. Tiers picked:\n" + _tier_list(shared))


def _tier_list(tiers) -> str:
    return "\n".join(f"  - {t.describe()}" for t in tiers) or "  (none)"


# --------------------------------------------------------------------------- media


def _find_media(doc: EafDocument) -> tuple[Path, float]:
    """The recording and its TIME_ORIGIN (ms), from the media links, else by name.

    Raises:
        FileSkipped: nothing found; the message says what was tried.
    """
    tried: list[str] = []
    # Audio links first: a video linked beside the audio would need ffmpeg to decode.
    links = sorted(doc.media, key=lambda m: not _looks_like_audio(m))
    for link in links:
        for candidate in _link_candidates(doc.path, link):
            if candidate.is_file():
                return candidate, link.time_origin_ms
            tried.append(str(candidate))
    beside = media_beside(doc.path)
    if beside is not None:
        return beside, 0.0
    tried.append(str(doc.path.with_suffix(".wav")) + " (or another audio extension)")
    raise FileSkipped("media_not_found",
                      f"{doc.path}: its recording was not found. Tried: {'; '.join(tried)}. "
                      "Put the recording next to the .eaf with the same name, or fix the "
                      "link in ELAN (Edit > Linked Files).")


def _looks_like_audio(link: MediaLink) -> bool:
    suffix = Path(_url_path(link.relative_url or link.url)).suffix.lower()
    return link.mime_type.startswith("audio") or suffix in AUDIO_EXTENSIONS


def _link_candidates(eaf: Path, link: MediaLink) -> list[Path]:
    """Where a media link may point: relative URL, absolute URL, its basename beside."""
    candidates = []
    if link.relative_url:
        candidates.append(eaf.parent / _url_path(link.relative_url))
    if link.url:
        absolute = _url_path(link.url)
        if Path(absolute).is_absolute():  # not C:/... on Linux, which would name a cwd file
            candidates.append(Path(absolute))
        # The .eaf and its media were copied together from another machine.
        candidates.append(eaf.parent / re.split(r"[\\/]", absolute)[-1])
    return list(dict.fromkeys(candidates))


def _url_path(url: str) -> str:
    """The path of a file: URL (or of a plain path), percent-decoded."""
    if url.lower().startswith("file:"):
        parsed = urlparse(url)
        path = unquote(parsed.path)
        # file:///C:/x.wav -> C:/x.wav (Windows drive letters)
        return path[1:] if re.match(r"^/[A-Za-z]:[\\/]", path) else path
    return unquote(url)


# --------------------------------------------------------------------------- XML


def _parse_xml(path: Path) -> Element:
    try:
        root = parse(str(path)).getroot()
    except DefusedXmlException as err:
        raise FileSkipped(
            "unsafe_xml",
            f"{path}: refused: the file declares XML entities ({type(err).__name__}), which "
            "ELAN never writes and which can read other files or exhaust memory. It was not "
            "read. If it came from ELAN, save it again there; otherwise do not use it.") from None
    except ParseError as err:
        raise FileSkipped("unreadable_eaf",
                          f"{path}: not well-formed XML ({err}); open it in ELAN and save it "
                          "again.") from None
    except OSError as err:
        raise FileSkipped("unreadable_eaf", f"{path}: cannot be read ({err}).") from None
    if root.tag != "ANNOTATION_DOCUMENT":
        raise FileSkipped("unreadable_eaf",
                          f"{path}: not an ELAN file (its root element is <{root.tag}>, not "
                          "<ANNOTATION_DOCUMENT>).")
    return root


def _tier(element: Element, slots: dict[str, str | None],
          constraints: dict[str, str]) -> Tier:
    linguistic_type = element.get("LINGUISTIC_TYPE_REF", "")
    annotations = tuple(
        _annotation(inner, index, slots)
        for index, inner in enumerate(
            (child for wrapper in element.findall("ANNOTATION") for child in wrapper), start=1))
    return Tier(name=element.get("TIER_ID", ""), participant=element.get("PARTICIPANT", ""),
                linguistic_type=linguistic_type,
                constraint=constraints.get(linguistic_type, ""),
                parent=element.get("PARENT_REF", ""), annotations=annotations)


def _annotation(element: Element, index: int, slots: dict[str, str | None]) -> Annotation:
    value = element.findtext("ANNOTATION_VALUE") or ""
    annotation_id = element.get("ANNOTATION_ID", f"#{index}")
    if element.tag == "REF_ANNOTATION":
        return Annotation(annotation_id, index, value,
                          parent_id=element.get("ANNOTATION_REF", "") or "?")
    start, start_problem = _slot_time(element.get("TIME_SLOT_REF1"), slots)
    end, end_problem = _slot_time(element.get("TIME_SLOT_REF2"), slots)
    problem = "; ".join(p for p in (start_problem, end_problem) if p)
    return Annotation(annotation_id, index, value, start, end, time_problem=problem)


def _slot_time(ref: str | None, slots: dict[str, str | None]) -> tuple[float | None, str]:
    if not ref:
        return None, "it names no time slot"
    if ref not in slots:
        return None, f"time slot {ref} is missing from the TIME_ORDER"
    value = _number(slots[ref])
    if value is None:
        return None, (f"time slot {ref} has no time value (unaligned); align the annotation "
                      "in ELAN")
    return value, ""


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None
