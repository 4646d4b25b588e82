"""``--into FILE.eaf``: the transcript's tiers spliced into the user's own ELAN file.

The file is read with defusedxml (a file declaring XML entities is refused) and the new
elements are inserted into its own bytes, so everything else stays exactly as it was, byte for
byte: tiers, annotations, time slots and their order, types, vocabularies, licence, comments,
processing instructions, attributes and layout (indentation and line ends are copied). A diff
of the two files shows added lines only, and the header property ``lastUsedAnnotationId``
raised past the new annotations (ELAN numbers the next annotations from it). Added, each where
the EAF 3.0 schema puts it:

- TIME_SLOTs after the file's own, numbered above its highest (``tsN``); times are media time
  minus the TIME_ORIGIN of the recording's media link, as ELAN stores them;
- the utterance TIER (named after the run) and ``<run>-words``, an Included_In child of it
  (see :func:`workbench.writers.eaf_tiers`), after the file's tiers; annotation ids ``aN``
  above every id in use; a tier name already taken gets ``-2``, ``-3`` ...;
- a LINGUISTIC_TYPE for each unless a plain one exists (time-aligned, no vocabulary, lexicon
  or external reference), and the Included_In CONSTRAINT if the file lacks it.

A file in another encoding than UTF-8 (UTF-16, Latin-1) is written back in it.
"""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse
from xml.parsers import expat
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from workbench.errors import WorkbenchError
from workbench.writers import (
    ELAN_CONSTRAINTS,
    INCLUDED_IN,
    LAST_ANNOTATION_ID,
    UTTERANCE_TYPE,
    WORDS_TYPE,
    TimedTranscript,
    eaf_tiers,
    free_name,
    words_tier_name,
)

# EAF 3.0's order of the document's children: a new element goes after the last one of its
# own kind or of a kind before it.
EAF_ORDER = ("LICENSE", "HEADER", "TIME_ORDER", "TIER", "LINGUISTIC_TYPE", "LOCALE", "LANGUAGE",
             "CONSTRAINT", "CONTROLLED_VOCABULARY", "LEXICON_REF", "REF_LINK_SET",
             "EXTERNAL_REF")
_SAVE_EAF = "Open it in ELAN and save it again, then run this again."


def render_eaf_into(transcript: TimedTranscript, data: bytes, source: Path) -> bytes:
    """The bytes of the .eaf ``data`` (read from ``source``) with the transcript's tiers.

    Raises:
        WorkbenchError: the file is unsafe or damaged, or an utterance begins before the
            time origin of the recording's media link (or that origin is ambiguous).
    """
    doc = _Eaf(data, source)
    root, header = doc.root, doc.root.find("HEADER")
    origin = _time_origin(root, Path(transcript.audio), source)
    _check_origin(transcript, origin, source)
    ids = {value for e in root.iter() for key, value in e.attrib.items() if key.endswith("_ID")}
    name = free_name(transcript.tier, {t.get("TIER_ID", "") for t in root.iter("TIER")},
                     words_tier_name)
    utterance_type, words_type, new_types = _linguistic_types(root, ids)
    last_used = next((p for p in header.iter("PROPERTY")
                      if p.get("NAME") == LAST_ANNOTATION_ID), None)
    last = _int(last_used.text if last_used is not None else None)
    annotation_id = _Ids("a", ids, max([last, *_numbers("a", root, "ANNOTATION_ID")]))
    first_annotation = annotation_id.last
    slots, tiers = eaf_tiers(
        transcript, name, next_slot=_Ids("ts", ids, max([0, *_numbers("ts", root,
                                                                        "TIME_SLOT_ID")])),
        next_annotation=annotation_id, origin_ms=origin, utterance_type=utterance_type,
        words_type=words_type)

    doc.append(root.find("TIME_ORDER"), slots, level=2)
    doc.insert(tiers)
    if new_types:
        doc.insert(new_types)
    if not any(c.get("STEREOTYPE") == INCLUDED_IN for c in root.iter("CONSTRAINT")):
        doc.insert([ET.Element("CONSTRAINT", {"DESCRIPTION": dict(ELAN_CONSTRAINTS)[INCLUDED_IN],
                                              "STEREOTYPE": INCLUDED_IN})])
    if annotation_id.last != first_annotation:  # ELAN numbers its next annotations from it
        if last_used is not None:
            doc.set_text(last_used, str(annotation_id.last))
        else:
            prop = ET.Element("PROPERTY", {"NAME": LAST_ANNOTATION_ID})
            prop.text = str(annotation_id.last)
            doc.append(header, [prop], level=2)
    return doc.result()


def check_eaf(data: bytes, source: Path) -> None:
    """Raise the error :func:`render_eaf_into` would raise for an unusable file."""
    _Eaf(data, source)


@dataclass
class _Span:
    """Where an element lies in the document's bytes."""

    start: int  # its '<'
    open_end: int  # after its start tag
    close_start: int  # its end tag's '<' (open_end for an empty-element tag)
    end: int  # after the element


_START_TAG = re.compile(rb"""<[^\s/>]+(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*(/?)>""")
_END_TAG = re.compile(rb"</[^>]*>")


class _Eaf:
    """An .eaf read safely, and edits to its bytes by element; all other bytes are kept."""

    def __init__(self, data: bytes, source: Path) -> None:
        self.root = _parse_eaf(data, source)
        for tag in ("HEADER", "TIME_ORDER"):
            if self.root.find(tag) is None:
                raise WorkbenchError(f"{source}: an ELAN file without {tag}, which ELAN "
                                     f"always writes. {_SAVE_EAF}")
        self.codec, self.bom = _xml_codec(data, source)
        try:  # the splicing works on UTF-8; a file in another encoding goes back to it
            self.data = data if self.codec == "utf-8" else (
                data[len(self.bom):].decode(self.codec).encode("utf-8"))
        except UnicodeDecodeError as err:
            raise WorkbenchError(f"{source}: not valid {self.codec} ({err.reason} at byte "
                                 f"{err.start}). {_SAVE_EAF}") from None
        self.spans = dict(zip(map(id, self.root.iter()), _spans(self.data, source),
                              strict=True))
        self.newline = "\r\n" if b"\r\n" in self.data else "\n"
        first = self.spans[id(self.root[0])]
        before = self.data[self.spans[id(self.root)].open_end:first.start].decode("utf-8")
        # The file's indentation step ("    ", "\t"); None for a file on one line.
        self.unit = re.match(r"[ \t]*", before.rsplit("\n", 1)[1]).group() if (
            "\n" in before) else None
        self.edits: list[tuple[int, int, int, bytes]] = []  # start, end, order, new bytes

    def insert(self, elements: list[ET.Element]) -> None:
        """Add ``elements`` (of one kind) to the document, in the schema's order."""
        rank = EAF_ORDER.index(elements[0].tag)
        before = [c for c in self.root if c.tag in EAF_ORDER[:rank + 1]]
        self._at(self.spans[id(before[-1])].end, self._fragment(elements, 1))

    def append(self, parent: ET.Element, elements: list[ET.Element], level: int) -> None:
        """Add ``elements`` after the last child of ``parent`` (at depth ``level``)."""
        if not elements:
            return
        children = list(parent)
        if children:
            self._at(self.spans[id(children[-1])].end, self._fragment(elements, level))
            return
        span = self.spans[id(parent)]
        fragment = self._fragment(elements, level)
        inside = self.data[span.open_end:span.close_start]
        if span.open_end == span.end:  # <TIME_ORDER/>: open it
            self._replace(span.start, span.end, self._opening(span) + fragment
                          + self._break(level - 1) + f"</{parent.tag}>".encode())
        elif not inside.strip():
            self._replace(span.open_end, span.close_start, fragment + self._break(level - 1))
        else:  # a comment inside: the new children go after it
            self._at(span.open_end + len(inside.rstrip()), fragment)

    def set_text(self, element: ET.Element, text: str) -> None:
        """Replace the text of ``element``, a leaf."""
        span, value = self.spans[id(element)], escape(text).encode("utf-8")
        if span.open_end == span.end:
            self._replace(span.start, span.end,
                          self._opening(span) + value + f"</{element.tag}>".encode())
        else:
            self._replace(span.open_end, span.close_start, value)

    def result(self) -> bytes:
        """The document with every edit made, in its own encoding."""
        out, at = [], 0
        for start, end, _, new in sorted(self.edits):
            if start < at:
                raise AssertionError("overlapping edits")
            out += [self.data[at:start], new]
            at = end
        merged = b"".join([*out, self.data[at:]])
        if self.codec == "utf-8":
            return merged
        return self.bom + merged.decode("utf-8").encode(self.codec, "xmlcharrefreplace")

    def _opening(self, span: _Span) -> bytes:
        """The start tag of an empty-element tag, without its slash."""
        return re.sub(rb"\s*/>$", b">", self.data[span.start:span.open_end])

    def _break(self, level: int) -> bytes:
        return b"" if self.unit is None else (self.newline + self.unit * level).encode()

    def _fragment(self, elements: list[ET.Element], level: int) -> bytes:
        parts = []
        for element in elements:
            if self.unit is not None:
                ET.indent(element, space=self.unit, level=level)
            xml = ET.tostring(element, encoding="unicode")  # ELAN writes <X/>, not <X />
            xml = xml.replace(" />", "/>").replace("\n", self.newline)
            parts.append(self._break(level) + xml.encode("utf-8"))
        return b"".join(parts)

    def _at(self, position: int, new: bytes) -> None:
        self._replace(position, position, new)

    def _replace(self, start: int, end: int, new: bytes) -> None:
        self.edits.append((start, end, len(self.edits), new))


def _parse_eaf(data: bytes, source: Path) -> ET.Element:
    try:
        root = fromstring(data)
    except DefusedXmlException as err:
        raise WorkbenchError(
            f"{source}: refused: the file declares XML entities ({type(err).__name__}), which "
            "ELAN never writes and which can read other files or exhaust memory. If it came "
            "from ELAN, save it again there; otherwise do not use it.") from None
    except ParseError as err:
        raise WorkbenchError(f"{source}: not well-formed XML ({err}). {_SAVE_EAF}") from None
    if root.tag != "ANNOTATION_DOCUMENT":
        raise WorkbenchError(f"{source}: not an ELAN file (its root element is <{root.tag}>, "
                             "not <ANNOTATION_DOCUMENT>).")
    return root


def _xml_codec(data: bytes, source: Path) -> tuple[str, bytes]:
    """The encoding of an XML document (its byte-order mark, else its declaration) and BOM."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                       (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            return codec, bom
    if data.startswith((b"<\x00", b"\x00<")):
        return ("utf-16-le" if data[1:2] == b"\x00" else "utf-16-be"), b""
    declared = re.match(rb"""<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z][\w.-]*)""", data)
    name = declared.group(1).decode("ascii") if declared else "utf-8"
    try:
        return codecs.lookup(name).name.replace("_", "-"), b""
    except LookupError:
        raise WorkbenchError(f"{source}: written in an encoding Python does not know "
                             f"({name}). {_SAVE_EAF}") from None


def _spans(data: bytes, source: Path) -> list[_Span]:
    """The byte spans of the elements of a UTF-8 document, in document order."""
    parser = expat.ParserCreate(encoding="UTF-8")
    spans: list[_Span] = []
    open_ones: list[_Span] = []

    def start(name: str, attributes: dict) -> None:
        at = parser.CurrentByteIndex
        tag = _START_TAG.match(data, at)
        if tag is None:
            raise WorkbenchError(f"{source}: the start tag <{name}> at byte {at} could not be "
                                 f"read. {_SAVE_EAF}")
        end = tag.end()
        span = _Span(at, end, end, end) if tag.group(1) else _Span(at, end, -1, -1)
        spans.append(span)
        open_ones.append(span)

    def end(name: str) -> None:
        span = open_ones.pop()
        if span.close_start < 0:
            span.close_start = parser.CurrentByteIndex
            tag = _END_TAG.match(data, span.close_start)
            if tag is None:
                raise WorkbenchError(f"{source}: the end tag </{name}> at byte "
                                     f"{span.close_start} could not be read. {_SAVE_EAF}")
            span.end = tag.end()

    def refuse(*_: object) -> None:  # defusedxml has already refused these; never expand
        raise WorkbenchError(f"{source}: refused: the file declares XML entities.")

    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.EntityDeclHandler = parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    try:
        parser.Parse(data, True)
    except expat.ExpatError as err:
        raise WorkbenchError(f"{source}: not well-formed XML ({err}). {_SAVE_EAF}") from None
    return spans


def _time_origin(root: ET.Element, audio: Path, source: Path) -> float:
    """The TIME_ORIGIN (ms) of the media link of ``audio``: the one all links share, else
    the one of the link with the recording's name (or stem).

    Raises:
        WorkbenchError: the links differ in origin and none names the recording.
    """
    links = root.findall("HEADER/MEDIA_DESCRIPTOR")
    origins = {_origin(link, source) for link in links} or {0.0}
    if len(origins) == 1:
        return origins.pop()
    for same in (lambda name: name == audio.name, lambda name: Path(name).stem == audio.stem):
        found = {_origin(link, source) for link in links if any(map(same, _link_names(link)))}
        if len(found) == 1:
            return found.pop()
    listed = ", ".join(f"{next(iter(_link_names(link)), '?')} "
                       f"({_origin(link, source):g} ms)" for link in links)
    raise WorkbenchError(
        f"{source}: its media links have different time origins ({listed}) and none is "
        f"{audio.name}, so where the new annotations go on ELAN's timeline is unknown. Give "
        "the recording the name of the linked file it was made from, and run this again.")


def _origin(link: ET.Element, source: Path) -> float:
    text = link.get("TIME_ORIGIN")
    if not text:
        return 0.0
    try:
        return float(text)
    except ValueError:
        raise WorkbenchError(f"{source}: the media link's TIME_ORIGIN {text!r} is not a "
                             f"number. {_SAVE_EAF}") from None


def _link_names(link: ET.Element) -> list[str]:
    """The file names a media link points to (relative and absolute URL)."""
    names = []
    for url in (link.get("RELATIVE_MEDIA_URL"), link.get("MEDIA_URL")):
        if url:
            path = unquote(urlparse(url).path if url.lower().startswith("file:") else url)
            names.append(re.split(r"[\\/]", path)[-1])
    return [name for name in names if name]


def _check_origin(t: TimedTranscript, origin_ms: float, source: Path) -> None:
    early = sum(1 for s in t.segments if round(s.start * 1000 - origin_ms) < 0)
    if early:
        raise WorkbenchError(
            f"{source}: {early} of the {len(t.segments)} utterances begin before the time "
            f"origin ({origin_ms / 1000:g} s) the file sets for {Path(t.audio).name}: ELAN's "
            "timeline starts there, so they cannot be placed on it. Set that link's offset "
            "to 0 in ELAN (Edit > Linked Files) and save, or cut the recording to start at "
            "the origin; then run this again.")


def _linguistic_types(root: ET.Element, ids: set[str]
                      ) -> tuple[str, str, list[ET.Element]]:
    """The types of the utterance and word tiers: plain ones of the file where it has them
    (``default-lt`` first), else new ones; and the LINGUISTIC_TYPEs to add."""
    new = []
    utterance = _reusable_type(root, None, UTTERANCE_TYPE)
    if utterance is None:
        utterance = free_name(UTTERANCE_TYPE, ids)
        new.append(_linguistic_type(utterance, None))
    words = _reusable_type(root, INCLUDED_IN, WORDS_TYPE)
    if words is None:
        words = free_name(WORDS_TYPE, ids | {utterance})
        new.append(_linguistic_type(words, INCLUDED_IN))
    return utterance, words, new


def _reusable_type(root: ET.Element, constraint: str | None, preferred: str) -> str | None:
    """A plain time-aligned linguistic type with ``constraint`` (None: a top-level type)."""
    fitting = [t.get("LINGUISTIC_TYPE_ID") for t in root.iter("LINGUISTIC_TYPE")
               if t.get("TIME_ALIGNABLE") == "true" and t.get("CONSTRAINTS") == constraint
               and t.get("LINGUISTIC_TYPE_ID")
               and not any(t.get(key) for key in ("CONTROLLED_VOCABULARY_REF", "LEXICON_REF",
                                                  "EXT_REF"))]
    return preferred if preferred in fitting else next(iter(fitting), None)


def _linguistic_type(type_id: str, constraint: str | None) -> ET.Element:
    attributes = {"CONSTRAINTS": constraint} if constraint else {}
    return ET.Element("LINGUISTIC_TYPE", {**attributes, "GRAPHIC_REFERENCES": "false",
                                          "LINGUISTIC_TYPE_ID": type_id,
                                          "TIME_ALIGNABLE": "true"})


def _numbers(prefix: str, root: ET.Element, attribute: str) -> list[int]:
    """The N of every ``<prefix>N`` value of ``attribute`` in the document."""
    pattern = re.compile(rf"{prefix}(\d+)")
    return [int(m.group(1)) for e in root.iter() if (m := pattern.fullmatch(
        e.get(attribute, "")))]


class _Ids:
    """New ids ``<prefix>N``, N counting up from ``above`` and skipping ids in use."""

    def __init__(self, prefix: str, taken: set[str], above: int) -> None:
        self.prefix, self.taken, self.last = prefix, taken, above

    def __call__(self) -> str:
        self.last += 1
        while f"{self.prefix}{self.last}" in self.taken:
            self.last += 1
        return f"{self.prefix}{self.last}"


def _int(text: str | None) -> int:
    return int(text) if text and text.strip().isdigit() else 0
