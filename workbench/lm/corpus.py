"""Reading the community's text for a language model: any encoding, streamed, reported.

Every line is normalised with the workspace's orthography profile by the same function as the
transcripts (``workbench.text.normalize`` / ``tokenize``), so the LM and the model share one
alphabet. A word that holds a label outside the model's vocabulary can never be produced by
the decoder: it ends the sentence there (so no false n-gram joins its neighbours) and its
characters are counted in the report. Lines that contain a dev or test transcript are
leakage (an LM that has seen the test sentences makes every score a lie) and are left out
unless the caller allows them.
"""

from __future__ import annotations

import codecs
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.text import OrthographyProfile, normalize, tokenize

WORD, CHAR = "word", "char"
UNITS = (WORD, CHAR)
SNIFF_BYTES = 64 * 1024
BLOCK_BYTES = 1 << 18  # UTF-8 validation reads (and decodes) this much at a time
LEAK_MIN_WORDS = 3  # shorter transcripts count as leaked only when a whole line equals them
EXAMPLES = 5


@dataclass
class TextFile:
    """One input file as read: its encoding, and what became of its lines."""

    path: str
    encoding: str = ""
    note: str = ""
    lines: int = 0
    sentences: int = 0
    error: str = ""


@dataclass
class CorpusReport:
    """What the text gave: counts, characters outside the vocabulary, leakage."""

    unit: str
    files: list[TextFile] = field(default_factory=list)
    sentences: int = 0
    tokens: int = 0
    words_seen: int = 0
    words_outside_alphabet: int = 0
    outside_alphabet: Counter = field(default_factory=Counter)
    leaked_lines: dict[str, int] = field(default_factory=lambda: {"dev": 0, "test": 0})
    leaked_examples: list[str] = field(default_factory=list)
    leakage_allowed: bool = False
    truncated_at: int = 0  # words read when --max-words stopped the reading; 0 if it did not

    def to_dict(self) -> dict:
        return {
            "unit": self.unit, "files": [vars(f) for f in self.files],
            "sentences": self.sentences, "tokens": self.tokens, "words_seen": self.words_seen,
            "words_outside_alphabet": self.words_outside_alphabet,
            "outside_alphabet": dict(self.outside_alphabet.most_common()),
            "leaked_lines": self.leaked_lines, "leaked_examples": self.leaked_examples,
            "leakage_allowed": self.leakage_allowed, "truncated_at": self.truncated_at,
        }


# ---------------------------------------------------------------------------------------------
# Files and encodings


def sniff_encoding(path: Path) -> tuple[str, str]:
    """The encoding to read ``path`` with, and a note when it is not plain UTF-8.

    Raises:
        WorkbenchError: the file is empty, looks binary, or cannot be read.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as err:
        raise WorkbenchError(f"{path}: cannot read it ({err.strerror}).") from err
    if not head.strip():
        raise WorkbenchError(f"{path} is empty: there is no text to learn from.")
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", ""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", "read as UTF-16 (byte-order mark)"
    if b"\x00" in head or _control_share(head) > 0.1:
        raise WorkbenchError(
            f"{path} looks like a binary file, not text (NUL or control bytes near its start). "
            "Give plain-text files (.txt, UTF-8); export a Word or PDF document as text first.")
    offset = _first_invalid_utf8(path)
    if offset is None:
        return "utf-8", ""
    return "cp1252", (f"not valid UTF-8 (byte {offset}): read as Windows-1252; check its "
                      "accented letters in the report, or save it as UTF-8")


def _control_share(data: bytes) -> float:
    controls = sum(1 for b in data if b < 32 and b not in (9, 10, 12, 13))
    return controls / max(1, len(data))


def _first_invalid_utf8(path: Path) -> int | None:
    """Byte offset of the first invalid UTF-8 sequence, streamed; None if it is all valid."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK_BYTES):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as err:
                return offset + err.start
            offset += len(block)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return offset
    return None


def read_lines(path: Path, encoding: str) -> Iterator[str]:
    """The lines of ``path``, streamed (memory bounded by the longest line)."""
    errors = "replace" if encoding == "cp1252" else "strict"
    with open(path, encoding=encoding, errors=errors, newline=None) as handle:
        yield from handle


# ---------------------------------------------------------------------------------------------
# Leakage


class LeakDetector:
    """Finds dev and test transcripts inside lines of text (whole words, normalised)."""

    def __init__(self, transcripts: dict[str, Iterable[str]]) -> None:
        self.exact: dict[str, str] = {}
        self.by_start: dict[tuple[str, ...], list[tuple[tuple[str, ...], str]]] = {}
        for split, texts in transcripts.items():
            for text in texts:
                words = tuple(text.split())
                if not words:
                    continue
                self.exact.setdefault(" ".join(words), split)
                if len(words) >= LEAK_MIN_WORDS:
                    key = words[:LEAK_MIN_WORDS]
                    self.by_start.setdefault(key, []).append((words, split))

    def find(self, words: Sequence[str]) -> str | None:
        """The split whose transcript this line holds, or None."""
        split = self.exact.get(" ".join(words))
        if split or not self.by_start:
            return split
        for i in range(len(words) - LEAK_MIN_WORDS + 1):
            for candidate, split in self.by_start.get(tuple(words[i:i + LEAK_MIN_WORDS]), ()):
                if tuple(words[i:i + len(candidate)]) == candidate:
                    return split
        return None


# ---------------------------------------------------------------------------------------------
# Sentences


class SentenceReader:
    """Token lists for the estimator, from text files, filling a :class:`CorpusReport`."""

    def __init__(self, profile: OrthographyProfile, alphabet: set[str], unit: str = WORD, *,
                 leaks: LeakDetector | None = None, allow_leakage: bool = False,
                 max_words: int = 0) -> None:
        if unit not in UNITS:
            raise WorkbenchError(f"Unknown LM unit {unit!r}; choose word or char.")
        self.profile, self.alphabet, self.unit = profile, alphabet, unit
        self.leaks, self.max_words = leaks, max_words
        self.report = CorpusReport(unit=unit, leakage_allowed=allow_leakage)
        self._spelling: dict[str, list[str] | None] = {}

    def sentences(self, paths: Sequence[Path]) -> Iterator[list[str]]:
        """Each file in turn; a file that cannot be read is reported and the rest go on."""
        for path in paths:
            record = TextFile(str(path))
            self.report.files.append(record)
            try:
                record.encoding, record.note = sniff_encoding(Path(path))
                yield from self._file_sentences(Path(path), record)
            except (WorkbenchError, UnicodeDecodeError) as err:
                record.error = str(err)
            if self.report.truncated_at:
                return

    def _file_sentences(self, path: Path, record: TextFile) -> Iterator[list[str]]:
        for line in read_lines(path, record.encoding):
            record.lines += 1
            words = normalize(line, self.profile).split()
            if not words or self._leaked(words, path, record.lines):
                continue
            self.report.words_seen += len(words)
            for sentence in self._spellable_runs(words):
                record.sentences += 1
                self.report.sentences += 1
                self.report.tokens += len(sentence)
                yield sentence
            if self.max_words and self.report.words_seen >= self.max_words:
                self.report.truncated_at = self.report.words_seen
                return

    def _leaked(self, words: list[str], path: Path, line: int) -> bool:
        split = self.leaks.find(words) if self.leaks else None
        if split is None:
            return False
        self.report.leaked_lines[split] += 1
        if len(self.report.leaked_examples) < EXAMPLES:
            self.report.leaked_examples.append(f"{path.name}:{line} ({split}): "
                                               f"{' '.join(words)[:80]}")
        return not self.report.leakage_allowed

    def _spellable_runs(self, words: list[str]) -> Iterator[list[str]]:
        """Runs of words the model can spell; an unspellable word ends a run."""
        run: list[str] = []
        for word in words:
            labels = self._labels(word)
            if labels is None:
                self.report.words_outside_alphabet += 1
                if run:
                    yield self._tokens(run)
                run = []
            else:
                run.append(word)
        if run:
            yield self._tokens(run)

    def _labels(self, word: str) -> list[str] | None:
        if word not in self._spelling:
            labels = tokenize(word, self.profile)
            outside = [label for label in labels if label not in self.alphabet]
            self.report.outside_alphabet.update(outside)
            self._spelling[word] = None if outside else labels
        elif self._spelling[word] is None:
            self.report.outside_alphabet.update(
                label for label in tokenize(word, self.profile) if label not in self.alphabet)
        return self._spelling[word]

    def _tokens(self, run: list[str]) -> list[str]:
        if self.unit == WORD:
            return run
        tokens: list[str] = []
        for i, word in enumerate(run):
            if i:
                tokens.append(self.profile.word_delimiter)
            tokens.extend(self._spelling[word] or ())
        return tokens
