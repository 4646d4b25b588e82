"""A folder no recipe reads: the message names each file and what is wrong with it."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from data_recipes import detect_format
from ui.messages import for_page
from workbench.audio import SAMPLE_RATE
from workbench.errors import WorkbenchError

TRANSCRIPTS = "upload it together with a CSV/TSV table, ELAN or TextGrid file"


def _error(folder) -> WorkbenchError:
    with pytest.raises(WorkbenchError) as caught:
        detect_format(folder)
    return caught.value


def _tone(path) -> None:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    sf.write(path, 0.2 * np.sin(2 * np.pi * 220 * t), SAMPLE_RATE)


def test_a_lone_empty_wav_is_called_empty(tmp_path):
    (tmp_path / "rimay.wav").write_bytes(b"")
    error = _error(tmp_path)
    assert str(error).startswith(f"{tmp_path}: rimay.wav is empty (0 bytes).")
    page = for_page(error)
    assert page.startswith("rimay.wav is empty (0 bytes).") and TRANSCRIPTS in page
    assert str(tmp_path) not in page and "format" not in page


def test_a_lone_file_that_is_not_audio_is_called_so(tmp_path):
    (tmp_path / "ድምፅ.wav").write_text("hello, this is a text file", encoding="utf-8")
    page = for_page(_error(tmp_path))
    assert page.startswith("ድምፅ.wav is not an audio file ffmpeg can read.")


def test_audio_without_any_transcript_is_called_so(tmp_path):
    _tone(tmp_path / "qallariy.wav")
    error = _error(tmp_path)
    assert for_page(error) == f"qallariy.wav has no transcript: {TRANSCRIPTS}."
    assert "metadata.csv" in str(error) and "upload" not in str(error)  # the CLI's advice


def test_several_files_are_each_named(tmp_path):
    (tmp_path / "a.flac").write_bytes(b"")
    (tmp_path / "b.wav").write_bytes(b"RIFF nonsense")
    for name in ("c.wav", "d.wav", "e.wav", "f.wav"):
        _tone(tmp_path / name)
    page = for_page(_error(tmp_path))
    assert page == ("a.flac is empty (0 bytes). b.wav is not an audio file ffmpeg can read. "
                    "c.wav, d.wav, e.wav and 1 more have no transcript: upload them together "
                    "with a CSV/TSV table, ELAN or TextGrid file.")


def test_a_folder_without_audio_keeps_the_format_advice(tmp_path):
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    error = _error(tmp_path)
    assert "cannot tell the format" in str(error) and "--format" in str(error)
    assert "--format" not in for_page(error) and "'Format'" in for_page(error)
