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
option the only tier with time-aligned, non-empty annotations is used (or, when the others
all depend on one independent tier, that one: an utterance tier with its word tiers, as
``workbench transcribe --output eaf`` writes; noted in the report), and a file with several
unrelated such tiers stops the import with a list of its tiers. A tier's PARTICIPANT becomes
the speaker. Utterance ids are ``<file>__<tier>__<n>``: the file's path relative to the
folder, and n the annotation's position in its tier.

Times, as ELAN shows them (``data_recipes.eaf.annotation_times``):

- An ALIGNABLE annotation has the times of its two time slots. On a dependent tier
  (Time_Subdivision, Included_In) a slot may have no TIME_VALUE: ELAN then shows a time
  spaced evenly, in whole milliseconds, between the nearest slots with a time before and
  after it among the slots of that tier under the same parent annotation (the parent's
  slots, which a subdivision shares, bound them). Those times are used and the tier's
  annotations that got them are counted in an ``interpolated_times`` issue; a slot with no
  such bound (or on an independent tier) gives ``missing_time``.
- A REF annotation takes its time only through a chain of Symbolic_Association links up to
  an ALIGNABLE annotation. A chain through a Symbolic_Subdivision (or any other) annotation
  has no time: each word of a subdivision would get the whole utterance, so such tiers are
  refused as ``unsupported_tier``, with the chain named.

Overlaps are reported, both kept: two annotations of one tier (``overlapping_annotations``)
and annotations of two chosen tiers, two speakers (``speaker_overlap``), since each clip then
holds the other's voice too.

The recording is the file the media link names: where the link points, else beside the
.eaf; failing that a stand-in, reported as ``media_substituted``: a file of that name
elsewhere under the folder imported (not one beside an .eaf of its own name), a file of the
same name with another extension (the named extension first), or one named like the .eaf
(with no link at all, this one is simply used).

The XML is parsed (``data_recipes.eaf``) with ``defusedxml`` only: files declaring entities
(external-entity or "billion laughs" payloads) are refused, never expanded.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from data_recipes.annotations import (
    FileSkipped,
    annotation_files,
    audio_by_name,
    file_key,
    inspected_files,
    media_beside,
    overlaps_between,
    overlaps_within,
    read_each,
    require_rows,
)
from data_recipes.common import (
    AUDIO_EXTENSIONS,
    ImportIssue,
    ImportResult,
    SourceRead,
    SourceRow,
    import_sources,
)
from data_recipes.eaf import (
    EafDocument,
    MediaLink,
    Tier,
    Timing,
    annotation_times,
    parse_eaf,
)
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

EAF_SUFFIX = ".eaf"
MS_PER_SECOND = 1000.0  # EAF time slots and TIME_ORIGIN are in milliseconds
# Folder levels below a single .eaf searched for the recording its link names.
MEDIA_SEARCH_DEPTH = 2


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
        search = _MediaSearch(source)
        return read_each(source, files, lambda path: _read_one(
            path, file_key(path, source), search, **options))
    if not source.is_file():
        raise WorkbenchError(f"{source}: no such file or folder.")
    search = _MediaSearch(source.parent, MEDIA_SEARCH_DEPTH)
    rows, issues = _read_one(source, source.stem, search, **options)
    require_rows(source, rows, issues)
    return SourceRead(rows, issues, id_root=source.parent, name=source.stem)


def prepare_elan(source: Path, workspace: Workspace, *, seed: int = 0, progress: bool = True,
                 **options) -> ImportResult:
    """Import ELAN files into ``workspace`` (see ``read_elan`` for the options)."""
    return import_sources([read_elan(source, **options)], workspace, seed=seed,
                          progress=progress)


def elan_choices(source: Path) -> dict[str, list[str]]:
    """What can be chosen in an .eaf, or in a folder's first ``MAX_FILES_INSPECTED``.

    Returns:
        ``tiers``, ``participants`` and ``linguistic_types``: names in first-seen order
        (files that cannot be read are passed over: the import reports them).
    """
    choices: dict[str, dict[str, None]] = {"tiers": {}, "participants": {},
                                           "linguistic_types": {}}
    for eaf in inspected_files(Path(source), EAF_SUFFIX):
        try:
            doc = parse_eaf(eaf)
        except WorkbenchError:
            continue
        for tier in doc.tiers:
            for key, value in (("tiers", tier.name), ("participants", tier.participant),
                               ("linguistic_types", tier.linguistic_type)):
                if value or key == "tiers":
                    choices[key][value] = None
    return {key: list(values) for key, values in choices.items()}


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


# --------------------------------------------------------------------------- one file


def _read_one(path: Path, key: str, search: _MediaSearch,
              **options) -> tuple[list[SourceRow], list[ImportIssue]]:
    doc = parse_eaf(path)
    tiers = choose_tiers(doc, **options)
    media, origin_ms, issues = _find_media(doc, search)
    issues += _choice_note(doc, tiers, options)
    times = annotation_times(doc)
    rows: list[SourceRow] = []
    by_tier: dict[str, list[SourceRow]] = {}
    for tier in tiers:
        tier_rows, tier_issues = _tier_rows(doc, tier, times, media, origin_ms, key)
        rows += tier_rows
        issues += tier_issues
        by_tier[tier.name] = tier_rows
    if len(by_tier) > 1:
        issues += overlaps_between(path, by_tier)
    return rows, issues


def _choice_note(doc: EafDocument, tiers: list[Tier], options: dict) -> list[ImportIssue]:
    """Why a tier was taken when no option chose it and its dependents had text too."""
    others = [t.name for t in doc.tiers if t.aligned_filled and t not in tiers]
    if any(options.get(k) for k in ("tier", "participant", "linguistic_type")) or not others:
        return []
    return [ImportIssue(f"{doc.path}: tier {tiers[0].name!r}", "tier_chosen",
                        f"the only independent tier with text; its dependent tiers "
                        f"{', '.join(map(repr, others))} were not imported (choose one with "
                        "--tier)", "kept (note)")]


def _tier_rows(doc: EafDocument, tier: Tier, times: dict[str, Timing], media: Path,
               origin_ms: float, key: str) -> tuple[list[SourceRow], list[ImportIssue]]:
    """Rows for one tier's annotations; problems become issues naming the annotation."""
    speaker = tier.participant or _parent_participant(doc, tier)
    rows, issues, empty, interpolated = [], [], 0, 0
    untimed: list[str] = []
    for annotation in tier.annotations:
        item = f"{doc.path}: tier {tier.name!r}, annotation {annotation.id}"
        if not annotation.value.strip():
            empty += 1
            continue
        timing = times.get(annotation.id, Timing(problem="the annotation is not in the file"))
        if timing.untimed:
            untimed.append(timing.untimed)
            continue
        if timing.problem:
            issues.append(ImportIssue(item, "missing_time", timing.problem))
            continue
        interpolated += timing.interpolated
        rows.append(SourceRow(
            audio=media, text=annotation.value.strip(), speaker=speaker, item=item,
            utterance_id=f"{key}__{tier.name}__{annotation.index}",
            start=(timing.start_ms + origin_ms) / MS_PER_SECOND,
            end=(timing.end_ms + origin_ms) / MS_PER_SECOND))
    issues += overlaps_within(rows)
    where = f"{doc.path}: tier {tier.name!r}"
    if empty:
        issues.append(ImportIssue(where, "empty_annotations",
                                  f"{empty} annotations have no text", "skipped"))
    if interpolated:
        issues.append(ImportIssue(
            where, "interpolated_times",
            f"{interpolated} annotations have time slots without a time (unaligned); they "
            "were given the times ELAN shows for them, spaced evenly between the nearest "
            "aligned times of their parent annotation. Listen to a few of these clips; align "
            "the annotations in ELAN for exact times", "kept (times interpolated)"))
    if untimed:
        issues.append(ImportIssue(
            where, "unsupported_tier",
            f"{len(untimed)} annotations have no time of their own: {untimed[0]}. A time "
            "passes only through Symbolic_Association links up to a time-aligned annotation."
            " Choose the time-aligned tier with --tier"))
    return rows, issues


# --------------------------------------------------------------------------- tiers


def _parent_participant(doc: EafDocument, tier: Tier) -> str:
    parent = doc.tier(tier.parent) if tier.parent else None
    return parent.participant if parent else ""


def _only_candidate(doc: EafDocument) -> Tier:
    candidates = [t for t in doc.tiers if t.aligned_filled]
    if len(candidates) == 1:
        return candidates[0]
    top = _top_of_one_family(doc, candidates)
    if top is not None:
        return top
    if not candidates:
        raise FileSkipped("no_annotations",
                          f"{doc.path}: no tier has time-aligned annotations with text. Its "
                          "tiers:\n" + _tier_list(doc.tiers))
    raise WorkbenchError(
        f"{doc.path}: several tiers have time-aligned annotations; choose the one holding the "
        "transcription with --tier NAME (or all tiers of a kind with --participant / "
        "--linguistic-type). Tiers:\n" + _tier_list(doc.tiers))


def _top_of_one_family(doc: EafDocument, candidates: list[Tier]) -> Tier | None:
    """The independent tier when every other candidate depends on it (an utterance tier
    with its word or morpheme tiers, as ``workbench transcribe --output eaf`` writes)."""
    def root(tier: Tier) -> str:
        seen = set()
        while tier.parent and tier.name not in seen and doc.tier(tier.parent) is not None:
            seen.add(tier.name)
            tier = doc.tier(tier.parent)
        return tier.name

    independent = [t for t in candidates if not t.parent]
    if len(independent) == 1 and all(root(t) == independent[0].name for t in candidates):
        return independent[0]
    return None


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


class _MediaSearch:
    """The audio files under the folder imported, by name (listed once, when first asked)."""

    def __init__(self, root: Path, max_depth: int | None = None) -> None:
        self.root, self.max_depth = root, max_depth
        self._by_name: dict[str, list[Path]] | None = None

    def named(self, name: str) -> list[Path]:
        if self._by_name is None:
            self._by_name = audio_by_name(self.root, self.max_depth)
        return self._by_name.get(name, [])


def _find_media(doc: EafDocument,
                search: _MediaSearch) -> tuple[Path, float, list[ImportIssue]]:
    """The recording, its TIME_ORIGIN (ms) and, when not the file linked, an issue saying so.

    Raises:
        FileSkipped: nothing found; the message says what was tried.
    """
    tried: list[str] = []
    # Audio links first: a video linked beside the audio would need ffmpeg to decode.
    links = sorted(doc.media, key=lambda m: not _looks_like_audio(m))
    for link in links:
        for candidate in _link_candidates(doc.path, link):
            if candidate.is_file():
                return candidate, link.time_origin_ms, []
            tried.append(str(candidate))
    for link in links:  # a stand-in takes the TIME_ORIGIN of the link it stands in for
        for name in _link_names(link):
            found = _named_elsewhere(doc.path, name, search)
            if found is not None:
                return found, link.time_origin_ms, [_substitute(
                    doc, link, found, "the file of that name found in another folder")]
    for link in links:
        for name in _link_names(link):
            found = media_beside(doc.path.parent / name, prefer=Path(name).suffix)
            if found is not None:
                return found, link.time_origin_ms, [_substitute(
                    doc, link, found, "the same name with another extension")]
    first = links[0] if links else None
    named = _link_names(first) if first else []
    beside = media_beside(doc.path, prefer=Path(named[0]).suffix if named else "")
    if beside is not None:
        if first is None:
            return beside, 0.0, []  # no link: the recording named like the .eaf, as told
        return beside, first.time_origin_ms, [_substitute(
            doc, first, beside, "the recording named like the .eaf")]
    tried.append(str(doc.path.with_suffix(".wav")) + " (or another audio extension)")
    raise FileSkipped("media_not_found",
                      f"{doc.path}: its recording was not found. Tried: {'; '.join(tried)}. "
                      "Put the recording next to the .eaf with the same name, or fix the "
                      "link in ELAN (Edit > Linked Files).")


def _named_elsewhere(eaf: Path, name: str, search: _MediaSearch) -> Path | None:
    """A file called ``name`` under the folder imported, nearest the .eaf first, unless it
    sits beside another .eaf of its own name (then it is that file's recording)."""
    def belongs_elsewhere(found: Path) -> bool:
        return any(other.is_file() and other != eaf
                   for other in (found.with_suffix(".eaf"), found.with_suffix(".EAF")))

    found = [p for p in search.named(name) if not belongs_elsewhere(p)]
    found.sort(key=lambda p: (not p.is_relative_to(eaf.parent), len(p.parts), p))
    return found[0] if found else None


def _substitute(doc: EafDocument, link: MediaLink, used: Path, why: str) -> ImportIssue:
    """The issue saying that ``used`` stands in for the recording ``link`` names."""
    return ImportIssue(
        str(doc.path), "media_substituted",
        f"the .eaf links the recording {link.relative_url or link.url!r}, not found where "
        f"the link points; {used} ({why}) was used instead. Check that it is the same "
        "recording, or fix the link in ELAN (Edit > Linked Files)", "kept (warning)")


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
        candidates.append(eaf.parent / _basename(absolute))
    return list(dict.fromkeys(candidates))


def _link_names(link: MediaLink) -> list[str]:
    """The file names a link gives (its relative and its absolute URL may differ)."""
    names = (_basename(_url_path(url)) for url in (link.relative_url, link.url) if url)
    return [name for name in dict.fromkeys(names) if name not in ("", ".", "..")]


def _basename(path: str) -> str:
    return re.split(r"[\\/]", path)[-1]


def _url_path(url: str) -> str:
    """The path of a file: URL (or of a plain path), percent-decoded."""
    if url.lower().startswith("file:"):
        parsed = urlparse(url)
        path = unquote(parsed.path)
        # file:///C:/x.wav -> C:/x.wav (Windows drive letters)
        return path[1:] if re.match(r"^/[A-Za-z]:[\\/]", path) else path
    return unquote(url)


