"""Every output format of a timed transcript, read back by a parser that did not write it."""

from __future__ import annotations

import json
from pathlib import Path

import pympi
import pytest

from data_recipes.elan import parse_eaf, read_elan
from data_recipes.textgrid import parse_textgrid
from tests.workbench.praat_reader import praat_open
from workbench.errors import WorkbenchError
from workbench.segments import Segment, Word
from workbench.writers import WRITERS, TimedTranscript, get_writer, write_transcript


def transcript(tmp_path: Path) -> TimedTranscript:
    audio = tmp_path / "recording.wav"
    audio.write_bytes(b"")  # only its name and folder are used
    first = Segment(0.5, 2.25, "allquqa mikhun", 0.91,
                    [Word("allquqa", 0.6, 1.3, 0.95), Word("mikhun", 1.4, 2.15, 0.87)])
    second = Segment(3661.2, 3663.0, 'ñuqa "qillqani" t\'ika', 0.5,
                     [Word("ñuqa", 3661.3, 3661.8, 0.6), Word('"qillqani"', 3661.9, 3662.5, 0.4),
                      Word("t'ika", 3662.55, 3662.9, 0.5)])
    return TimedTranscript(audio, 3664.0, [first, second], "20261203-run")


def test_plain_formats(tmp_path):
    t = transcript(tmp_path)
    assert get_writer("txt").render(t) == 'allquqa mikhun\nñuqa "qillqani" t\'ika\n'
    tsv = get_writer("tsv").render(t).splitlines()
    assert tsv[0] == "start\tend\tconfidence\ttext"
    assert tsv[2] == '3661.200\t3663.000\t0.500\tñuqa "qillqani" t\'ika'
    data = json.loads(get_writer("json").render(t))
    assert data["segments"][1]["words"][2] == {"text": "t'ika", "start": 3662.55,
                                               "end": 3662.9, "confidence": 0.5}


def test_subtitles_count_hours_minutes_and_milliseconds(tmp_path):
    t = transcript(tmp_path)
    srt = get_writer("srt").render(t)
    assert srt.startswith("1\n00:00:00,500 --> 00:00:02,250\nallquqa mikhun\n\n2\n"
                          "01:01:01,200 --> 01:01:03,000\n")
    vtt = get_writer("vtt").render(t)
    assert vtt.startswith("WEBVTT\n\n00:00:00.500 --> 00:00:02.250\nallquqa mikhun\n")


def test_textgrid_reads_back_with_both_tiers(tmp_path):
    path = write_transcript(transcript(tmp_path), "textgrid", tmp_path / "out")
    assert path.name == "recording.TextGrid"
    grid = parse_textgrid(path)
    assert [t.name for t in grid.tiers] == ["20261203-run", "20261203-run-words"]
    utterances = [(e.start, e.end, e.text) for e in grid.tiers[0].entries if e.text]
    assert utterances == [(0.5, 2.25, "allquqa mikhun"),
                          (3661.2, 3663.0, 'ñuqa "qillqani" t\'ika')]
    words = [e.text for e in grid.tiers[1].entries if e.text]
    assert words == ["allquqa", "mikhun", "ñuqa", '"qillqani"', "t'ika"]
    entries = grid.tiers[1].entries  # intervals tile the whole recording, as Praat needs
    assert entries[0].start == 0 and entries[-1].end == grid.xmax == 3664.0
    assert all(a.end == b.start for a, b in zip(entries, entries[1:], strict=False))


def test_eaf_links_the_recording_and_imports_back(tmp_path):
    t = transcript(tmp_path)
    path = write_transcript(t, "eaf", tmp_path)
    doc = parse_eaf(path)
    assert [tier.name for tier in doc.tiers] == ["20261203-run", "20261203-run-words"]
    assert doc.media[0].relative_url == "./recording.wav"
    utterances = [(a.start_ms, a.end_ms, a.value) for a in doc.tiers[0].annotations]
    assert utterances == [(500, 2250, "allquqa mikhun"),
                          (3661200, 3663000, 'ñuqa "qillqani" t\'ika')]
    assert [a.value for a in doc.tiers[1].annotations][-1] == "t'ika"
    read = read_elan(path, tier="20261203-run")  # the importer takes it as it is
    assert [r.text for r in read.rows] == ["allquqa mikhun", 'ñuqa "qillqani" t\'ika']
    assert {Path(r.audio).name for r in read.rows} == {"recording.wav"}


def test_textgrid_opens_in_praatio(tmp_path):
    path = write_transcript(transcript(tmp_path), "textgrid", tmp_path)
    grid = praat_open(path)  # strict: intervals tile each tier, tiers fit the grid
    assert grid.tierNames == ("20261203-run", "20261203-run-words")
    assert (grid.minTimestamp, grid.maxTimestamp) == (0, 3664.0)
    utterances = [tuple(e) for e in grid.getTier("20261203-run").entries if e.label]
    assert utterances == [(0.5, 2.25, "allquqa mikhun"),
                          (3661.2, 3663.0, 'ñuqa "qillqani" t\'ika')]
    words = grid.getTier("20261203-run-words").entries
    assert [tuple(e) for e in words if e.label][2:] == [
        (3661.3, 3661.8, "ñuqa"), (3661.9, 3662.5, '"qillqani"'), (3662.55, 3662.9, "t'ika")]


def test_eaf_opens_in_pympi_with_words_inside_their_utterances(tmp_path):
    path = write_transcript(transcript(tmp_path), "eaf", tmp_path)
    eaf = pympi.Elan.Eaf(str(path))
    assert list(eaf.tiers) == ["20261203-run", "20261203-run-words"]
    assert sorted(eaf.get_annotation_data_for_tier("20261203-run")) == [
        (500, 2250, "allquqa mikhun"), (3661200, 3663000, 'ñuqa "qillqani" t\'ika')]
    words = sorted(eaf.get_annotation_data_for_tier("20261203-run-words"))
    # mikhun ends at 2.15 s, inside its utterance; every word lies within one (Included_In)
    assert words == [(600, 1300, "allquqa"), (1400, 2150, "mikhun"), (3661300, 3661800, "ñuqa"),
                     (3661900, 3662500, '"qillqani"'), (3662550, 3662900, "t'ika")]
    tier = eaf.get_parameters_for_tier("20261203-run-words")
    assert tier["PARENT_REF"] == "20261203-run"
    assert eaf.linguistic_types[tier["LINGUISTIC_TYPE_REF"]]["CONSTRAINTS"] == "Included_In"
    assert dict(eaf.properties)["lastUsedAnnotationId"] == "7"
    slots = [int(v) for v in eaf.timeslots.values()]
    assert len(slots) == 14 and slots == sorted(slots)  # numbered in time order
    assert eaf.media_descriptors[0]["RELATIVE_MEDIA_URL"] == "./recording.wav"


def test_an_existing_file_is_replaced_only_when_asked(tmp_path):
    t = transcript(tmp_path)
    first = write_transcript(t, "srt", tmp_path / "out")
    first.write_text("the user's corrections", encoding="utf-8")
    with pytest.raises(WorkbenchError, match="exists.*--force"):
        write_transcript(t, "srt", tmp_path / "out")
    assert first.read_text(encoding="utf-8") == "the user's corrections"
    assert write_transcript(t, "srt", tmp_path / "out", force=True) == first
    assert first.read_text(encoding="utf-8").startswith("1\n00:00:00,500")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["recording.srt"]


def test_unknown_formats_list_the_known_ones():
    with pytest.raises(WorkbenchError, match="choose one of txt, json, tsv, srt, vtt"):
        get_writer("docx")
    assert set(WRITERS) == {"txt", "json", "tsv", "srt", "vtt", "textgrid", "eaf"}
