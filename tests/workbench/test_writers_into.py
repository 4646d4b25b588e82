"""``--into``: the new tiers added to a user's own ELAN file or TextGrid, everything else kept.

Each result is read back by parsers that did not write it (pympi for ELAN, praatio for Praat)
and compared with the user's file element by element.
"""

from __future__ import annotations

import codecs
import difflib
import xml.etree.ElementTree as ET
from pathlib import Path

import pympi
import pytest

from data_recipes.elan import read_elan
from tests.workbench.praat_reader import praat_open
from workbench.errors import WorkbenchError
from workbench.segments import Segment, Word
from workbench.writers import TimedTranscript
from workbench.writers_into import check_into, into_path, write_into

RUN = "20261203-run"
FIRST = "नमस्ते दुनिया"
SECOND = 'कहा "हाँ" & <ठीक>'
WORDS = ["नमस्ते", "दुनिया", "कहा", '"हाँ"', "&", "<ठीक>"]


def transcript(folder: Path, duration: float = 5.0, audio: str = "recording.wav",
               first_start: float = 0.5) -> TimedTranscript:
    (folder / audio).write_bytes(b"")  # only its name and folder are used
    first = Segment(first_start, 2.25, FIRST, 0.9,
                    [Word("नमस्ते", 0.6, 1.3, 0.9), Word("दुनिया", 1.4, 2.3, 0.8)])
    second = Segment(3.2, 4.0, SECOND, 0.7,
                     [Word("कहा", 3.25, 3.5, 0.7), Word('"हाँ"', 3.55, 3.7, 0.6),
                      Word("&", 3.72, 3.74, 0.5), Word("<ठीक>", 3.75, 3.95, 0.6)])
    return TimedTranscript(folder / audio, duration, [first, second], RUN)


def removed_lines(before: str, after: str) -> list[str]:
    """The lines of ``before`` that are not in ``after`` (a diff's ``-`` lines)."""
    a, b = before.splitlines(), after.splitlines()
    ops = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    return [line for tag, i1, i2, _, _ in ops if tag in ("replace", "delete")
            for line in a[i1:i2]]


# --------------------------------------------------------------------------- ELAN

RICH_EAF = """<?xml version="1.0" encoding="UTF-8"?>
<!-- Field recording, Varanasi 2024; transcribed by hand -->
<ANNOTATION_DOCUMENT AUTHOR="Sita Devi" DATE="2024-05-01T10:00:00+05:30" FORMAT="3.0" \
VERSION="3.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:noNamespaceSchemaLocation="http://www.mpi.nl/tools/elan/EAFv3.0.xsd">
    <LICENSE LICENSE_URL="https://creativecommons.org/licenses/by-nc/4.0/">CC BY-NC 4.0: \
कहानी सुनाने वालों की अनुमति से</LICENSE>
    <HEADER MEDIA_FILE="" TIME_UNITS="milliseconds">
        <MEDIA_DESCRIPTOR MEDIA_URL="file:///C:/fieldwork/recording.wav" \
MIME_TYPE="audio/x-wav" RELATIVE_MEDIA_URL="./recording.wav" TIME_ORIGIN="250"/>
        <MEDIA_DESCRIPTOR EXTRACTED_FROM="file:///C:/fieldwork/camera.mp4" \
MEDIA_URL="file:///C:/fieldwork/recording-video.mp4" MIME_TYPE="video/mp4" \
RELATIVE_MEDIA_URL="./recording-video.mp4"/>
        <PROPERTY NAME="URN">urn:nl-mpi-tools-elan-eaf:5f2c0b1e-7d1a-4c8e-9d5e</PROPERTY>
        <PROPERTY NAME="lastUsedAnnotationId">14</PROPERTY>
    </HEADER>
    <TIME_ORDER>
        <TIME_SLOT TIME_SLOT_ID="ts1" TIME_VALUE="0"/>
        <TIME_SLOT TIME_SLOT_ID="ts2" TIME_VALUE="1200"/>
        <TIME_SLOT TIME_SLOT_ID="ts3"/>
        <TIME_SLOT TIME_SLOT_ID="ts4" TIME_VALUE="2400"/>
        <TIME_SLOT TIME_SLOT_ID="ts5" TIME_VALUE="2600"/>
        <TIME_SLOT TIME_SLOT_ID="ts6" TIME_VALUE="4100"/>
        <!-- the gesture's slots -->
        <TIME_SLOT TIME_SLOT_ID="ts20" TIME_VALUE="300"/>
        <TIME_SLOT TIME_SLOT_ID="ts8" TIME_VALUE="900"/>
    </TIME_ORDER>
    <TIER ANNOTATOR="RK" LANG_REF="hin" LINGUISTIC_TYPE_REF="utterance" \
PARTICIPANT="Sita Devi" TIER_ID="Sita">
        <ANNOTATION>
            <ALIGNABLE_ANNOTATION ANNOTATION_ID="a1" TIME_SLOT_REF1="ts1" TIME_SLOT_REF2="ts2">
                <ANNOTATION_VALUE>नमस्ते, आप कैसे हैं?</ANNOTATION_VALUE>
            </ALIGNABLE_ANNOTATION>
        </ANNOTATION>
        <ANNOTATION>
            <ALIGNABLE_ANNOTATION ANNOTATION_ID="a2" TIME_SLOT_REF1="ts5" TIME_SLOT_REF2="ts6">
                <ANNOTATION_VALUE>ठीक है &amp; &lt;अच्छा&gt; "हाँ"</ANNOTATION_VALUE>
            </ALIGNABLE_ANNOTATION>
        </ANNOTATION>
    </TIER>
    <TIER LINGUISTIC_TYPE_REF="word" PARENT_REF="Sita" TIER_ID="Sita-words">
        <ANNOTATION>
            <ALIGNABLE_ANNOTATION ANNOTATION_ID="a3" TIME_SLOT_REF1="ts1" TIME_SLOT_REF2="ts3">
                <ANNOTATION_VALUE>नमस्ते,</ANNOTATION_VALUE>
            </ALIGNABLE_ANNOTATION>
        </ANNOTATION>
        <ANNOTATION>
            <ALIGNABLE_ANNOTATION ANNOTATION_ID="a4" TIME_SLOT_REF1="ts3" TIME_SLOT_REF2="ts2">
                <ANNOTATION_VALUE>आप</ANNOTATION_VALUE>
            </ALIGNABLE_ANNOTATION>
        </ANNOTATION>
    </TIER>
    <TIER LINGUISTIC_TYPE_REF="morpheme" PARENT_REF="Sita-words" TIER_ID="Sita-morphs">
        <ANNOTATION>
            <REF_ANNOTATION ANNOTATION_ID="a5" ANNOTATION_REF="a3">
                <ANNOTATION_VALUE>नम</ANNOTATION_VALUE>
            </REF_ANNOTATION>
        </ANNOTATION>
        <ANNOTATION>
            <REF_ANNOTATION ANNOTATION_ID="a6" ANNOTATION_REF="a3" PREVIOUS_ANNOTATION="a5">
                <ANNOTATION_VALUE>स्ते</ANNOTATION_VALUE>
            </REF_ANNOTATION>
        </ANNOTATION>
    </TIER>
    <TIER LANG_REF="eng" LINGUISTIC_TYPE_REF="translation" PARENT_REF="Sita" TIER_ID="Sita-en">
        <ANNOTATION>
            <REF_ANNOTATION ANNOTATION_ID="a7" ANNOTATION_REF="a1">
                <ANNOTATION_VALUE>Hello, how are you?</ANNOTATION_VALUE>
            </REF_ANNOTATION>
        </ANNOTATION>
        <ANNOTATION>
            <REF_ANNOTATION ANNOTATION_ID="a30" ANNOTATION_REF="a2">
                <ANNOTATION_VALUE>Fine &amp; &lt;good&gt;</ANNOTATION_VALUE>
            </REF_ANNOTATION>
        </ANNOTATION>
    </TIER>
    <TIER LINGUISTIC_TYPE_REF="gesture" PARENT_REF="Sita" TIER_ID="Sita-gesture">
        <ANNOTATION>
            <ALIGNABLE_ANNOTATION ANNOTATION_ID="a9" CVE_REF="cveid_nod" TIME_SLOT_REF1="ts20" \
TIME_SLOT_REF2="ts8">
                <ANNOTATION_VALUE>nod</ANNOTATION_VALUE>
            </ALIGNABLE_ANNOTATION>
        </ANNOTATION>
    </TIER>
    <TIER LINGUISTIC_TYPE_REF="utterance" PARTICIPANT="Ade" TIER_ID="tones">
        <ANNOTATION>
            <ALIGNABLE_ANNOTATION ANNOTATION_ID="a10" TIME_SLOT_REF1="ts2" TIME_SLOT_REF2="ts4">
                <ANNOTATION_VALUE>mā má mǎ mà</ANNOTATION_VALUE>
            </ALIGNABLE_ANNOTATION>
        </ANNOTATION>
        <ANNOTATION>
            <ALIGNABLE_ANNOTATION ANNOTATION_ID="a14" TIME_SLOT_REF1="ts4" TIME_SLOT_REF2="ts5">
                <ANNOTATION_VALUE>ọ̀rọ̀ Yorùbá kò̩</ANNOTATION_VALUE>
            </ALIGNABLE_ANNOTATION>
        </ANNOTATION>
    </TIER>
    <TIER LINGUISTIC_TYPE_REF="utterance" TIER_ID="20261203-run"/>
    <?workbench-test keep this instruction?>
    <LINGUISTIC_TYPE GRAPHIC_REFERENCES="false" LINGUISTIC_TYPE_ID="utterance" \
TIME_ALIGNABLE="true"/>
    <LINGUISTIC_TYPE CONSTRAINTS="Time_Subdivision" GRAPHIC_REFERENCES="false" \
LINGUISTIC_TYPE_ID="word" TIME_ALIGNABLE="true"/>
    <LINGUISTIC_TYPE CONSTRAINTS="Symbolic_Subdivision" GRAPHIC_REFERENCES="false" \
LINGUISTIC_TYPE_ID="morpheme" TIME_ALIGNABLE="false"/>
    <LINGUISTIC_TYPE CONSTRAINTS="Symbolic_Association" GRAPHIC_REFERENCES="false" \
LINGUISTIC_TYPE_ID="translation" TIME_ALIGNABLE="false"/>
    <LINGUISTIC_TYPE CONSTRAINTS="Included_In" CONTROLLED_VOCABULARY_REF="gestures" \
GRAPHIC_REFERENCES="false" LINGUISTIC_TYPE_ID="gesture" TIME_ALIGNABLE="true"/>
    <LOCALE COUNTRY_CODE="IN" LANGUAGE_CODE="hi"/>
    <LANGUAGE LANG_DEF="http://cdb.iso.org/lg/CDB-00130975-001" LANG_ID="hin" \
LANG_LABEL="Hindi (hin)"/>
    <LANGUAGE LANG_DEF="http://cdb.iso.org/lg/CDB-00138502-001" LANG_ID="eng" \
LANG_LABEL="English (eng)"/>
    <CONSTRAINT DESCRIPTION="Time subdivision of parent annotation's time interval, no time \
gaps allowed within this interval" STEREOTYPE="Time_Subdivision"/>
    <CONSTRAINT DESCRIPTION="Symbolic subdivision of a parent annotation. Annotations refering \
to the same parent are ordered" STEREOTYPE="Symbolic_Subdivision"/>
    <CONSTRAINT DESCRIPTION="1-1 association with a parent annotation" \
STEREOTYPE="Symbolic_Association"/>
    <CONSTRAINT DESCRIPTION="Time alignable annotations within the parent annotation's time \
interval, gaps are allowed" STEREOTYPE="Included_In"/>
    <CONTROLLED_VOCABULARY CV_ID="gestures">
        <DESCRIPTION LANG_REF="hin">इशारे</DESCRIPTION>
        <CV_ENTRY_ML CVE_ID="cveid_nod">
            <CVE_VALUE DESCRIPTION="सिर हिलाना" LANG_REF="hin">nod</CVE_VALUE>
        </CV_ENTRY_ML>
        <CV_ENTRY_ML CVE_ID="cveid_point">
            <CVE_VALUE LANG_REF="hin">point</CVE_VALUE>
        </CV_ENTRY_ML>
    </CONTROLLED_VOCABULARY>
    <EXTERNAL_REF EXT_REF_ID="er1" TYPE="iso12620" VALUE="http://www.isocat.org/datcat/DC-1345"/>
</ANNOTATION_DOCUMENT>
<!-- saved by hand -->
"""

NEW_TIER = f"{RUN}-2"  # RICH_EAF already has a tier named after the run
NEW_WORDS = f"{RUN}-2-words"
# Stored times are media time minus the TIME_ORIGIN (250 ms) of recording.wav's link.
UTTERANCES_MS = [(250, 2000, FIRST), (2950, 3750, SECOND)]
WORDS_MS = [(350, 1050), (1150, 2000), (3000, 3250), (3300, 3450), (3470, 3490), (3500, 3700)]
EAF_ORDER = ["LICENSE", "HEADER", "TIME_ORDER", "TIER", "LINGUISTIC_TYPE", "LOCALE",
             "LANGUAGE", "CONSTRAINT", "CONTROLLED_VOCABULARY", "LEXICON_REF", "EXTERNAL_REF"]


def parse_all(path: Path) -> ET.Element:
    """The document with its comments and processing instructions."""
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True, insert_pis=True))
    return ET.parse(path, parser).getroot()


def canonical(element: ET.Element) -> tuple:
    """Tag, attributes, text and children in order (layout whitespace aside)."""
    def text(value: str | None) -> str:
        return value if value and value.strip() else ""
    return (element.tag, dict(element.attrib), text(element.text), text(element.tail),
            [canonical(child) for child in element])


@pytest.fixture
def rich(tmp_path: Path) -> Path:
    path = tmp_path / "story.eaf"
    path.write_bytes(RICH_EAF.encode("utf-8"))
    return path


def test_eaf_into_keeps_every_original_element(tmp_path, rich):
    before = rich.read_bytes()
    out = write_into(transcript(tmp_path), rich)
    assert out == tmp_path / f"story.{RUN}.eaf"
    assert rich.read_bytes() == before  # the user's file is only read

    original, merged = parse_all(rich), parse_all(out)
    slot_ids = {s.get("TIME_SLOT_ID") for s in original.iter("TIME_SLOT")}
    new_tiers = [t for t in merged.findall("TIER") if t.get("TIER_ID") not in
                 {o.get("TIER_ID") for o in original.findall("TIER")}]
    assert [t.get("TIER_ID") for t in new_tiers] == [NEW_TIER, NEW_WORDS]
    new_types = [t for t in merged.findall("LINGUISTIC_TYPE")
                 if t.get("LINGUISTIC_TYPE_ID") not in
                 {o.get("LINGUISTIC_TYPE_ID") for o in original.findall("LINGUISTIC_TYPE")}]
    assert [t.attrib for t in new_types] == [{  # the gesture type has a vocabulary: not reused
        "CONSTRAINTS": "Included_In", "GRAPHIC_REFERENCES": "false",
        "LINGUISTIC_TYPE_ID": "words-in-utterance", "TIME_ALIGNABLE": "true"}]
    order = merged.find("TIME_ORDER")
    new_slots = [s for s in order.iter("TIME_SLOT") if s.get("TIME_SLOT_ID") not in slot_ids]
    # after the file's own, numbered above its highest (ts20), in time order
    assert [s.get("TIME_SLOT_ID") for s in new_slots] == [f"ts{n}" for n in range(21, 37)]
    values = [int(s.get("TIME_VALUE")) for s in new_slots]
    assert values == sorted(values)
    new_ids = [a.get("ANNOTATION_ID") for t in new_tiers for a in t.iter("ALIGNABLE_ANNOTATION")]
    assert new_ids == [f"a{n}" for n in range(31, 39)]  # above a30 and lastUsedAnnotationId 14
    last = merged.find("HEADER/PROPERTY[@NAME='lastUsedAnnotationId']")
    assert last.text == "38"

    for element in [*new_tiers, *new_types]:
        merged.remove(element)
    for slot in new_slots:
        order.remove(slot)
    last.text = "14"
    assert canonical(merged) == canonical(original)
    # and in the schema's order, the comment and processing instruction where they were
    tags = [c.tag for c in parse_all(out) if isinstance(c.tag, str)]
    assert tags == sorted(tags, key=EAF_ORDER.index)

    text = out.read_text(encoding="utf-8")
    assert removed_lines(rich.read_text(encoding="utf-8"), text) == [
        '        <PROPERTY NAME="lastUsedAnnotationId">14</PROPERTY>']  # a diff only adds
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<!-- Field recording')
    assert text.endswith("</ANNOTATION_DOCUMENT>\n<!-- saved by hand -->\n")


def test_eaf_into_reads_back_in_pympi_with_times_from_the_time_origin(tmp_path, rich):
    out = write_into(transcript(tmp_path), rich)
    before, after = pympi.Elan.Eaf(str(rich)), pympi.Elan.Eaf(str(out))
    assert list(after.tiers) == [*before.tiers, NEW_TIER, NEW_WORDS]
    for tier in before.tiers:
        assert after.tiers[tier] == before.tiers[tier]
    assert {k: v for k, v in after.timeslots.items() if k in before.timeslots} == \
        before.timeslots
    for part in ("linguistic_types", "controlled_vocabularies", "languages", "locales",
                 "licenses", "media_descriptors", "constraints", "external_refs", "header",
                 "adocument"):
        if part != "linguistic_types":
            assert getattr(after, part) == getattr(before, part), part
    assert {k: v for k, v in after.linguistic_types.items() if k in before.linguistic_types} \
        == before.linguistic_types
    assert [p for p in after.properties if p[0] != "lastUsedAnnotationId"] == \
        [p for p in before.properties if p[0] != "lastUsedAnnotationId"]

    assert sorted(after.get_annotation_data_for_tier(NEW_TIER)) == UTTERANCES_MS
    words = sorted(after.get_annotation_data_for_tier(NEW_WORDS))
    assert [(start, end) for start, end, _ in words] == WORDS_MS  # "दुनिया" clipped to 2000
    assert [value for _, _, value in words] == WORDS
    assert after.get_parameters_for_tier(NEW_TIER)["LINGUISTIC_TYPE_REF"] == "utterance"
    words_tier = after.get_parameters_for_tier(NEW_WORDS)
    assert words_tier["PARENT_REF"] == NEW_TIER
    assert after.linguistic_types[words_tier["LINGUISTIC_TYPE_REF"]]["CONSTRAINTS"] == \
        "Included_In"
    assert all(any(s <= start and end <= e for s, e, _ in UTTERANCES_MS)
               for start, end in WORDS_MS)  # every word inside its utterance

    # the workbench's own importer adds the origin back: media times come out again
    rows = read_elan(out, tier=NEW_TIER).rows
    assert [(r.start, r.end, r.text) for r in rows] == [(0.5, 2.25, FIRST), (3.2, 4.0, SECOND)]


BARE_EAF = ('<?xml version="1.0" encoding="UTF-8"?>{nl}<ANNOTATION_DOCUMENT AUTHOR="" '
            'DATE="2024-01-01T00:00:00Z" FORMAT="3.0" VERSION="3.0" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xsi:noNamespaceSchemaLocation="http://www.mpi.nl/tools/elan/EAFv3.0.xsd">{nl}'
            '{t}<HEADER MEDIA_FILE="" TIME_UNITS="milliseconds"/>{nl}{t}<TIME_ORDER/>{nl}'
            '{t}<TIER LINGUISTIC_TYPE_REF="lt" TIER_ID="notes"/>{nl}'
            '{t}<LINGUISTIC_TYPE CONTROLLED_VOCABULARY_REF="cv" LINGUISTIC_TYPE_ID="lt" '
            'TIME_ALIGNABLE="true"/>{nl}'
            '{t}<LANGUAGE LANG_ID="qu" LANG_LABEL="Quechua"/>{nl}'
            '{t}<CONTROLLED_VOCABULARY CV_ID="cv"/>{nl}</ANNOTATION_DOCUMENT>{nl}')


@pytest.mark.parametrize("newline, indent", [("\r\n", "\t"), ("", "")],
                         ids=["crlf-tabs", "one-line"])
def test_eaf_into_adds_what_a_bare_file_lacks(tmp_path, newline, indent):
    """No time slots, no plain types, no constraints, no lastUsedAnnotationId: all added,
    in the schema's order and the file's own layout."""
    bare = tmp_path / "bare.eaf"
    bare.write_bytes(BARE_EAF.format(nl=newline, t=indent).encode("utf-8"))
    out = write_into(transcript(tmp_path), bare, tmp_path / "out")
    assert out == tmp_path / "out" / f"bare.{RUN}.eaf"
    data = out.read_bytes()
    if newline:
        assert data.count(b"\n") == data.count(b"\r\n") > 20
        assert b"\n\t<TIER LINGUISTIC_TYPE_REF" in data and b"  " not in data
    else:
        assert b"\n" not in data
    root = parse_all(out)
    assert [c.tag for c in root] == ["HEADER", "TIME_ORDER", "TIER", "TIER", "TIER",
                                     "LINGUISTIC_TYPE", "LINGUISTIC_TYPE", "LINGUISTIC_TYPE",
                                     "LANGUAGE", "CONSTRAINT", "CONTROLLED_VOCABULARY"]
    assert root.find("HEADER/PROPERTY[@NAME='lastUsedAnnotationId']").text == "8"
    eaf = pympi.Elan.Eaf(str(out))
    assert sorted(eaf.get_annotation_data_for_tier(RUN)) == [
        (500, 2250, FIRST), (3200, 4000, SECOND)]  # no TIME_ORIGIN: media time
    assert eaf.linguistic_types["default-lt"] == {
        "GRAPHIC_REFERENCES": "false", "LINGUISTIC_TYPE_ID": "default-lt",
        "TIME_ALIGNABLE": "true"}
    assert eaf.get_parameters_for_tier(f"{RUN}-words")["LINGUISTIC_TYPE_REF"] == \
        "words-in-utterance"
    assert set(eaf.constraints) == {"Included_In"}
    assert eaf.tiers["notes"][2] == {"LINGUISTIC_TYPE_REF": "lt", "TIER_ID": "notes"}


def test_eaf_into_fills_an_empty_header_and_time_order_around_their_comments(tmp_path):
    source = tmp_path / "empty.eaf"
    text = ('<?xml version="1.0" encoding="UTF-8"?>\n<ANNOTATION_DOCUMENT FORMAT="3.0" '
            'VERSION="3.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xsi:noNamespaceSchemaLocation="http://www.mpi.nl/tools/elan/EAFv3.0.xsd">\n'
            '  <HEADER MEDIA_FILE="" TIME_UNITS="milliseconds">\n  </HEADER>\n'
            '  <TIME_ORDER>\n    <!-- none yet -->\n  </TIME_ORDER>\n</ANNOTATION_DOCUMENT>\n')
    source.write_text(text, encoding="utf-8")
    out = write_into(transcript(tmp_path), source)
    merged = out.read_text(encoding="utf-8")
    assert removed_lines(text, merged) == []  # only lines added, in the file's own indent
    assert '  <HEADER MEDIA_FILE="" TIME_UNITS="milliseconds">\n    <PROPERTY NAME="' \
           'lastUsedAnnotationId">8</PROPERTY>\n  </HEADER>\n' in merged
    assert '    <!-- none yet -->\n    <TIME_SLOT TIME_SLOT_ID="ts1" TIME_VALUE="500"/>\n' \
        in merged
    assert sorted(pympi.Elan.Eaf(str(out)).get_annotation_data_for_tier(RUN)) == [
        (500, 2250, FIRST), (3200, 4000, SECOND)]


def test_eaf_into_keeps_a_utf16_file_in_utf16(tmp_path):
    source = tmp_path / "wide.eaf"
    text = RICH_EAF.replace('encoding="UTF-8"', 'encoding="UTF-16"')
    source.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    out = write_into(transcript(tmp_path), source)
    data = out.read_bytes()
    assert data.startswith(codecs.BOM_UTF16_LE)
    assert removed_lines(text, data[2:].decode("utf-16-le")) == [
        '        <PROPERTY NAME="lastUsedAnnotationId">14</PROPERTY>']
    eaf = pympi.Elan.Eaf(str(out))
    assert sorted(eaf.get_annotation_data_for_tier(NEW_TIER)) == UTTERANCES_MS


def test_eaf_into_refuses_times_it_cannot_place(tmp_path, rich):
    early = transcript(tmp_path, first_start=0.1)  # before recording.wav's origin (0.25 s)
    with pytest.raises(WorkbenchError, match=r"story.eaf: 1 of the 2 utterances begin before "
                                             r"the time origin \(0.25 s\)"):
        write_into(early, rich)
    elsewhere = transcript(tmp_path, audio="take2.wav")  # links differ, none is take2.wav
    with pytest.raises(WorkbenchError, match="different time origins.*none is take2.wav"):
        write_into(elsewhere, rich)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "recording.wav", "story.eaf", "take2.wav"]


def test_into_writes_a_new_file_and_replaces_it_only_when_asked(tmp_path, rich):
    t = transcript(tmp_path)
    out = write_into(t, rich)
    out.write_text("the user's corrections", encoding="utf-8")
    with pytest.raises(WorkbenchError, match="exists.*--force"):
        write_into(t, rich)
    assert out.read_text(encoding="utf-8") == "the user's corrections"
    assert write_into(t, rich, force=True) == out
    assert pympi.Elan.Eaf(str(out)).get_annotation_data_for_tier(NEW_TIER)
    assert into_path(rich, "a/b: c", tmp_path / "o") == tmp_path / "o" / "story.a_b_c.eaf"

    out.unlink()
    out.symlink_to(rich)  # the result would be the user's file itself: never, even forced
    before = rich.read_bytes()
    with pytest.raises(WorkbenchError, match="never replaced"):
        write_into(t, rich, force=True)
    assert rich.read_bytes() == before


@pytest.mark.parametrize("content, message", [
    ('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "boom">]>'
     "<ANNOTATION_DOCUMENT>&x;</ANNOTATION_DOCUMENT>", "refused: the file declares XML "
                                                       "entities"),
    ("<ANNOTATION_DOCUMENT><HEADER>", "not well-formed XML.*save it again"),
    ("<TEI><text/></TEI>", r"not an ELAN file \(its root element is <TEI>"),
    ("<ANNOTATION_DOCUMENT><HEADER/></ANNOTATION_DOCUMENT>", "an ELAN file without TIME_ORDER"),
], ids=["entities", "broken", "not-elan", "no-time-order"])
def test_unsafe_or_damaged_eaf_is_refused_with_the_file_named(tmp_path, content, message):
    bad = tmp_path / "bad.eaf"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(WorkbenchError, match=f"bad.eaf: {message}"):
        check_into(bad)
    with pytest.raises(WorkbenchError, match=message):
        write_into(transcript(tmp_path), bad)
    assert not list(tmp_path.glob("bad.*.eaf"))


def test_into_names_what_it_takes(tmp_path):
    with pytest.raises(WorkbenchError, match=r"notes.txt: --into takes an ELAN file \(.eaf\)"):
        check_into(tmp_path / "notes.txt")
    with pytest.raises(WorkbenchError, match="missing.eaf: no such file"):
        check_into(tmp_path / "missing.eaf")


# --------------------------------------------------------------------------- Praat

# Exactly as Praat writes it; "|" marks the space Praat leaves at the end of a line.
LONG = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0 |
xmax = 5 |
tiers? <exists> |
size = 2 |
item []: |
    item [1]:
        class = "IntervalTier" |
        name = "Sita" |
        xmin = 0 |
        xmax = 5 |
        intervals: size = 4 |
        intervals [1]:
            xmin = 0 |
            xmax = 1.2 |
            text = "" |
        intervals [2]:
            xmin = 1.2 |
            xmax = 2.5 |
            text = "नमस्ते ""दुनिया"" mā" |
        intervals [3]:
            xmin = 2.5 |
            xmax = 4.000000000000001 |
            text = "line one
line two" |
        intervals [4]:
            xmin = 4.000000000000001 |
            xmax = 5 |
            text = "" |
    item [2]:
        class = "TextTier" |
        name = "bell" |
        xmin = 0 |
        xmax = 5 |
        points: size = 2 |
        points [1]:
            number = 0.9 |
            mark = "ding" |
        points [2]:
            number = 3.3 |
            mark = "ọ̀rọ̀" |
'''.replace(" |\n", " \n")

SHORT = '''File type = "ooTextFile"
Object class = "TextGrid"

0
5
<exists>
2
"IntervalTier"
"Sita"
0
5
4
0
1.2
""
1.2
2.5
"नमस्ते ""दुनिया"" mā"
2.5
4.000000000000001
"line one
line two"
4.000000000000001
5
""
"TextTier"
"bell"
0
5
2
0.9
"ding"
3.3
"ọ̀rọ̀"
'''

SITA = [(0.0, 1.2, ""), (1.2, 2.5, 'नमस्ते "दुनिया" mā'),
        (2.5, 4.000000000000001, "line one\nline two"), (4.000000000000001, 5.0, "")]
BELL = [(0.9, "ding"), (3.3, "ọ̀rọ̀")]
NEW_UTTERANCES = [(0.0, 0.5, ""), (0.5, 2.25, FIRST), (2.25, 3.2, ""), (3.2, 4.0, SECOND),
                  (4.0, 5.0, "")]
NEW_WORDS_TG = [(0.0, 0.6, ""), (0.6, 1.3, "नमस्ते"), (1.3, 1.4, ""), (1.4, 2.3, "दुनिया"),
                (2.3, 3.25, ""), (3.25, 3.5, "कहा"), (3.5, 3.55, ""), (3.55, 3.7, '"हाँ"'),
                (3.7, 3.72, ""), (3.72, 3.74, "&"), (3.74, 3.75, ""), (3.75, 3.95, "<ठीक>"),
                (3.95, 5.0, "")]


def entries(grid, name: str) -> list[tuple]:
    return [tuple(entry) for entry in grid.getTier(name).entries]


@pytest.mark.parametrize("text, bom, codec, newline", [
    (LONG, b"", "utf-8", "\n"),
    (SHORT, codecs.BOM_UTF8, "utf-8", "\r\n"),
    (LONG, codecs.BOM_UTF16_LE, "utf-16-le", "\r\n"),
    (SHORT, codecs.BOM_UTF16_BE, "utf-16-be", "\n"),
], ids=["long-utf8", "short-utf8-bom-crlf", "long-utf16le-crlf", "short-utf16be"])
def test_textgrid_into_keeps_every_tier_format_and_encoding(tmp_path, text, bom, codec,
                                                            newline):
    source = tmp_path / "story.TextGrid"
    source.write_bytes(bom + text.replace("\n", newline).encode(codec))
    before = source.read_bytes()
    out = write_into(transcript(tmp_path), source)
    assert out == tmp_path / f"story.{RUN}.TextGrid"
    assert source.read_bytes() == before

    data = out.read_bytes()
    assert data.startswith(bom) and not data[len(bom):].startswith(codecs.BOM_UTF8)
    merged = data[len(bom):].decode(codec)
    if newline == "\r\n":
        assert merged.count("\n") == merged.count("\r\n")
    else:
        assert "\r" not in merged
    # Praat's own layout comes back line for line: only the tier count changes
    size_line = "size = 2 " if text is LONG else "2"
    assert removed_lines(text, merged.replace("\r\n", "\n")) == [size_line]
    assert ("item [" in merged) == (text is LONG)

    grid = praat_open(out)
    assert grid.tierNames == ("Sita", "bell", RUN, f"{RUN}-words")
    assert (grid.minTimestamp, grid.maxTimestamp) == (0, 5)
    assert entries(grid, "Sita") == SITA
    assert entries(grid, "bell") == BELL
    assert entries(grid, RUN) == NEW_UTTERANCES
    assert entries(grid, f"{RUN}-words") == NEW_WORDS_TG


def test_textgrid_into_extends_a_shorter_textgrid_to_the_recording(tmp_path):
    source = tmp_path / "story.TextGrid"
    source.write_text(LONG.replace('name = "bell"', f'name = "{RUN}"'), encoding="utf-8")
    out = write_into(transcript(tmp_path, duration=8.0), source)
    grid = praat_open(out)
    assert grid.tierNames == ("Sita", RUN, f"{RUN}-2", f"{RUN}-2-words")  # name taken: -2
    assert grid.maxTimestamp == 8.0
    assert entries(grid, "Sita") == [*SITA, (5.0, 8.0, "")]  # an empty interval to the end
    assert entries(grid, RUN) == BELL
    assert grid.getTier(RUN).maxTimestamp == 8.0
    assert entries(grid, f"{RUN}-2") == [*NEW_UTTERANCES[:-1], (4.0, 8.0, "")]
    assert entries(grid, f"{RUN}-2-words")[-1] == (3.95, 8.0, "")


@pytest.mark.parametrize("content, message", [
    (b"ooBinaryFile\x08TextGrid", "a binary TextGrid"),
    (b'File type = "ooTextFile"\nObject class = "Sound"\n', "not a TextGrid"),
    (LONG.replace("size = 4", "size = 5").encode(), "expected an interval's xmin"),
    (LONG.replace('"ọ̀rọ̀" ', '"ọ̀rọ̀').encode(), r":43: a text opened with \" is never"),
    ("xmin = 0 ½".encode("latin-1"), "not UTF-8 or UTF-16"),
], ids=["binary", "sound", "short-count", "open-string", "latin-1"])
def test_damaged_textgrid_is_refused_with_the_file_named(tmp_path, content, message):
    bad = tmp_path / "bad.TextGrid"
    bad.write_bytes(content)
    with pytest.raises(WorkbenchError, match=f"bad.TextGrid.*{message}"):
        write_into(transcript(tmp_path), bad)
    assert not list(tmp_path.glob("bad.*.TextGrid"))
