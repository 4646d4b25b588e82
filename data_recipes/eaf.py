"""The ELAN file format: parse an .eaf safely and tell when each annotation is.

``parse_eaf`` reads the tiers, annotations, time slots and media links of one file (with
``defusedxml`` only: files declaring entities are refused, never expanded).
``annotation_times`` gives every annotation the times ELAN shows for it:

- An ALIGNABLE annotation has the times of its two time slots. On a dependent tier
  (Time_Subdivision, Included_In) a slot may have no TIME_VALUE; ELAN shows it (TimeProposer)
  at a time spaced evenly, in whole milliseconds, between the nearest slots with a time
  before and after it, among the slots of that tier's annotations inside the same parent
  annotation, in TIME_ORDER order. A subdivision shares its parent's first and last slots,
  so those bound it. Slots that nothing bounds (or on an independent tier) have no time.
- A REF annotation takes its times only through a chain of Symbolic_Association links up to
  an ALIGNABLE annotation. A chain through a Symbolic_Subdivision (or other) annotation
  gives none: a word of a subdivision is somewhere inside its parent, not all of it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, parse

from data_recipes.annotations import FileSkipped

SYMBOLIC_ASSOCIATION = "Symbolic_Association"


@dataclass(frozen=True)
class Annotation:
    """One annotation as the .eaf stores it; times in milliseconds, None when unknown."""

    id: str
    index: int  # 1-based position in its tier (document order), for stable ids
    value: str
    start_ms: float | None = None  # the TIME_VALUE of its slots, as stored
    end_ms: float | None = None
    parent_id: str = ""  # ANNOTATION_REF of a REF_ANNOTATION
    time_problem: str = ""  # why start/end are not stored
    start_slot: str = ""  # TIME_SLOT_REF1/2 of an ALIGNABLE_ANNOTATION
    end_slot: str = ""


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
    # TIME_SLOT_ID -> TIME_VALUE (None: unaligned), in TIME_ORDER order, which is time order
    slots: dict[str, float | None] = field(default_factory=dict)

    def tier(self, name: str) -> Tier | None:
        return next((t for t in self.tiers if t.name == name), None)


@dataclass(frozen=True)
class Timing:
    """When an annotation is (milliseconds), or why it has no time."""

    start_ms: float | None = None
    end_ms: float | None = None
    problem: str = ""  # the times are unknown (missing_time)
    untimed: str = ""  # the chain of tiers up to one without times (unsupported_tier)
    interpolated: bool = False  # spaced between aligned slots, as ELAN shows them


# --------------------------------------------------------------------------- public API


def parse_eaf(path: Path) -> EafDocument:
    """Parse an .eaf file safely (defusedxml) into tiers with their annotations' times.

    Raises:
        FileSkipped: the file is not well-formed XML, not an ELAN file, or declares XML
            entities (refused unexpanded).
    """
    root = _parse_xml(path)
    stored = {slot.get("TIME_SLOT_ID", ""): slot.get("TIME_VALUE")
              for slot in root.iter("TIME_SLOT")}
    constraints = {lt.get("LINGUISTIC_TYPE_ID", ""): lt.get("CONSTRAINTS", "")
                   for lt in root.iter("LINGUISTIC_TYPE")}
    tiers = tuple(_tier(element, stored, constraints) for element in root.iter("TIER"))
    media = tuple(MediaLink(d.get("MEDIA_URL", ""), d.get("RELATIVE_MEDIA_URL", ""),
                            d.get("MIME_TYPE", ""), _number(d.get("TIME_ORIGIN")) or 0.0)
                  for d in root.iter("MEDIA_DESCRIPTOR"))
    slots = {slot: _number(value) for slot, value in stored.items()}
    return EafDocument(path, tiers, media, slots)


def annotation_times(doc: EafDocument) -> dict[str, Timing]:
    """The times of every annotation of ``doc`` by id, as ELAN shows them (module docstring)."""
    slot_ms, proposed = _slot_times(doc)
    by_id = {a.id: a for t in doc.tiers for a in t.annotations}
    owner = {a.id: t for t in doc.tiers for a in t.annotations}
    return {annotation_id: _timing(annotation_id, by_id, owner, slot_ms, proposed)
            for annotation_id in by_id}


# --------------------------------------------------------------------------- times


def _timing(annotation_id: str, by_id: dict[str, Annotation], owner: dict[str, Tier],
            slot_ms: dict[str, float], proposed: set[str]) -> Timing:
    """Follow Symbolic_Association links from the annotation up to an ALIGNABLE one."""
    chain: list[Annotation] = []
    current = by_id.get(annotation_id)
    while current is not None and current.parent_id:
        if current in chain:
            return Timing(problem="its ANNOTATION_REF chain loops back on itself")
        chain.append(current)
        if owner[current.id].constraint != SYMBOLIC_ASSOCIATION:
            parent = by_id.get(current.parent_id)
            tiers = [owner[a.id] for a in chain] + ([owner[parent.id]] if parent else [])
            return Timing(untimed=_chain_text(tiers))
        parent = by_id.get(current.parent_id)
        if parent is None:
            return Timing(problem=f"its parent annotation {current.parent_id} "
                                  "(ANNOTATION_REF) is not in the file")
        current = parent
    if current is None:
        return Timing(problem="the annotation is not in the file")
    start, end = slot_ms.get(current.start_slot), slot_ms.get(current.end_slot)
    if start is None or end is None:
        via = "" if current.id == annotation_id else f" (parent annotation {current.id})"
        return Timing(problem=(current.time_problem or "its time slots have no time") + via)
    return Timing(start, end, interpolated=bool({current.start_slot, current.end_slot}
                                                 & proposed))


def _chain_text(tiers: list[Tier]) -> str:
    """'tier 'G' (linguistic type 'gloss', Symbolic_Association) -> tier 'W' (...)'."""
    return " -> ".join(f"tier {t.name!r} (linguistic type {t.linguistic_type!r}, "
                       f"{t.constraint or 'time-aligned'})" for t in tiers)


def _slot_times(doc: EafDocument) -> tuple[dict[str, float], set[str]]:
    """The time of every slot that has one or gets one as ELAN shows it, and those proposed.

    Like ELAN's TimeProposer: tiers are taken parents first; for each annotation of a
    dependent tier's parent, the slots of the dependent tier's annotations inside it are
    ordered as in TIME_ORDER, and a run of slots without a time between two slots with one
    gets times spaced evenly, in whole milliseconds.
    """
    times = {slot: ms for slot, ms in doc.slots.items() if ms is not None}
    proposed: set[str] = set()
    index = {slot: position for position, slot in enumerate(doc.slots)}
    for tier in _parents_first(doc):
        parent = doc.tier(tier.parent) if tier.parent else None
        if parent is None:
            continue  # an independent tier: ELAN leaves no slot of it unaligned
        children = sorted((a for a in tier.annotations if _spans(a, index)),
                          key=lambda a: index[a.start_slot])
        starts = [index[a.start_slot] for a in children]
        for outer in (a for a in parent.annotations if _spans(a, index)):
            low, high = index[outer.start_slot], index[outer.end_slot]
            inside: set[str] = set()
            for child in children[bisect.bisect_left(starts, low):]:
                if index[child.start_slot] >= high:
                    break
                if index[child.end_slot] <= high:
                    inside.update((child.start_slot, child.end_slot))
            _propose(sorted(inside, key=index.__getitem__), times, proposed)
    return times, proposed


def _propose(slots: list[str], times: dict[str, float], proposed: set[str]) -> None:
    """Space the slots without a time evenly between the nearest ones with a time."""
    last = None  # position of the last slot with a time
    for position, slot in enumerate(slots):
        if slot not in times:
            continue
        gap = position - last if last is not None else 0
        if gap > 1 and times[slot] >= times[slots[last]]:
            start = times[slots[last]]
            step = (times[slot] - start) // gap  # ELAN keeps whole milliseconds
            for k in range(1, gap):
                times[slots[last + k]] = start + k * step
                proposed.add(slots[last + k])
        last = position


def _spans(annotation: Annotation, index: dict[str, int]) -> bool:
    """An ALIGNABLE annotation whose slots are in the TIME_ORDER, in order."""
    return (not annotation.parent_id and annotation.start_slot in index
            and annotation.end_slot in index
            and index[annotation.start_slot] < index[annotation.end_slot])


def _parents_first(doc: EafDocument) -> list[Tier]:
    by_name = {t.name: t for t in doc.tiers}

    def depth(tier: Tier) -> int:
        seen = {tier.name}
        while tier.parent in by_name and tier.parent not in seen:
            tier = by_name[tier.parent]
            seen.add(tier.name)
        return len(seen)

    return sorted(doc.tiers, key=depth)


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
    start_slot, end_slot = element.get("TIME_SLOT_REF1", ""), element.get("TIME_SLOT_REF2", "")
    start, start_problem = _slot_time(start_slot, slots)
    end, end_problem = _slot_time(end_slot, slots)
    problem = "; ".join(p for p in (start_problem, end_problem) if p)
    return Annotation(annotation_id, index, value, start, end, time_problem=problem,
                      start_slot=start_slot, end_slot=end_slot)


def _slot_time(ref: str, slots: dict[str, str | None]) -> tuple[float | None, str]:
    if not ref:
        return None, "it names no time slot"
    if ref not in slots:
        return None, f"time slot {ref} is missing from the TIME_ORDER"
    value = _number(slots[ref])
    if value is None:
        return None, (f"time slot {ref} has no time value (unaligned) and no aligned time "
                      "bounds it; align the annotation in ELAN")
    return value, ""


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None
