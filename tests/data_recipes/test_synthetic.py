"""Tests for the espeak-ng synthetic corpus recipe."""

from __future__ import annotations

import csv
import io
import random
import tarfile
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_recipes.synthetic import (
    LANGUAGES,
    PRETRAINING_LANGUAGES,
    SAMPLE_RATE,
    SCRIPT_LANGUAGES,
    UNSEEN_LANGUAGES,
    generate_corpus,
    generate_multilingual_corpus,
    pack_corpus,
    random_sentence,
    unpack_corpus,
)

needs_espeak = pytest.mark.needs_tool("espeak-ng")  # skipped on a dev machine, failed in CI

VOICES = ("m1", "m3", "f2", "klatt")
SECONDS = 15


def _rows(corpus: Path) -> list[dict[str, str]]:
    with open(corpus / "metadata.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """15 s of Quechua in four voices (only for tests marked ``needs_espeak``)."""
    out = tmp_path_factory.mktemp("synthetic") / "qu_corpus"
    return generate_corpus(
        out, language="qu", minutes=SECONDS / 60, voices=VOICES, seed=3, progress=False
    )


def test_language_table_is_consistent() -> None:
    assert set(UNSEEN_LANGUAGES) == {"mi", "gn", "qu", "haw"}
    assert set(UNSEEN_LANGUAGES) <= set(LANGUAGES)
    assert len(PRETRAINING_LANGUAGES) >= 14
    assert not set(PRETRAINING_LANGUAGES) & set(UNSEEN_LANGUAGES)
    # The script benchmark's languages stay out of the base, so its table measures learning.
    assert not set(PRETRAINING_LANGUAGES) & set(SCRIPT_LANGUAGES)
    assert {"vi", "ta", "bn", "ar"} <= set(PRETRAINING_LANGUAGES)  # sounds Latin lacks
    assert set("aiu") <= LANGUAGES["qu"].alphabet
    assert not set("eo") & LANGUAGES["qu"].alphabet


def test_vietnamese_writes_every_syllable_as_a_word() -> None:
    spec = LANGUAGES["vi"]
    for word in random_sentence(spec, random.Random(1), (30, 30)).split():
        assert len(word) <= 2 + 2 + 2  # onset, nucleus, coda: at most two letters each


@pytest.mark.parametrize("code", sorted(LANGUAGES))
def test_sentences_use_only_the_language_letters(code: str) -> None:
    spec = LANGUAGES[code]
    rng = random.Random(0)
    for _ in range(50):
        text = random_sentence(spec, rng, (2, 7))
        assert text == unicodedata.normalize("NFC", text).lower()
        assert set(text) <= spec.alphabet | {" "}
        assert 2 <= len(text.split(" ")) <= 7


@needs_espeak
def test_corpus_layout_and_audio(corpus: Path) -> None:
    rows = _rows(corpus)
    assert list(rows[0]) == ["file_name", "transcription", "speaker"]
    clips = sorted(p.name for p in (corpus / "clips").iterdir())
    assert sorted(Path(r["file_name"]).name for r in rows) == clips
    total = 0.0
    for row in rows:
        audio, rate = sf.read(corpus / row["file_name"], always_2d=True)
        assert rate == SAMPLE_RATE
        assert audio.shape[1] == 1
        assert np.sqrt(np.mean(audio**2)) > 0.01  # clearly not silence
        total += len(audio) / rate
    assert total >= SECONDS
    assert total < SECONDS + 20  # stops soon after reaching the target


@needs_espeak
def test_transcripts_and_voices(corpus: Path) -> None:
    rows = _rows(corpus)
    alphabet = LANGUAGES["qu"].alphabet | {" "}
    for row in rows:
        text = row["transcription"]
        assert text and set(text) <= alphabet
        assert text == unicodedata.normalize("NFC", text).lower()
    speakers = {row["speaker"] for row in rows}
    assert len(speakers) > 1
    assert speakers <= set(VOICES)


@needs_espeak
def test_same_seed_same_corpus(corpus: Path, tmp_path: Path) -> None:
    again = generate_corpus(
        tmp_path / "again", minutes=SECONDS / 60, voices=VOICES, seed=3, progress=False
    )
    other = generate_corpus(
        tmp_path / "other", minutes=SECONDS / 60, voices=VOICES, seed=4, progress=False
    )
    assert _rows(again) == _rows(corpus)
    assert [r["transcription"] for r in _rows(other)] != [r["transcription"] for r in _rows(corpus)]


@needs_espeak
def test_existing_corpus_is_not_overwritten_silently(corpus: Path) -> None:
    with pytest.raises(FileExistsError):
        generate_corpus(corpus, minutes=0.05, voices=VOICES, progress=False)


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="language"):
        generate_corpus(tmp_path / "x", language="xx", progress=False)
    with pytest.raises(ValueError, match="audio_format"):
        generate_corpus(tmp_path / "x", audio_format="mp3", voices=VOICES, progress=False)


@needs_espeak
def test_unknown_voice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="variant"):
        generate_corpus(tmp_path / "x", voices=("m1", "no-such-voice"), progress=False)


@needs_espeak
def test_multilingual_ogg_corpus(tmp_path: Path) -> None:
    out = generate_multilingual_corpus(
        tmp_path / "multi",
        languages=["es", "haw"],
        minutes_per_language=4 / 60,
        voices=VOICES,
        audio_format="ogg",
        progress=False,
    )
    rows = _rows(out)
    assert list(rows[0]) == ["file_name", "transcription", "speaker", "language"]
    assert {r["language"] for r in rows} == {"es", "haw"}
    for row in rows:
        assert row["speaker"].startswith(row["language"] + "-")
        assert set(row["transcription"]) <= LANGUAGES[row["language"]].alphabet | {" "}
        info = sf.info(out / row["file_name"])
        assert (info.format, info.samplerate, info.channels) == ("OGG", SAMPLE_RATE, 1)


@needs_espeak
def test_pack_unpack_round_trip(corpus: Path, tmp_path: Path) -> None:
    archive = pack_corpus(corpus, tmp_path / "corpus.tar")
    assert archive.read_bytes() == pack_corpus(corpus, tmp_path / "again.tar").read_bytes()
    extracted = unpack_corpus(archive, tmp_path / "out")
    assert extracted == tmp_path / "out" / corpus.name
    assert _rows(extracted) == _rows(corpus)
    for row in _rows(corpus):
        assert (extracted / row["file_name"]).read_bytes() == (
            corpus / row["file_name"]
        ).read_bytes()


def _tar_with(tmp_path: Path, info: tarfile.TarInfo, data: bytes = b"") -> Path:
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w") as tar:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return archive


@pytest.mark.parametrize("name", ["../evil", "corpus/../../evil", "/tmp/evil"])
def test_unpack_refuses_escaping_paths(tmp_path: Path, name: str) -> None:
    archive = _tar_with(tmp_path, tarfile.TarInfo(name), b"boom")
    dest = tmp_path / "dest"
    with pytest.raises(ValueError, match="refusing"):
        unpack_corpus(archive, dest)
    assert not (tmp_path / "evil").exists()
    assert not dest.exists()


def test_unpack_refuses_links(tmp_path: Path) -> None:
    link = tarfile.TarInfo("corpus/metadata.csv")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    with pytest.raises(ValueError, match="refusing"):
        unpack_corpus(_tar_with(tmp_path, link), tmp_path / "dest")


def test_pack_needs_a_corpus_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="metadata.csv"):
        pack_corpus(tmp_path, tmp_path.parent / "x.tar")
