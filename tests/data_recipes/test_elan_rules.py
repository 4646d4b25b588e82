"""ELAN import rules found with real files: times through tier chains, unaligned slots,
the recording a link names, overlapping speakers, and the choices a source offers."""

from pathlib import Path

import numpy as np
import pytest

from data_recipes import annotations
from data_recipes.annotations import media_beside
from data_recipes.elan import elan_choices, prepare_elan, read_elan
from data_recipes.textgrid import textgrid_tiers
from tests.data_recipes.test_elan import aligned, recording, write_eaf
from tests.data_recipes.test_textgrid import TIERS, long_format, write
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

TYPES = {  # LINGUISTIC_TYPE_ID -> CONSTRAINTS ("" for an independent tier)
    "utterance": "", "words": "Symbolic_Subdivision", "gloss": "Symbolic_Association",
    "translation": "Symbolic_Association", "wordTS": "Time_Subdivision", "part": "Included_In",
}


def hand_written_eaf(path: Path, slots, tiers) -> Path:
    """An .eaf as ELAN writes it: ``slots`` are (id, ms or None) in TIME_ORDER order;
    ``tiers`` are (tier_id, participant, type, parent, annotations), an annotation being
    ("A", id, slot1, slot2, text) or ("R", id, parent_annotation, text)."""
    order = "".join(f'<TIME_SLOT TIME_SLOT_ID="{slot}"'
                    + ("" if ms is None else f' TIME_VALUE="{ms}"') + "/>" for slot, ms in slots)
    tier_xml = []
    for tier_id, participant, ltype, parent, annotations_ in tiers:
        parts = []
        for spec in annotations_:
            if spec[0] == "A":
                _, aid, first, second, text = spec
                parts.append(f'<ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="{aid}" '
                             f'TIME_SLOT_REF1="{first}" TIME_SLOT_REF2="{second}">'
                             f"<ANNOTATION_VALUE>{text}</ANNOTATION_VALUE>"
                             "</ALIGNABLE_ANNOTATION></ANNOTATION>")
            else:
                _, aid, ref, text = spec
                parts.append(f'<ANNOTATION><REF_ANNOTATION ANNOTATION_ID="{aid}" '
                             f'ANNOTATION_REF="{ref}"><ANNOTATION_VALUE>{text}'
                             "</ANNOTATION_VALUE></REF_ANNOTATION></ANNOTATION>")
        attrs = f' PARTICIPANT="{participant}"' if participant else ""
        attrs += f' PARENT_REF="{parent}"' if parent else ""
        tier_xml.append(f'<TIER TIER_ID="{tier_id}" LINGUISTIC_TYPE_REF="{ltype}"{attrs}>'
                        f'{"".join(parts)}</TIER>')
    types = "".join(
        f'<LINGUISTIC_TYPE LINGUISTIC_TYPE_ID="{name}"'
        + (f' CONSTRAINTS="{constraint}"' if constraint else "")
        + f' TIME_ALIGNABLE="{"false" if constraint.startswith("Symbolic") else "true"}"/>'
        for name, constraint in TYPES.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<ANNOTATION_DOCUMENT AUTHOR="" DATE="2024-01-01T00:00:00+00:00" FORMAT="3.0" VERSION="3.0">
<HEADER MEDIA_FILE="" TIME_UNITS="milliseconds"><MEDIA_DESCRIPTOR MEDIA_URL="file:///x/rec.wav"
 MIME_TYPE="audio/x-wav" RELATIVE_MEDIA_URL="./rec.wav"/></HEADER>
<TIME_ORDER>{order}</TIME_ORDER>
{"".join(tier_xml)}
{types}
</ANNOTATION_DOCUMENT>
""", encoding="utf-8")
    return path


def issues_of(read, check):
    return [i for i in read.issues if i.check == check]


# --------------------------------------------------------------------------- tier chains


def test_association_under_a_subdivision_is_refused_and_association_chains_kept(tmp_path):
    recording(tmp_path / "rec.wav")
    eaf = hand_written_eaf(tmp_path / "rec.eaf", [("ts1", 1000), ("ts2", 2000)], [
        ("T", "Ana", "utterance", "", [("A", "a1", "ts1", "ts2", "uno dos")]),
        ("W", "Ana", "words", "T", [("R", "w1", "a1", "uno"), ("R", "w2", "a1", "dos")]),
        ("G", "Ana", "gloss", "W", [("R", "g1", "w1", "one"), ("R", "g2", "w2", "two")]),
        ("TR", "Ana", "translation", "T", [("R", "t1", "a1", "one two")]),
        ("TR2", "Ana", "gloss", "TR", [("R", "t2", "t1", "un deux")]),
    ])
    # Each one-word gloss would otherwise get the whole utterance (1.0-2.0 s) as its clip.
    with pytest.raises(WorkbenchError) as err:
        read_elan(eaf, tier="G")
    message = str(err.value)
    assert "2 annotations have no time of their own" in message
    assert ("tier 'G' (linguistic type 'gloss', Symbolic_Association) -> tier 'W' "
            "(linguistic type 'words', Symbolic_Subdivision) -> tier 'T'") in message
    assert "--tier" in message
    with pytest.raises(WorkbenchError, match=r"tier 'W' \(linguistic type 'words', "
                                             "Symbolic_Subdivision\\) -> tier 'T'"):
        read_elan(eaf, tier="W")
    # Symbolic_Association all the way up: the time of the aligned annotation.
    (row,) = read_elan(eaf, tier="TR2").rows
    assert (row.start, row.end, row.text, row.speaker) == (1.0, 2.0, "un deux", "Ana")


def test_in_a_folder_the_untimed_tier_is_one_issue_and_the_others_imported(tmp_path):
    recording(tmp_path / "good" / "rec.wav")
    hand_written_eaf(tmp_path / "good" / "rec.eaf", [("ts1", 0), ("ts2", 1500)], [
        ("X", "Ana", "utterance", "", [("A", "a1", "ts1", "ts2", "allin")])])
    recording(tmp_path / "deep" / "rec.wav")
    deep = hand_written_eaf(tmp_path / "deep" / "rec.eaf", [("ts1", 1000), ("ts2", 2000)], [
        ("T", "Ana", "utterance", "", [("A", "a1", "ts1", "ts2", "uno dos")]),
        ("W", "Ana", "words", "T", [("R", "w1", "a1", "uno"), ("R", "w2", "a1", "dos")]),
        ("X", "Ana", "gloss", "W", [("R", "g1", "w1", "one"), ("R", "g2", "w2", "two"),
                                    ("R", "g3", "w2", " ")]),
    ])
    read = read_elan(tmp_path, tier="X")
    assert [(r.start, r.end, r.text) for r in read.rows] == [(0.0, 1.5, "allin")]
    (issue,) = issues_of(read, "unsupported_tier")
    assert issue.item == f"{deep}: tier 'X'" and issue.action == "not imported"
    assert issue.detail.startswith("2 annotations have no time of their own: tier 'X'")
    assert [i.check for i in read.issues] == ["empty_annotations", "unsupported_tier"]


# --------------------------------------------------------------------------- unaligned slots

UNALIGNED_SLOTS = [("ts1", 1000), ("ts2", None), ("ts3", None), ("ts4", 2500), ("ts5", 3000),
                   ("ts6", None), ("ts12", 3100), ("ts13", None), ("ts14", None),
                   ("ts15", 3900), ("ts7", 4000), ("ts10", None), ("ts11", None)]
UNALIGNED_TIERS = [
    ("utt", "Ana", "utterance", "", [("A", "a1", "ts1", "ts4", "uno dos tres"),
                                     ("A", "a2", "ts5", "ts7", "cuatro cinco")]),
    # Time_Subdivision: the words share their parent's first and last slots.
    ("words", "Ana", "wordTS", "utt", [
        ("A", "w1", "ts1", "ts2", "uno"), ("A", "w2", "ts2", "ts3", "dos"),
        ("A", "w3", "ts3", "ts4", "tres"), ("A", "w4", "ts5", "ts6", "cuatro"),
        ("A", "w5", "ts6", "ts7", "cinco"),
        ("A", "w6", "ts10", "ts11", "lejos")]),  # inside no parent: nothing bounds it
    ("gloss", "Ana", "gloss", "words", [("R", "g2", "w2", "two")]),
    # Included_In: its own slots, two of them aligned.
    ("parts", "Ana", "part", "utt", [("A", "p1", "ts12", "ts13", "cua"),
                                     ("A", "p2", "ts14", "ts15", "tro")]),
]


def test_unaligned_subdivision_slots_get_the_times_elan_shows(tmp_path):
    recording(tmp_path / "rec.wav")
    eaf = hand_written_eaf(tmp_path / "rec.eaf", UNALIGNED_SLOTS, UNALIGNED_TIERS)
    read = read_elan(eaf, tier="words")
    assert [(r.start, r.end, r.text) for r in read.rows] == [
        (1.0, 1.5, "uno"), (1.5, 2.0, "dos"), (2.0, 2.5, "tres"), (3.0, 3.5, "cuatro"),
        (3.5, 4.0, "cinco")]
    (kept,) = issues_of(read, "interpolated_times")
    assert kept.action == "kept (times interpolated)" and kept.detail.startswith("5 ")
    assert kept.item == f"{eaf}: tier 'words'"
    (lost,) = issues_of(read, "missing_time")
    assert lost.item.endswith("annotation w6") and "no aligned time bounds it" in lost.detail
    assert len(read.issues) == 2

    # A symbolic association takes the interpolated time, and says so.
    gloss = read_elan(eaf, tier="gloss")
    assert [(r.start, r.end, r.text) for r in gloss.rows] == [(1.5, 2.0, "two")]
    assert issues_of(gloss, "interpolated_times")[0].detail.startswith("1 ")
    # Included_In: spaced between its own aligned slots, in whole milliseconds as ELAN does
    # ((3900 - 3100) // 3 = 266).
    parts = read_elan(eaf, tier="parts")
    assert [(r.start, r.end) for r in parts.rows] == [(3.1, 3.366), (3.632, 3.9)]
    # The independent tier is untouched.
    utt = read_elan(eaf, tier="utt")
    assert [(r.start, r.end) for r in utt.rows] == [(1.0, 2.5), (3.0, 4.0)]
    assert not utt.issues


def test_interpolated_clips_are_imported(tmp_path):
    recording(tmp_path / "src" / "rec.wav")
    eaf = hand_written_eaf(tmp_path / "src" / "rec.eaf", UNALIGNED_SLOTS, UNALIGNED_TIERS)
    result = prepare_elan(eaf, Workspace.at(tmp_path / "ws"), tier="words", progress=False)
    assert sorted(round(u.duration, 3) for u in result.utterances) == [0.5] * 5
    assert {i.check for i in result.issues} == {"interpolated_times", "missing_time"}


# --------------------------------------------------------------------------- recordings

TIER = [("T", "Ana", "utterance", "", [aligned("a1", 0, 1000, "uno")])]


def test_the_named_recording_wins_over_a_same_name_one(tmp_path):
    wav = recording(tmp_path / "rec.wav", seconds=2.0)
    ogg = recording(tmp_path / "rec.ogg", seconds=4.0)
    eaf = write_eaf(tmp_path / "rec.eaf", TIER, relative_url="./rec.wav")
    read = read_elan(eaf)
    assert read.rows[0].audio == wav and not read.issues

    wav.unlink()
    read = read_elan(eaf)
    assert read.rows[0].audio == ogg
    (issue,) = read.issues
    assert issue.check == "media_substituted" and issue.action == "kept (warning)"
    assert issue.item == str(eaf)
    assert "'./rec.wav'" in issue.detail and str(ogg) in issue.detail
    result = prepare_elan(eaf, Workspace.at(tmp_path / "ws"), progress=False)
    assert [Path(u.source) for u in result.utterances] == [ogg]
    assert [i.check for i in result.issues] == ["media_substituted"]


def test_the_named_file_elsewhere_in_the_folder_wins_over_a_same_stem_one(tmp_path):
    corpus = tmp_path / "corpus"
    recording(corpus / "eaf" / "rec.ogg", seconds=4.0)
    wav = recording(corpus / "media" / "rec.wav", seconds=2.0)
    # Another .eaf's own recording of the same name is never taken.
    recording(corpus / "other" / "story.wav")
    write_eaf(corpus / "other" / "story.eaf", TIER, relative_url="./story.wav")
    eaf = write_eaf(corpus / "eaf" / "rec.eaf", TIER, relative_url="./rec.wav")
    read = read_elan(corpus)
    by_file = {r.utterance_id.split("__")[1]: r.audio for r in read.rows}
    assert by_file == {"rec": wav, "story": corpus / "other" / "story.wav"}
    (issue,) = issues_of(read, "media_substituted")
    assert issue.item == str(eaf) and str(wav) in issue.detail
    assert "another folder" in issue.detail



def test_a_recording_beside_its_own_eaf_is_not_taken_for_another(tmp_path):
    corpus = tmp_path / "corpus"
    ogg = recording(corpus / "village1" / "rec01.ogg", seconds=4.0)
    write_eaf(corpus / "village1" / "rec01.eaf", TIER, relative_url="./rec01.wav")
    other = recording(corpus / "village2" / "rec01.wav", seconds=2.0)
    write_eaf(corpus / "village2" / "rec01.eaf", TIER, relative_url="./rec01.wav")
    read = read_elan(corpus)
    assert {r.utterance_id: r.audio for r in read.rows} == {
        "village1__rec01__T__1": ogg, "village2__rec01__T__1": other}
    (issue,) = read.issues
    assert issue.check == "media_substituted" and "village1" in issue.item
    assert str(ogg) in issue.detail


def test_the_named_extension_is_preferred_among_same_stem_recordings(tmp_path):
    recording(tmp_path / "take.wav")
    upper = recording(tmp_path / "take.OGG")
    assert media_beside(tmp_path / "take.ogg") == tmp_path / "take.wav"
    assert media_beside(tmp_path / "take.ogg", prefer=".ogg") == upper
    eaf = write_eaf(tmp_path / "take.eaf", TIER, relative_url="./take.ogg",
                    media_url="file:///elsewhere/take.ogg")
    read = read_elan(eaf)
    assert read.rows[0].audio == upper
    assert "same name with another extension" in issues_of(read, "media_substituted")[0].detail


def test_the_recording_named_like_the_eaf_is_reported_when_the_link_names_another(tmp_path):
    flac = recording(tmp_path / "z.flac")
    eaf = write_eaf(tmp_path / "z.eaf", TIER, relative_url="", media_url=None)
    read = read_elan(eaf)
    assert read.rows[0].audio == flac and not read.issues  # no link: nothing to report
    eaf = write_eaf(tmp_path / "z.eaf", TIER, relative_url="./take 2.wav",
                    media_url="file:///C:/corpus/take%202.wav")
    read = read_elan(eaf)
    assert read.rows[0].audio == flac
    (issue,) = read.issues
    assert issue.check == "media_substituted" and "'./take 2.wav'" in issue.detail
    assert "named like the .eaf" in issue.detail and str(flac) in issue.detail


# --------------------------------------------------------------------------- speakers


def test_overlapping_speakers_are_reported_and_kept(tmp_path):
    recording(tmp_path / "rec.wav")
    eaf = write_eaf(tmp_path / "rec.eaf", [
        ("Maria", "Maria", "utterance", "", [aligned("a1", 500, 1700, "allin"),
                                              aligned("a2", 4000, 4500, "chay")]),
        ("Juan", "Juan", "utterance", "", [aligned("a3", 1500, 2500, "ari"),
                                            aligned("a4", 3000, 3900, "mana")]),
    ])
    read = read_elan(eaf, linguistic_type="utterance")
    assert len(read.rows) == 4
    (issue,) = read.issues
    assert issue.check == "speaker_overlap" and issue.action == "kept (warning)"
    assert issue.item == f"{eaf}: tier 'Juan', annotation a3"
    assert "1.500-2.500 s" in issue.detail and "0.500-1.700 s" in issue.detail
    assert "tier 'Maria', annotation a1" in issue.detail
    assert "other speaker's voice" in issue.detail
    # One tier alone: nothing to compare.
    assert not read_elan(eaf, tier="Maria").issues


def test_many_overlaps_between_speakers_are_capped_with_a_count(tmp_path):
    recording(tmp_path / "rec.wav", seconds=31.0)
    eaf = write_eaf(tmp_path / "rec.eaf", [
        ("Maria", "Maria", "utterance", "",
         [aligned(f"m{i}", i * 1000, i * 1000 + 600, f"m {i}") for i in range(30)]),
        ("Juan", "Juan", "utterance", "",
         [aligned(f"j{i}", i * 1000 + 500, i * 1000 + 900, f"j {i}") for i in range(30)]),
    ])
    read = read_elan(eaf, linguistic_type="utterance")
    overlaps = issues_of(read, "speaker_overlap")
    assert len(overlaps) == annotations.MAX_OVERLAPS_LISTED + 1 == 21
    assert overlaps[-1].item == str(eaf)
    assert overlaps[-1].detail.startswith("10 more overlaps between speakers")
    assert len(read.rows) == 60


# --------------------------------------------------------------------------- choices


def test_choices_of_a_file_or_folder(tmp_path, monkeypatch):
    recording(tmp_path / "e" / "rec.wav")
    write_eaf(tmp_path / "e" / "a.eaf", [
        ("Maria", "Maria", "utterance", "", [aligned("a1", 0, 1000, "uno")]),
        ("notes", "", "translation", "Maria", [])])
    write_eaf(tmp_path / "e" / "b.eaf", [
        ("Juan", "Juan", "utterance", "", [aligned("a1", 0, 1000, "uno")])])
    (tmp_path / "e" / "broken.eaf").write_text("<ANNOTATION_DOCUMENT>")
    assert elan_choices(tmp_path / "e") == {"tiers": ["Maria", "notes", "Juan"],
                                            "participants": ["Maria", "Juan"],
                                            "linguistic_types": ["utterance", "translation"]}
    assert elan_choices(tmp_path / "e" / "b.eaf")["tiers"] == ["Juan"]
    write(tmp_path / "t" / "a.TextGrid", long_format())
    write(tmp_path / "t" / "b.TextGrid", long_format([("IntervalTier", "other", [])]
                                                     + TIERS))
    assert textgrid_tiers(tmp_path / "t") == ["words", "other"]  # not the point tier
    monkeypatch.setattr(annotations, "MAX_FILES_INSPECTED", 1)
    assert elan_choices(tmp_path / "e")["tiers"] == ["Maria", "notes"]
    assert textgrid_tiers(tmp_path / "t") == ["words"]


def test_the_workbench_own_eaf_output_imports_without_options(tmp_path):
    """An utterance tier with its words under it (what `transcribe --output eaf` and `align
    --output eaf` write): the utterance tier is taken, and the report says why."""
    import soundfile as sf

    from data_recipes import prepare_sources
    from workbench.segments import Segment, Word
    from workbench.workspace import Workspace
    from workbench.writers import TimedTranscript, write_transcript

    audio = tmp_path / "talk.wav"
    sf.write(audio, np.random.default_rng(0).uniform(-0.3, 0.3, 16_000 * 6), 16_000)
    segments = [Segment(0.5, 2.0, "kami tomu", 0.9, [Word("kami", 0.5, 1.1, 0.9),
                                                      Word("tomu", 1.2, 2.0, 0.9)]),
                Segment(3.0, 4.5, "daku", 0.8, [Word("daku", 3.1, 4.4, 0.8)])]
    eaf = write_transcript(TimedTranscript(audio, 6.0, segments, "run-1"), "eaf")
    result = prepare_sources([eaf], Workspace.at(tmp_path / "ws"), progress=False)
    assert sorted(u.text for u in result.utterances) == ["daku", "kami tomu"]
    [note] = [i for i in result.issues if i.check == "tier_chosen"]
    assert "'run-1-words'" in note.detail
