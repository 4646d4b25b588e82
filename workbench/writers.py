"""Timed transcripts written out: one registry of formats, as whisper's ``get_writer``.

``txt`` (one utterance a line), ``json`` (everything: utterances, words, times,
confidences), ``tsv`` (start, end, confidence, text), ``srt`` and ``vtt`` (subtitles),
``textgrid`` (Praat, long format: an utterance tier and a word tier) and ``eaf`` (ELAN: a new
file that links the recording, with an utterance tier named after the model and a word tier).

Every file is written atomically (temporary name, flush, rename); an existing file is never
replaced unless asked (``force``).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
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


def _intervals(items: list[tuple[float, float, str]], duration: float
               ) -> list[tuple[float, float, str]]:
    """Items with empty intervals between them, covering 0..duration (Praat's tiers)."""
    out, at = [], 0.0
    for start, end, text in items:
        if start > at:
            out.append((at, start, ""))
        out.append((max(start, at), end, text))
        at = end
    if at < duration or not out:
        out.append((at, max(duration, at), ""))
    return out


def _textgrid(t: TimedTranscript) -> str:
    words = [(w.start, w.end, w.text) for s in t.segments for w in s.words]
    tiers = [(t.tier, _intervals([(s.start, s.end, s.text) for s in t.segments], t.duration)),
             (f"{t.tier}-words", _intervals(words, t.duration))]
    end = max([t.duration] + [iv[-1][1] for _, iv in tiers])
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0",
             f"xmax = {end:.3f}", "tiers? <exists>", f"size = {len(tiers)}", "item []:"]
    for n, (name, intervals) in enumerate(tiers, start=1):
        lines += [f"    item [{n}]:", '        class = "IntervalTier"',
                  f'        name = "{_praat(name)}"', "        xmin = 0",
                  f"        xmax = {end:.3f}", f"        intervals: size = {len(intervals)}"]
        for k, (start, stop, text) in enumerate(intervals, start=1):
            lines += [f"        intervals [{k}]:", f"            xmin = {start:.3f}",
                      f"            xmax = {stop:.3f}", f'            text = "{_praat(text)}"']
    return "\n".join(lines) + "\n"


def _praat(text: str) -> str:
    return text.replace('"', '""')


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
    order = ET.SubElement(root, "TIME_ORDER")
    tiers = [(t.tier, [(s.start, s.end, s.text) for s in t.segments]),
             (f"{t.tier}-words", [(w.start, w.end, w.text) for s in t.segments
                                  for w in s.words])]
    slot = annotation = 0
    elements = []
    for name, items in tiers:
        tier = ET.Element("TIER", {"LINGUISTIC_TYPE_REF": "default-lt", "TIER_ID": name})
        for start, end, text in items:
            ids = []
            for seconds in (start, end):
                slot += 1
                ids.append(f"ts{slot}")
                ET.SubElement(order, "TIME_SLOT", {"TIME_SLOT_ID": f"ts{slot}",
                                                   "TIME_VALUE": str(int(round(seconds * 1000)))})
            annotation += 1
            wrapper = ET.SubElement(tier, "ANNOTATION")
            aligned = ET.SubElement(wrapper, "ALIGNABLE_ANNOTATION", {
                "ANNOTATION_ID": f"a{annotation}", "TIME_SLOT_REF1": ids[0],
                "TIME_SLOT_REF2": ids[1]})
            ET.SubElement(aligned, "ANNOTATION_VALUE").text = text
        elements.append(tier)
    root.extend(elements)
    ET.SubElement(root, "LINGUISTIC_TYPE", {"GRAPHIC_REFERENCES": "false",
                                            "LINGUISTIC_TYPE_ID": "default-lt",
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
