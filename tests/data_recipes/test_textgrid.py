import codecs
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_recipes import detect_format, read_source
from data_recipes.textgrid import parse_textgrid, prepare_textgrid, read_textgrid
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

RATE = 16_000

# (class, name, entries): intervals are (xmin, xmax, text), points (time, mark).
TIERS = [
    ("IntervalTier", "words", [
        (0, 0.5, ""),
        (0.5, 1.75, 'ñuqa ""chay"" nini'),  # Praat doubles a quote inside a text
        (1.75, 2.25, "   "),
        (2.25, 4.0, "iskay\nsiqi"),  # a text on two lines
        (4.0, 5.0, ""),
    ]),
    ("TextTier", "tones", [(1.0, "H*"), (3.0, "L%")]),
]
EXPECTED = [(0.5, 1.75, 'ñuqa "chay" nini'), (2.25, 4.0, "iskay\nsiqi")]


def recording(path: Path, seconds: float = 5.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * RATE)) / RATE
    sf.write(path, 0.3 * np.sin(2 * np.pi * 220 * t), RATE)
    return path


def long_format(tiers=TIERS, xmax=5.0) -> str:
    """Praat's 'text file' format, as Praat writes it (trailing spaces included)."""
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "",
             "xmin = 0 ", f"xmax = {xmax} ", "tiers? <exists> ", f"size = {len(tiers)} ",
             "item []: "]
    for number, (kind, name, entries) in enumerate(tiers, start=1):
        lines += [f"    item [{number}]:", f'        class = "{kind}" ',
                  f'        name = "{name}" ', "        xmin = 0 ", f"        xmax = {xmax} "]
        if kind == "IntervalTier":
            lines.append(f"        intervals: size = {len(entries)} ")
            for i, (start, end, text) in enumerate(entries, start=1):
                lines += [f"        intervals [{i}]:", f"            xmin = {start} ",
                          f"            xmax = {end} ", f'            text = "{text}" ']
        else:
            lines.append(f"        points: size = {len(entries)} ")
            for i, (time, mark) in enumerate(entries, start=1):
                lines += [f"        points [{i}]:", f"            number = {time} ",
                          f'            mark = "{mark}" ']
    return "\n".join(lines) + "\n"


def short_format(tiers=TIERS, xmax=5.0) -> str:
    """Praat's 'short text file' format."""
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "0", str(xmax),
             "<exists>", str(len(tiers))]
    for kind, name, entries in tiers:
        lines += [f'"{kind}"', f'"{name}"', "0", str(xmax), str(len(entries))]
        for entry in entries:
            lines += [str(value) for value in entry[:-1]] + [f'"{entry[-1]}"']
    return "\n".join(lines) + "\n"


# What ELAN writes (File > Export As > Praat TextGrid): one tier per ELAN tier, gaps filled
# with empty intervals, CRLF line ends on Windows; the second tier has quirks seen in the
# wild ('item[2]:', 'intervals [1]' without colon, '-0').
ELAN_EXPORT = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0.0
xmax = 5.0
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "Maria"
        xmin = 0.0
        xmax = 5.0
        intervals: size = 3
        intervals [1]:
            xmin = 0.0
            xmax = 0.5
            text = ""
        intervals [2]:
            xmin = 0.5
            xmax = 1.7
            text = "allin p'unchaw ""mama"""
        intervals [3]:
            xmin = 1.7
            xmax = 5.0
            text = ""
    item[2]:
        class = "IntervalTier"
        name = "Juan"
        xmin = -0
        xmax = 5.0
        intervals: size = 3
        intervals [1]
            xmin = -0
            xmax = 3.5
            text = ""
        intervals [2]
            xmin = 3.5
            xmax = 4.75
            text = "allinmi
item [3]: intervals [9]: text = ""x"""
        intervals [3]:
            xmin = 4.75
            xmax = 5.0
            text = ""
'''.replace("\n", "\r\n")


def segments(read):
    return [(r.start, r.end, r.text) for r in read.rows]


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize("make", [long_format, short_format])
def test_long_and_short_formats_give_the_same_segments(tmp_path, make):
    recording(tmp_path / "story.wav")
    grid = write(tmp_path / "story.TextGrid", make())
    read = read_textgrid(grid)
    assert segments(read) == EXPECTED
    assert [r.utterance_id for r in read.rows] == ["story__words__2", "story__words__4"]
    assert all(r.speaker == "" and r.audio == tmp_path / "story.wav" for r in read.rows)
    assert "interval 2" in read.rows[0].item and "'words'" in read.rows[0].item
    (issue,) = read.issues
    assert (issue.check, issue.action) == ("empty_intervals", "skipped")
    assert issue.detail.startswith("3 intervals") and str(grid) in issue.item


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be-bom", "utf-16-le"])
def test_encodings(tmp_path, encoding):
    recording(tmp_path / "story.wav")
    text = long_format()
    if encoding == "utf-16-be-bom":
        raw = codecs.BOM_UTF16_BE + text.encode("utf-16-be")
    else:
        raw = text.encode(encoding)  # "utf-16" writes a BOM; "utf-16-le" none
    (tmp_path / "story.TextGrid").write_bytes(raw)
    assert segments(read_textgrid(tmp_path / "story.TextGrid")) == EXPECTED


def test_elan_export_needs_a_tier_and_reads_quotes_and_lines(tmp_path):
    recording(tmp_path / "session.wav")
    grid = write(tmp_path / "session.TextGrid", ELAN_EXPORT, "utf-16")
    with pytest.raises(WorkbenchError) as err:
        read_textgrid(grid)
    message = str(err.value)
    assert "--tier" in message and "'Maria'" in message and "'Juan'" in message
    assert "1 non-empty of 3 intervals" in message
    maria = read_textgrid(grid, tier="Maria", speaker="M1")
    assert [(r.start, r.end, r.text, r.speaker) for r in maria.rows] == [
        (0.5, 1.7, "allin p'unchaw \"mama\"", "M1")]
    juan = read_textgrid(grid, tier="Juan", speaker_from_tier=True)
    (row,) = juan.rows
    assert row.text == 'allinmi\nitem [3]: intervals [9]: text = "x"'
    assert (row.start, row.end, row.speaker) == (3.5, 4.75, "Juan")
    assert row.utterance_id == "session__Juan__2"
    assert row.line == 38 and row.item.startswith(f"{grid}:38:")  # the xmin line


def test_point_tier_cannot_hold_transcripts(tmp_path):
    recording(tmp_path / "story.wav")
    grid = write(tmp_path / "story.TextGrid", long_format())
    with pytest.raises(WorkbenchError, match="'tones' is a point tier"):
        read_textgrid(grid, tier="tones")
    with pytest.raises(WorkbenchError, match="(?s)no tier named 'nope'.*'words'"):
        read_textgrid(grid, tier="nope")
    only_points = write(tmp_path / "p" / "story.TextGrid", long_format(TIERS[1:]))
    with pytest.raises(WorkbenchError, match="point tiers cannot hold transcripts"):
        read_textgrid(only_points)


def test_prepare_caches_clips_with_the_interval_durations(tmp_path):
    recording(tmp_path / "src" / "story.flac")
    grid = write(tmp_path / "src" / "story.TextGrid", short_format())
    ws = Workspace.at(tmp_path / "ws")
    result = prepare_textgrid(grid, ws, speaker="ana", progress=False)
    by_id = {u.id: u for u in result.utterances}
    assert set(by_id) == {"story__words__2", "story__words__4"}
    for utterance_id, seconds in (("story__words__2", 1.25), ("story__words__4", 1.75)):
        utterance = by_id[utterance_id]
        assert sf.info(ws.audio_path(utterance)).frames / RATE == pytest.approx(seconds,
                                                                                 abs=1e-3)
        assert utterance.duration == pytest.approx(seconds, abs=1e-3)
        assert utterance.speaker == "ana"
    assert [i.check for i in result.issues] == ["empty_intervals"]


def test_interval_past_the_end_of_the_media_is_reported(tmp_path):
    recording(tmp_path / "story.wav", seconds=2.0)
    grid = write(tmp_path / "story.TextGrid", long_format())
    result = prepare_textgrid(grid, Workspace.at(tmp_path / "ws"), progress=False)
    assert [u.text for u in result.utterances] == ['ñuqa "chay" nini']
    past = [i for i in result.issues if i.check == "segment_past_end"]
    assert len(past) == 1 and "interval 4" in past[0].item


def test_media_option_and_missing_media(tmp_path):
    grid = write(tmp_path / "story.TextGrid", long_format())
    with pytest.raises(WorkbenchError, match="recording was not found.*--media"):
        read_textgrid(grid)
    other = recording(tmp_path / "audio" / "take3.ogg")
    read = read_textgrid(grid, media=other)
    assert {r.audio for r in read.rows} == {other}
    with pytest.raises(WorkbenchError, match="take3.wav: the media file named for"):
        read_textgrid(grid, media=tmp_path / "audio" / "take3.wav")


def test_media_option_for_a_folder_of_one_textgrid(tmp_path):
    folder = tmp_path / "upload"
    write(folder / "story.TextGrid", long_format())
    other = recording(tmp_path / "audio" / "take3.ogg")
    read = read_textgrid(folder, media=other)
    assert segments(read) == EXPECTED
    assert {r.audio for r in read.rows} == {other}
    assert [r.utterance_id for r in read.rows] == ["story__words__2", "story__words__4"]
    with pytest.raises(WorkbenchError, match="take9.ogg: the media file named for"):
        read_textgrid(folder, media=tmp_path / "take9.ogg")

    write(folder / "sub" / "second.TextGrid", long_format())
    with pytest.raises(WorkbenchError) as err:
        read_textgrid(folder, media=other)
    message = str(err.value)
    assert "single TextGrid only" in message and "holds 2" in message
    assert "second.TextGrid" in message and "story.TextGrid" in message


def test_folder_with_colliding_basenames(tmp_path):
    root = tmp_path / "corpus"
    for sub in ("north", "south"):
        recording(root / sub / "rec01.wav")
        write(root / sub / "rec01.TextGrid", long_format())
    recording(root / "extra.wav")
    write(root / "extra.textgrid", short_format(TIERS[:1]))
    assert detect_format(root) == "textgrid"
    assert detect_format(root / "extra.textgrid") == "textgrid"
    ws = Workspace.at(tmp_path / "ws")
    result = prepare_textgrid(root, ws, progress=False)
    assert sorted(u.id for u in result.utterances) == [
        "extra__words__2", "extra__words__4", "north__rec01__words__2",
        "north__rec01__words__4", "south__rec01__words__2", "south__rec01__words__4"]
    assert len({u.audio for u in result.utterances}) == 6
    assert sum(i.check == "empty_intervals" for i in result.issues) == 3


def test_folder_skips_a_damaged_file_and_reports_it(tmp_path):
    recording(tmp_path / "good.wav")
    write(tmp_path / "good.TextGrid", long_format())
    recording(tmp_path / "bad.wav")
    write(tmp_path / "bad.TextGrid", long_format().replace("xmax = 1.75 ", "xmax = ", 1))
    read = read_source(tmp_path, tier="words", participant="ignored")
    assert len(read.rows) == 2
    (issue,) = [i for i in read.issues if i.check == "unreadable_textgrid"]
    assert issue.action == "file not imported" and "bad.TextGrid:" in issue.detail


def test_damaged_and_foreign_files_name_the_problem(tmp_path):
    broken = write(tmp_path / "a.TextGrid", long_format().replace('text = "iskay', 'text = iskay'))
    with pytest.raises(WorkbenchError, match=r"a\.TextGrid:\d+: .*save it again"):
        parse_textgrid(broken)
    truncated = write(tmp_path / "b.TextGrid", "\n".join(long_format().splitlines()[:20]))
    with pytest.raises(WorkbenchError, match="the file ends where"):
        parse_textgrid(truncated)
    latin = tmp_path / "c.TextGrid"
    latin.write_bytes(long_format().encode("latin-1", errors="replace"))
    with pytest.raises(WorkbenchError, match="not UTF-8 or UTF-16.*Text writing preferences"):
        parse_textgrid(latin)
    other = write(tmp_path / "d.TextGrid", 'File type = "ooTextFile"\nObject class = "Pitch"\n')
    with pytest.raises(WorkbenchError, match="not a TextGrid"):
        parse_textgrid(other)
    binary = tmp_path / "e.TextGrid"
    binary.write_bytes(b"ooBinaryFile\x08TextGrid\x00\x00")
    with pytest.raises(WorkbenchError, match="binary TextGrid"):
        parse_textgrid(binary)


def test_an_interval_ending_after_its_recording_is_reported_and_set_aside(tmp_path):
    from workbench.audit import run_audit
    from workbench.workspace import Workspace as _Workspace

    recording(tmp_path / "story.wav", seconds=3.0)  # "iskay siqi" runs 2.25-4.0 s
    grid = write(tmp_path / "story.TextGrid", long_format())
    ws = _Workspace.at(tmp_path / "ws")
    result = prepare_textgrid(grid, ws, progress=False)
    cut = next(u for u in result.utterances if u.text.startswith("iskay"))
    assert cut.duration == pytest.approx(0.75, abs=1e-3) and cut.extra["past_end_s"] == 1.0
    [warning] = [w for w in result.warnings if "past the end" in w]
    assert "story.TextGrid" in warning and "runs 1.00 s past the end" in warning
    assert "wrong media file" in warning
    imported = json.loads(ws.import_report_path.read_text(encoding="utf-8"))
    assert warning in imported["warnings"]
    whole = next(u for u in result.utterances if u.text.startswith("ñuqa"))
    assert "past_end_s" not in whole.extra
    audit = run_audit(ws)
    assert cut.id in audit.excluded_ids() and whole.id not in audit.excluded_ids()
