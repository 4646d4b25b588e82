import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_recipes import detect_format, read_source
from data_recipes.elan import prepare_elan, read_elan
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.manifest import read_manifest
from workbench.workspace import Workspace

RATE = 16_000
SECRET = "TOPSECRET-d41d8cd98f00"


def recording(path: Path, seconds: float = 6.0, rate: int = RATE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, 0.3 * np.sin(2 * np.pi * 220 * t), rate)
    return path


def aligned(aid, start_ms, end_ms, text):
    """An ALIGNABLE_ANNOTATION; a time of None gives a slot without TIME_VALUE, "gone" a
    reference to a slot that does not exist."""
    return ("A", aid, start_ms, end_ms, text)


def ref(aid, parent, text):
    return ("R", aid, parent, text)


def write_eaf(path: Path, tiers, *, relative_url="./rec.wav", media_url=None,
              doctype="", value_override=None) -> Path:
    """An .eaf with ``tiers``: (tier_id, participant, type, parent, annotations)."""
    slots, tier_xml = [], []
    for tier_id, participant, ltype, parent, annotations in tiers:
        parts = []
        for spec in annotations:
            if spec[0] == "A":
                _, aid, start, end, text = spec
                refs = []
                for time in (start, end):
                    if time == "gone":
                        refs.append("ts_gone")
                        continue
                    slot = f"ts{len(slots) + 1}"
                    value = "" if time is None else f' TIME_VALUE="{time}"'
                    slots.append(f'<TIME_SLOT TIME_SLOT_ID="{slot}"{value}/>')
                    refs.append(slot)
                parts.append(f'<ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="{aid}" '
                             f'TIME_SLOT_REF1="{refs[0]}" TIME_SLOT_REF2="{refs[1]}">'
                             f'<ANNOTATION_VALUE>{text}</ANNOTATION_VALUE>'
                             '</ALIGNABLE_ANNOTATION></ANNOTATION>')
            else:
                _, aid, parent_id, text = spec
                parts.append(f'<ANNOTATION><REF_ANNOTATION ANNOTATION_ID="{aid}" '
                             f'ANNOTATION_REF="{parent_id}"><ANNOTATION_VALUE>{text}'
                             '</ANNOTATION_VALUE></REF_ANNOTATION></ANNOTATION>')
        parent_attr = f' PARENT_REF="{parent}"' if parent else ""
        participant_attr = f' PARTICIPANT="{participant}"' if participant else ""
        tier_xml.append(f'<TIER TIER_ID="{tier_id}"{participant_attr} '
                        f'LINGUISTIC_TYPE_REF="{ltype}"{parent_attr}>{"".join(parts)}</TIER>')
    media = ""
    if relative_url or media_url:
        attrs = f' MEDIA_URL="{media_url or "file:///nowhere/rec.wav"}" MIME_TYPE="audio/x-wav"'
        attrs += f' RELATIVE_MEDIA_URL="{relative_url}"' if relative_url else ""
        media = f"<MEDIA_DESCRIPTOR{attrs}/>"
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
{doctype}<ANNOTATION_DOCUMENT AUTHOR="" DATE="2024-01-01T00:00:00+00:00" FORMAT="3.0" VERSION="3.0">
<HEADER MEDIA_FILE="" TIME_UNITS="milliseconds">{media}</HEADER>
<TIME_ORDER>{"".join(slots)}</TIME_ORDER>
{"".join(tier_xml)}
<LINGUISTIC_TYPE GRAPHIC_REFERENCES="false" LINGUISTIC_TYPE_ID="utterance" TIME_ALIGNABLE="true"/>
<LINGUISTIC_TYPE CONSTRAINTS="Symbolic_Association" GRAPHIC_REFERENCES="false"
  LINGUISTIC_TYPE_ID="translation" TIME_ALIGNABLE="false"/>
<LINGUISTIC_TYPE CONSTRAINTS="Symbolic_Subdivision" GRAPHIC_REFERENCES="false"
  LINGUISTIC_TYPE_ID="words" TIME_ALIGNABLE="false"/>
<CONSTRAINT DESCRIPTION="" STEREOTYPE="Symbolic_Association"/>
</ANNOTATION_DOCUMENT>
"""
    if value_override is not None:
        xml = xml.replace("<ANNOTATION_VALUE>X</ANNOTATION_VALUE>", value_override)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(xml, encoding="utf-8")
    return path


def two_speakers(folder: Path) -> Path:
    recording(folder / "rec.wav")
    return write_eaf(folder / "rec.eaf", [
        ("Maria", "Maria", "utterance", "", [aligned("a1", 500, 1700, "allin p'unchaw"),
                                              aligned("a2", 2000, 3000, "imaynalla")]),
        ("Juan", "Juan", "utterance", "", [aligned("a3", 3500, 5250, "allinmi")]),
        ("Maria-en", "Maria", "translation", "Maria", [ref("a4", "a1", "good day")]),
    ])


def files_outside(root: Path, workspace: Path) -> set[Path]:
    return {p for p in root.rglob("*") if workspace not in p.parents and p != workspace}


def test_two_participants_stop_with_the_list_of_tiers(tmp_path):
    eaf = two_speakers(tmp_path)
    with pytest.raises(WorkbenchError) as err:
        read_elan(eaf)
    message = str(err.value)
    assert "--tier" in message and "--participant" in message
    assert "--linguistic-type" in message
    for expected in ("'Maria'", "'Juan'", "'Maria-en'", "'utterance'", "'translation'",
                     "2 non-empty annotations", "1 non-empty annotations"):
        assert expected in message


def test_chosen_tier_gives_segments_with_times_text_and_speaker(tmp_path):
    eaf = two_speakers(tmp_path)
    rows = read_elan(eaf, tier="Maria").rows
    assert [(r.start, r.end, r.text, r.speaker) for r in rows] == [
        (0.5, 1.7, "allin p'unchaw", "Maria"), (2.0, 3.0, "imaynalla", "Maria")]
    assert all(r.audio == tmp_path / "rec.wav" for r in rows)
    assert [r.utterance_id for r in rows] == ["rec__Maria__1", "rec__Maria__2"]
    assert "annotation a1" in rows[0].item and "Maria" in rows[0].item

    juan = read_elan(eaf, participant="Juan").rows
    assert [(r.start, r.end, r.text, r.speaker) for r in juan] == [
        (3.5, 5.25, "allinmi", "Juan")]
    both = read_elan(eaf, linguistic_type="utterance").rows
    assert sorted(r.speaker for r in both) == ["Juan", "Maria", "Maria"]


def test_participant_with_two_tiers_is_ambiguous(tmp_path):
    eaf = two_speakers(tmp_path)
    with pytest.raises(WorkbenchError, match="2 tiers of participant 'Maria'"):
        read_elan(eaf, participant="Maria")
    with pytest.raises(WorkbenchError, match="no tier with tier 'Pedro'"):
        read_elan(eaf, tier="Pedro")


def test_symbolic_association_tier_takes_its_parents_time(tmp_path):
    eaf = two_speakers(tmp_path)
    (row,) = read_elan(eaf, tier="Maria-en").rows
    assert (row.start, row.end, row.text, row.speaker) == (0.5, 1.7, "good day", "Maria")


def test_subdivision_tier_is_reported_unsupported(tmp_path):
    recording(tmp_path / "rec.wav")
    eaf = write_eaf(tmp_path / "rec.eaf", [
        ("T", "Ana", "utterance", "", [aligned("a1", 0, 1000, "uno dos")]),
        ("W", "Ana", "words", "T", [ref("a2", "a1", "uno"), ref("a3", "a1", "dos")]),
    ])
    assert len(read_elan(eaf).rows) == 1  # the only time-aligned tier is chosen
    with pytest.raises(WorkbenchError, match="2 annotations have no time of their own"):
        read_elan(eaf, tier="W")


def test_prepare_caches_clips_with_the_segment_durations(tmp_path):
    eaf = two_speakers(tmp_path / "src")
    ws = Workspace.at(tmp_path / "ws")
    result = prepare_elan(eaf, ws, linguistic_type="utterance", progress=False)
    assert not result.issues
    by_text = {u.text: u for u in result.utterances}
    assert set(by_text) == {"allin p'unchaw", "imaynalla", "allinmi"}
    for text, seconds in (("allin p'unchaw", 1.2), ("imaynalla", 1.0), ("allinmi", 1.75)):
        utterance = by_text[text]
        info = sf.info(ws.audio_path(utterance))
        assert info.samplerate == RATE
        assert info.frames / RATE == pytest.approx(seconds, abs=1e-3)
        assert utterance.duration == pytest.approx(seconds, abs=1e-3)
    assert by_text["allinmi"].speaker == "Juan"
    assert by_text["allinmi"].extra == {"start": 3.5, "end": 5.25}
    assert sorted(u.id for u in result.utterances) == [
        "rec__Juan__1", "rec__Maria__1", "rec__Maria__2"]
    on_disk = [u for split in ("train", "dev", "test")
               for u in read_manifest(ws.manifest_path(split))]
    assert len(on_disk) == 3


def test_overlaps_missing_slots_and_empty_annotations_are_reported(tmp_path):
    recording(tmp_path / "rec.wav")
    eaf = write_eaf(tmp_path / "rec.eaf", [("T", "Ana", "utterance", "", [
        aligned("a1", 0, 2000, "uno"),
        aligned("a2", 1500, 3000, "dos"),
        aligned("a3", "gone", 3500, "tres"),
        aligned("a4", 3600, None, "cuatro"),
        aligned("a5", 4000, 4500, ""),
        aligned("a6", 4600, 4800, "   "),
        aligned("a7", 4900, 5500, "siete"),
    ])])
    read = read_elan(eaf)
    assert [r.text for r in read.rows] == ["uno", "dos", "siete"]
    issues = {(i.check, i.item.rsplit(" ", 1)[-1]): i for i in read.issues}
    overlap = issues[("overlapping_annotations", "a2")]
    assert overlap.action == "kept (warning)" and "a1" in overlap.detail
    assert "ts_gone" in issues[("missing_time", "a3")].detail
    assert "no time value" in issues[("missing_time", "a4")].detail
    assert issues[("missing_time", "a4")].action == "not imported"
    empty = next(i for i in read.issues if i.check == "empty_annotations")
    assert empty.detail.startswith("2 ") and empty.action == "skipped"
    assert str(eaf) in empty.item and "'T'" in empty.item
    assert len(read.issues) == 4


def test_annotation_past_the_end_of_the_media_is_reported_by_the_import(tmp_path):
    recording(tmp_path / "rec.wav", seconds=3.0)
    eaf = write_eaf(tmp_path / "rec.eaf", [("T", "Ana", "utterance", "", [
        aligned("a1", 500, 1500, "uno"), aligned("a2", 8000, 9000, "lejos")])])
    result = prepare_elan(eaf, Workspace.at(tmp_path / "ws"), progress=False)
    assert [u.text for u in result.utterances] == ["uno"]
    (issue,) = result.issues
    assert issue.check == "segment_past_end" and "annotation a2" in issue.item


def test_media_is_found_through_links_or_by_name(tmp_path):
    tiers = [("T", "", "utterance", "", [aligned("a1", 0, 1000, "uno")])]
    # MEDIA_URL from another machine: the basename beside the .eaf is used.
    recording(tmp_path / "a" / "moved.wav")
    eaf = write_eaf(tmp_path / "a" / "x.eaf", tiers, relative_url="",
                    media_url="file:///C:/Users/ana/corpus/moved.wav")
    assert read_elan(eaf).rows[0].audio == tmp_path / "a" / "moved.wav"
    # RELATIVE_MEDIA_URL into a sibling folder.
    recording(tmp_path / "b" / "media" / "story one.wav")
    eaf = write_eaf(tmp_path / "b" / "eaf" / "story.eaf", tiers,
                    relative_url="../media/story%20one.wav")
    assert read_elan(eaf).rows[0].audio.resolve() == tmp_path / "b" / "media" / "story one.wav"
    # An existing absolute MEDIA_URL.
    absolute = recording(tmp_path / "elsewhere" / "abs.wav")
    eaf = write_eaf(tmp_path / "c" / "y.eaf", tiers, relative_url="",
                    media_url=absolute.as_uri())
    assert read_elan(eaf).rows[0].audio == absolute
    # No media link: same name, any audio extension.
    recording(tmp_path / "d" / "z.flac")
    eaf = write_eaf(tmp_path / "d" / "z.eaf", tiers, relative_url="", media_url=None)
    row = read_elan(eaf).rows[0]
    assert row.audio == tmp_path / "d" / "z.flac" and row.speaker == ""
    # Nothing: the error says what was tried.
    eaf = write_eaf(tmp_path / "e" / "lost.eaf", tiers)
    with pytest.raises(WorkbenchError, match="recording was not found.*rec.wav"):
        read_elan(eaf)


def xxe_eaf(path: Path, secret: Path) -> Path:
    doctype = (f'<!DOCTYPE ANNOTATION_DOCUMENT [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>\n')
    return write_eaf(path, [("T", "Ana", "utterance", "", [aligned("a1", 0, 1000, "X")])],
                     doctype=doctype,
                     value_override="<ANNOTATION_VALUE>&xxe;</ANNOTATION_VALUE>")


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE ANNOTATION_DOCUMENT [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ANNOTATION_DOCUMENT><HEADER/><TIME_ORDER><TIME_SLOT TIME_SLOT_ID="ts1" TIME_VALUE="0"/>
<TIME_SLOT TIME_SLOT_ID="ts2" TIME_VALUE="1000"/></TIME_ORDER>
<TIER TIER_ID="T" LINGUISTIC_TYPE_REF="utterance"><ANNOTATION><ALIGNABLE_ANNOTATION
 ANNOTATION_ID="a1" TIME_SLOT_REF1="ts1" TIME_SLOT_REF2="ts2">
 <ANNOTATION_VALUE>&lol9;</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION></TIER>
</ANNOTATION_DOCUMENT>
"""


def test_external_entity_is_refused_and_the_secret_never_read(tmp_path):
    secret = tmp_path / "private" / "notes.txt"
    secret.parent.mkdir()
    secret.write_text(SECRET)
    recording(tmp_path / "corpus" / "rec.wav")
    eaf = xxe_eaf(tmp_path / "corpus" / "rec.eaf", secret)
    with pytest.raises(WorkbenchError) as err:
        read_elan(eaf)
    message = str(err.value)
    assert str(eaf) in message and "refused" in message and SECRET not in message

    # In a folder the unsafe file is reported and the good ones still imported.
    two_speakers(tmp_path / "corpus" / "good")
    before = files_outside(tmp_path, tmp_path / "ws")
    ws = Workspace.at(tmp_path / "ws")
    result = prepare_elan(tmp_path / "corpus", ws, tier="Juan", progress=False)
    assert [u.text for u in result.utterances] == ["allinmi"]
    unsafe = [i for i in result.issues if i.check == "unsafe_xml"]
    assert len(unsafe) == 1 and unsafe[0].item == str(eaf)
    everything = json.dumps(result.summary()) + ws.import_report_path.read_text()
    everything += "".join(p.read_text() for p in ws.manifests_dir.glob("*.jsonl"))
    assert SECRET not in everything
    assert files_outside(tmp_path, tmp_path / "ws") == before


def test_billion_laughs_is_refused_without_expanding(tmp_path):
    eaf = tmp_path / "lol.eaf"
    eaf.write_text(BILLION_LAUGHS)
    recording(tmp_path / "lol.wav")
    before = files_outside(tmp_path, tmp_path / "ws")
    with pytest.raises(WorkbenchError, match=r"lol\.eaf: refused.*declares XML entities"):
        read_elan(eaf)
    assert files_outside(tmp_path, tmp_path / "ws") == before


def test_not_xml_names_the_file(tmp_path):
    eaf = tmp_path / "broken.eaf"
    eaf.write_text("<ANNOTATION_DOCUMENT><TIER>")
    with pytest.raises(WorkbenchError, match=r"broken\.eaf: not well-formed XML"):
        read_elan(eaf)


def test_folder_of_eafs_with_colliding_basenames_gets_unique_ids(tmp_path):
    root = tmp_path / "corpus"
    for sub in ("village1", "village2"):
        recording(root / sub / "rec01.wav")
        write_eaf(root / sub / "rec01.eaf", [("T", f"spk-{sub}", "utterance", "", [
            aligned("a1", 0, 1000, f"{sub} uno"), aligned("a2", 1200, 2500, f"{sub} dos")])])
    recording(root / "media" / "story.wav")
    write_eaf(root / "story.eaf", [("T", "Ana", "utterance", "", [
        aligned("a1", 100, 900, "story uno")])], relative_url="./media/story.wav")
    assert detect_format(root) == "elan"
    ws = Workspace.at(tmp_path / "ws")
    result = prepare_elan(root, ws, progress=False)
    ids = sorted(u.id for u in result.utterances)
    assert ids == ["story__T__1", "village1__rec01__T__1", "village1__rec01__T__2",
                   "village2__rec01__T__1", "village2__rec01__T__2"]
    assert len({u.audio for u in result.utterances}) == 5
    assert {u.speaker for u in result.utterances} == {"spk-village1", "spk-village2", "Ana"}
    by_id = {u.id: u for u in result.utterances}
    assert by_id["village2__rec01__T__2"].text == "village2 dos"
    assert by_id["village2__rec01__T__2"].duration == pytest.approx(1.3, abs=1e-3)


def test_format_detection_and_registry(tmp_path):
    eaf = two_speakers(tmp_path / "e")
    assert detect_format(eaf) == "elan"
    assert detect_format(tmp_path / "e") == "elan"
    (tmp_path / "e" / "rec.TextGrid").write_text("")
    with pytest.raises(WorkbenchError, match="--format elan or --format textgrid"):
        detect_format(tmp_path / "e")
    # read_source passes only the options the reader takes.
    read = read_source(eaf, tier="Maria", speaker_column="ignored", speaker="ignored")
    assert len(read.rows) == 2


def test_cli_prepare_with_a_tier(tmp_path, capsys):
    eaf = two_speakers(tmp_path / "src")
    code = main(["prepare", str(eaf), "-w", str(tmp_path / "ws"), "--participant", "Juan",
                 "--json", "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["utterances"] == 1 and summary["seconds"] == pytest.approx(1.75)
    code = main(["prepare", str(eaf), "-w", str(tmp_path / "ws"), "--quiet"])
    assert code == 2
    assert "--tier" in capsys.readouterr().err
