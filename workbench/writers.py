"""Timed transcripts written out: one registry of formats, as whisper's ``get_writer``.

``txt`` (one utterance a line), ``json`` (everything: utterances, words, times,
confidences), ``tsv`` (start, end, confidence, text), ``srt`` and ``vtt`` (subtitles),
``textgrid`` (Praat, long format, written as Praat writes it: an utterance tier named after
the model and a word tier) and ``eaf`` (ELAN: a new file that links the recording, with the
utterance tier and its word tier, an Included_In child of it). The tier builders here also
serve ``--into``, which adds the same tiers to a user's own file
(:mod:`workbench.writers_into`).

Every file is written atomically (temporary name, flush, rename); an existing file is never
replaced unless asked (``force``).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.fsio import write_text_atomic
from workbench.segments import Segment


@dataclass
class TimedTranscript:
    """A recording's utterances, with what a file format may want to say about it."""

    audio: Path
    duration: float
    segments: list[Segment]
    model: str = "workbench"
    notes: list[str] = field(default_factory=list)

    @property
    def tier(self) -> str:
        """The name of the utterance tier: the model's (run's) name."""
        return self.model or "workbench"


def _txt(t: TimedTranscript) -> str:
    return "".join(f"{s.text}\n" for s in t.segments)


def _json(t: TimedTranscript) -> str:
    data = {"audio": str(t.audio), "duration": round(t.duration, 3), "model": t.model,
            "segments": [s.to_dict() for s in t.segments], "notes": t.notes}
    return json.dumps(data, ensure_ascii=False, indent=1) + "\n"


def _tsv(t: TimedTranscript) -> str:
    rows = ["start\tend\tconfidence\ttext"]
    rows += [f"{s.start:.3f}\t{s.end:.3f}\t{s.confidence:.3f}\t{_one_line(s.text)}"
             for s in t.segments]
    return "\n".join(rows) + "\n"


def _clock(seconds: float, comma: bool) -> str:
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{',' if comma else '.'}{ms:03d}"


def _srt(t: TimedTranscript) -> str:
    cues = [f"{i}\n{_clock(s.start, True)} --> {_clock(s.end, True)}\n{_one_line(s.text)}\n"
            for i, s in enumerate(t.segments, start=1)]
    return "\n".join(cues)


def _vtt(t: TimedTranscript) -> str:
    cues = [f"{_clock(s.start, False)} --> {_clock(s.end, False)}\n{_one_line(s.text)}\n"
            for s in t.segments]
    return "WEBVTT\n\n" + "\n".join(cues)


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --------------------------------------------------------------------------- Praat TextGrids


INTERVAL_TIER, POINT_TIER = "IntervalTier", "TextTier"  # Praat's class names


@dataclass
class PraatTier:
    """One tier of a TextGrid; a point tier's entries have start == end."""

    kind: str
    name: str
    xmin: float
    xmax: float
    entries: list[tuple[float, float, str]]


def praat_textgrid(xmin: float, xmax: float, tiers: list[PraatTier], *, short: bool = False,
                   file_type: str = "ooTextFile") -> str:
    """A TextGrid exactly as Praat writes it: its long text format, or the short one."""
    num, say = praat_number, _praat
    lines = [f"File type = {say(file_type)}", 'Object class = "TextGrid"', ""]
    if short:
        lines += [num(xmin), num(xmax), "<exists>", str(len(tiers))]
    else:
        lines += [f"xmin = {num(xmin)} ", f"xmax = {num(xmax)} ", "tiers? <exists> ",
                  f"size = {len(tiers)} ", "item []: "]
    for n, tier in enumerate(tiers, start=1):
        interval = tier.kind == INTERVAL_TIER
        if short:
            lines += [say(tier.kind), say(tier.name), num(tier.xmin), num(tier.xmax),
                      str(len(tier.entries))]
            for start, end, text in tier.entries:
                lines += [num(start), num(end), say(text)] if interval else [num(start),
                                                                             say(text)]
            continue
        what = "intervals" if interval else "points"
        lines += [f"    item [{n}]:", f"        class = {say(tier.kind)} ",
                  f"        name = {say(tier.name)} ", f"        xmin = {num(tier.xmin)} ",
                  f"        xmax = {num(tier.xmax)} ",
                  f"        {what}: size = {len(tier.entries)} "]
        for k, (start, end, text) in enumerate(tier.entries, start=1):
            lines.append(f"        {what} [{k}]:")
            if interval:
                lines += [f"            xmin = {num(start)} ", f"            xmax = {num(end)} ",
                          f"            text = {say(text)} "]
            else:
                lines += [f"            number = {num(start)} ",
                          f"            mark = {say(text)} "]
    return "\n".join(lines) + "\n"


def praat_number(x: float) -> str:
    """A number as Praat writes it: the fewest of 15, 16, 17 digits that read back exactly."""
    if x == 0:
        return "0"
    for digits in (15, 16, 17):
        text = f"{x:.{digits}g}"
        if float(text) == x:
            return text
    return repr(x)


def _praat(text: str) -> str:
    """A Praat string: quoted, with a quote written twice."""
    return '"' + text.replace('"', '""') + '"'


def _intervals(items: list[tuple[float, float, str]], end: float, start: float = 0.0
               ) -> list[tuple[float, float, str]]:
    """Items with empty intervals between them, covering ``start``..``end`` (Praat's tiers)."""
    out, at = [], start
    for begin, stop, text in items:
        begin, stop = min(max(begin, at), end), min(max(stop, begin), end)
        if begin > at:
            out.append((at, begin, ""))
        out.append((begin, stop, text))
        at = stop
    if at < end or not out:
        out.append((at, max(end, at), ""))
    return out


def textgrid_tiers(t: TimedTranscript, name: str, start: float, end: float
                   ) -> list[PraatTier]:
    """The utterance tier ``name`` and the word tier ``name-words`` of ``t``, as Praat
    interval tiers tiling ``start``..``end``; times rounded to the millisecond."""
    utterances = [(round(s.start, 3), round(s.end, 3), s.text) for s in t.segments]
    words = [(round(w.start, 3), round(w.end, 3), w.text) for s in t.segments for w in s.words]
    return [PraatTier(INTERVAL_TIER, tier, start, end, _intervals(items, end, start))
            for tier, items in ((name, utterances), (words_tier_name(name), words))]


def _textgrid(t: TimedTranscript) -> str:
    ends = [s.end for s in t.segments] + [w.end for s in t.segments for w in s.words]
    end = round(max([t.duration, *ends]), 3)
    return praat_textgrid(0.0, end, textgrid_tiers(t, t.tier, 0.0, end))


# --------------------------------------------------------------------------- ELAN


# The four constraints every ELAN document declares (as ELAN itself writes them).
ELAN_CONSTRAINTS = (
    ("Time_Subdivision", "Time subdivision of parent annotation's time interval, no time gaps "
     "allowed within this interval"),
    ("Symbolic_Subdivision", "Symbolic subdivision of a parent annotation. Annotations refering "
     "to the same parent are ordered"),
    ("Symbolic_Association", "1-1 association with a parent annotation"),
    ("Included_In", "Time alignable annotations within the parent annotation's time interval, "
     "gaps are allowed"),
)
INCLUDED_IN = "Included_In"
UTTERANCE_TYPE = "default-lt"  # ELAN's own name for a plain time-aligned type
WORDS_TYPE = "words-in-utterance"  # time-aligned, Included_In the utterance
LAST_ANNOTATION_ID = "lastUsedAnnotationId"  # header property ELAN numbers new ids from


def words_tier_name(name: str) -> str:
    """The word tier beside the utterance tier ``name``."""
    return f"{name}-words"


def free_name(base: str, taken: set[str], also: Callable[[str], str] | None = None) -> str:
    """``base``, else ``base-2``, ``base-3`` ...: the first not in ``taken`` (nor its
    ``also``, e.g. the word tier of an utterance tier)."""
    for n in count(1):
        name = base if n == 1 else f"{base}-{n}"
        if name not in taken and (also is None or also(name) not in taken):
            return name
    raise AssertionError("unreachable")


def eaf_tiers(t: TimedTranscript, name: str, *, next_slot: Callable[[], str],
              next_annotation: Callable[[], str], origin_ms: float = 0.0,
              utterance_type: str = UTTERANCE_TYPE, words_type: str = WORDS_TYPE
              ) -> tuple[list[ET.Element], list[ET.Element]]:
    """The TIME_SLOTs (in time order) and the two TIERs of ``t`` for an ELAN document.

    The utterance tier ``name`` is a top-level tier; the word tier ``name-words`` is its
    Included_In child (each word clipped to its utterance, as ELAN requires), so words stay
    with their utterance when it is moved or deleted in ELAN. Times are stored in
    milliseconds from the media's ``origin_ms`` (ELAN's TIME_ORIGIN).
    """
    pending: list[tuple[ET.Element, int, int]] = []  # ALIGNABLE_ANNOTATION, start, end

    def annotate(tier: ET.Element, start: int, end: int, text: str) -> None:
        aligned = ET.SubElement(ET.SubElement(tier, "ANNOTATION"), "ALIGNABLE_ANNOTATION",
                                {"ANNOTATION_ID": next_annotation()})
        ET.SubElement(aligned, "ANNOTATION_VALUE").text = text
        pending.append((aligned, start, end))

    def ms(seconds: float) -> int:
        return int(round(seconds * 1000 - origin_ms))

    utterances = ET.Element("TIER", {"LINGUISTIC_TYPE_REF": utterance_type, "TIER_ID": name})
    words = ET.Element("TIER", {"LINGUISTIC_TYPE_REF": words_type, "PARENT_REF": name,
                                "TIER_ID": words_tier_name(name)})
    for s in t.segments:
        annotate(utterances, ms(s.start), ms(s.end), s.text)
    for s in t.segments:
        start, end = ms(s.start), max(ms(s.end), ms(s.start))
        for w in s.words:
            begin = min(max(ms(w.start), start), end)
            annotate(words, begin, min(max(ms(w.end), begin), end), w.text)
    # Slots numbered in time order, as ELAN numbers them; each boundary has its own slot.
    bounds = sorted(((time, n, key) for n, (_, start, end) in enumerate(pending)
                     for key, time in (("TIME_SLOT_REF1", start), ("TIME_SLOT_REF2", end))))
    slots = []
    for time, n, key in bounds:
        slot = ET.Element("TIME_SLOT", {"TIME_SLOT_ID": next_slot(), "TIME_VALUE": str(time)})
        pending[n][0].set(key, slot.get("TIME_SLOT_ID"))
        slots.append(slot)
    return slots, [utterances, words]


def _eaf(t: TimedTranscript) -> str:
    """A new ELAN 3.0 document linking the recording; utterances and words as two tiers."""
    root = ET.Element("ANNOTATION_DOCUMENT", {
        "AUTHOR": "workbench", "DATE": "1970-01-01T00:00:00Z", "FORMAT": "3.0", "VERSION": "3.0",
        "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
        "xsi:noNamespaceSchemaLocation": "http://www.mpi.nl/tools/elan/EAFv3.0.xsd"})
    header = ET.SubElement(root, "HEADER", {"MEDIA_FILE": "", "TIME_UNITS": "milliseconds"})
    audio = Path(t.audio).resolve()
    ET.SubElement(header, "MEDIA_DESCRIPTOR", {
        "MEDIA_URL": audio.as_uri(), "RELATIVE_MEDIA_URL": f"./{audio.name}",
        "MIME_TYPE": "audio/x-wav" if audio.suffix.lower() == ".wav" else "audio/*"})
    last = ET.SubElement(header, "PROPERTY", {"NAME": LAST_ANNOTATION_ID})
    slot_numbers, annotation_numbers = count(1), count(1)
    slots, tiers = eaf_tiers(t, t.tier, next_slot=lambda: f"ts{next(slot_numbers)}",
                             next_annotation=lambda: f"a{next(annotation_numbers)}")
    last.text = str(next(annotation_numbers) - 1)
    ET.SubElement(root, "TIME_ORDER").extend(slots)
    root.extend(tiers)
    ET.SubElement(root, "LINGUISTIC_TYPE", {"GRAPHIC_REFERENCES": "false",
                                            "LINGUISTIC_TYPE_ID": UTTERANCE_TYPE,
                                            "TIME_ALIGNABLE": "true"})
    ET.SubElement(root, "LINGUISTIC_TYPE", {"CONSTRAINTS": INCLUDED_IN,
                                            "GRAPHIC_REFERENCES": "false",
                                            "LINGUISTIC_TYPE_ID": WORDS_TYPE,
                                            "TIME_ALIGNABLE": "true"})
    for stereotype, description in ELAN_CONSTRAINTS:
        ET.SubElement(root, "CONSTRAINT", {"DESCRIPTION": description,
                                           "STEREOTYPE": stereotype})
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") \
        + "\n"


@dataclass(frozen=True)
class Writer:
    extension: str
    render: Callable[[TimedTranscript], str]
    description: str


WRITERS: dict[str, Writer] = {
    "txt": Writer("txt", _txt, "one utterance a line"),
    "json": Writer("json", _json, "utterances and words with times and confidences"),
    "tsv": Writer("tsv", _tsv, "start, end, confidence, text"),
    "srt": Writer("srt", _srt, "SubRip subtitles"),
    "vtt": Writer("vtt", _vtt, "WebVTT subtitles"),
    "textgrid": Writer("TextGrid", _textgrid, "Praat TextGrid: utterance and word tiers"),
    "eaf": Writer("eaf", _eaf, "ELAN file linking the recording: utterance and word tiers"),
}


def get_writer(name: str) -> Writer:
    """The writer of format ``name`` (case-insensitive)."""
    writer = WRITERS.get(name.lower())
    if writer is None:
        raise WorkbenchError(f"Unknown output format {name!r}; choose one of "
                             f"{', '.join(WRITERS)}.")
    return writer


def output_path(audio: Path, writer: Writer, out_dir: Path | None) -> Path:
    """``<out_dir or the recording's folder>/<recording stem>.<extension>``."""
    folder = Path(out_dir) if out_dir else Path(audio).parent
    return folder / f"{Path(audio).stem}.{writer.extension}"


def refuse_existing(path: Path, force: bool) -> None:
    """Raise unless ``path`` is free or may be replaced."""
    if path.exists() and not force:
        raise WorkbenchError(f"{path} exists; choose another output folder (-o) or replace "
                             "it with --force.")


def write_transcript(transcript: TimedTranscript, fmt: str, out_dir: Path | None = None, *,
                     force: bool = False) -> Path:
    """Write ``transcript`` in format ``fmt``; refuse to replace a file unless ``force``.

    Raises:
        WorkbenchError: Unknown format, or the output exists and ``force`` is False.
    """
    writer = get_writer(fmt)
    path = output_path(transcript.audio, writer, out_dir)
    refuse_existing(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, writer.render(transcript))
    return path
