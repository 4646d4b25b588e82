"""Reading text for LMs: encodings, binary files, leakage, scripts, bounded memory."""

from __future__ import annotations

import codecs
import tracemalloc
import unicodedata

import pytest

from workbench.errors import WorkbenchError
from workbench.lm.corpus import LeakDetector, SentenceReader, sniff_encoding
from workbench.text import OrthographyProfile, tokenize

LATIN = set("abcdefghijklmnopqrstuvwxyzñ'") | {"|"}


def reader(alphabet=LATIN, unit="word", **kwargs) -> SentenceReader:
    return SentenceReader(OrthographyProfile(), alphabet, unit, **kwargs)


def test_encodings_are_sniffed_and_named(tmp_path):
    text = "Ñawpa p'unchaykunapi\n"
    (tmp_path / "u8.txt").write_text(text, encoding="utf-8")
    (tmp_path / "bom.txt").write_bytes(codecs.BOM_UTF8 + text.encode())
    (tmp_path / "u16.txt").write_text(text, encoding="utf-16")
    (tmp_path / "cp.txt").write_text(text, encoding="cp1252")
    assert sniff_encoding(tmp_path / "u8.txt") == ("utf-8", "")
    assert sniff_encoding(tmp_path / "bom.txt") == ("utf-8-sig", "")
    assert sniff_encoding(tmp_path / "u16.txt")[0] == "utf-16"
    encoding, note = sniff_encoding(tmp_path / "cp.txt")
    assert encoding == "cp1252" and "byte 0" in note
    r = reader()
    got = list(r.sentences([tmp_path / n for n in ("u8.txt", "bom.txt", "u16.txt", "cp.txt")]))
    assert got == [["ñawpa", "p'unchaykunapi"]] * 4  # the same words whatever the encoding


def test_an_invalid_byte_deep_in_a_big_file_is_found(tmp_path):
    path = tmp_path / "late.txt"
    with open(path, "wb") as out:
        out.write(("allin " * 400_000).encode())  # 2.4 MB of valid UTF-8, then one bad byte
        out.write(b"caf\xe9\n")
    encoding, note = sniff_encoding(path)
    assert encoding == "cp1252" and "byte 2400003" in note


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is empty"), (b"  \n\n", "is empty"), (b"PK\x03\x04\x00\x00binary", "binary"),
    (bytes(range(1, 32)) * 10, "binary")])
def test_unusable_files_are_refused_by_name(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(WorkbenchError, match=message) as err:
        sniff_encoding(path)
    assert str(path) in str(err.value)
    r = reader()
    assert list(r.sentences([path])) == []
    assert message in r.report.files[0].error


def test_leakage_whole_lines_and_contained_sentences():
    leaks = LeakDetector({"dev": ["wasi hatun kachkan"], "test": ["allin", "mayu sumaq"]})
    assert leaks.find("wasi hatun kachkan".split()) == "dev"
    assert leaks.find("chay wasi hatun kachkan nispa".split()) == "dev"  # inside a paragraph
    assert leaks.find(["allin"]) == "test"  # a short transcript: the whole line only
    assert leaks.find("allin p'unchay".split()) is None
    assert leaks.find("mayu sumaq".split()) == "test"
    assert leaks.find("hatun wasi kachkan".split()) is None


def test_unspellable_words_cut_sentences_and_are_counted(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("wasi ʃip hatun\nXYZ\n", encoding="utf-8")
    r = reader()
    assert list(r.sentences([path])) == [["wasi"], ["hatun"], ["xyz"]]
    assert r.report.outside_alphabet == {"ʃ": 1}
    assert r.report.words_outside_alphabet == 1 and r.report.words_seen == 4


@pytest.mark.parametrize("text", [
    "नमस्ते दुनिया",  # Devanagari: vowel signs and virama are labels of their own
    "ሰላም ዓለም",  # Ethiopic syllabary
    "Tiếng Việt có dấu",  # stacked tone marks
    "ẹ́ kú àárọ̀",  # Yoruba: tone on dotted vowels (no precomposed form)
])
def test_char_tokens_are_the_model_labels(tmp_path, text):
    """A char LM's tokens are exactly what the vocabulary builder makes of the line."""
    profile = OrthographyProfile()
    labels = tokenize(unicodedata.normalize("NFC", text.lower()), profile)
    path = tmp_path / "t.txt"
    path.write_text(unicodedata.normalize("NFD", text) + "\n", encoding="utf-8")
    r = SentenceReader(profile, set(labels), "char")
    assert list(r.sentences([path])) == [labels]


def test_max_words_stops_and_says_where(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("wasi hatun\n" * 100, encoding="utf-8")
    r = reader(max_words=51)
    assert len(list(r.sentences([path]))) == 26
    assert r.report.truncated_at == 52


def peak_while_reading(path) -> tuple[int, int]:
    tracemalloc.start()
    r = reader()
    count = sum(1 for _ in r.sentences([path]))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return count, peak


def test_a_large_file_is_streamed_in_bounded_memory(tmp_path):
    """Reading 8x more text takes no more memory: nothing is held but the current line."""
    line = "allin p'unchay wasi hatun mayu sumaq kachkan ñawpa\n"
    small, large = tmp_path / "small.txt", tmp_path / "large.txt"
    small.write_text(line * 10_000, encoding="utf-8")  # 0.5 MB
    large.write_text(line * 80_000, encoding="utf-8")  # 4 MB
    (n_small, peak_small), (n_large, peak_large) = (peak_while_reading(small),
                                                     peak_while_reading(large))
    assert (n_small, n_large) == (10_000, 80_000)
    assert peak_large < peak_small + 2**19, (peak_small, peak_large)
