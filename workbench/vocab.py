"""The label vocabulary, built from the TRAIN split only, and the HF tokenizer/processor.

Ids are fixed by convention: ``[PAD]`` is 0 and doubles as the CTC blank, ``[UNK]`` is 1, the
word delimiter is 2, then every other label sorted by code point. Dev and test transcripts
never add labels (that would leak test characters into the model); the vocabulary report
instead lists what they contain that train lacks, and how much of them would become [UNK].
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.audio import SAMPLE_RATE
from workbench.errors import WorkbenchError
from workbench.fsio import write_bytes_atomic
from workbench.manifest import Utterance, write_json_atomic
from workbench.text import (
    APOSTROPHE_LOOK_ALIKES,
    CODEPOINT,
    DEFAULT_WORD_DELIMITER,
    GRAPHEME,
    LABEL_UNITS,
    LEGACY_LABEL_UNIT,
    OrthographyProfile,
    apostrophe_folding,
    load_profile,
    normalize,
    profile_to_dict,
    remove_format_characters,
    tokenize,
)
from workbench.workspace import Workspace

if TYPE_CHECKING:  # transformers is imported lazily: it takes seconds to load
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2Processor

PAD = "[PAD]"  # id 0, the CTC blank
UNK = "[UNK]"  # id 1
DELIMITER_ID = 2  # the word delimiter label
SPECIAL_TOKENS = (PAD, UNK)
MAX_EXAMPLES = 5  # utterance ids listed per rare or unseen label
# The report warns when at least this share of (at least this many) labels occur once.
SINGLES_SHARE = 0.3
SINGLES_MIN_LABELS = 20


def build_vocab(
    train_texts: Iterable[str], profile: OrthographyProfile | None = None
) -> dict[str, int]:
    """Build the label -> id vocabulary from raw training transcripts.

    Args:
        train_texts: Transcripts of the TRAIN split, as the source gave them.
        profile: The orthography profile (defaults when None); texts are normalised here.

    Returns:
        {"[PAD]": 0, "[UNK]": 1, delimiter: 2, then labels sorted by code point}.

    Raises:
        WorkbenchError: A grapheme of the profile collides with a special token.
    """
    profile = profile or OrthographyProfile()
    labels: set[str] = set()
    for text in train_texts:
        labels.update(tokenize(normalize(text, profile), profile))
    clashes = labels & set(SPECIAL_TOKENS)
    if clashes:
        raise WorkbenchError(
            f"The label(s) {', '.join(sorted(clashes))} clash with the tokenizer's special "
            "tokens; change the graphemes in the orthography profile."
        )
    labels.discard(profile.word_delimiter)
    ordered = [PAD, UNK, profile.word_delimiter, *sorted(labels)]
    return {token: index for index, token in enumerate(ordered)}


def load_vocab(path: Path) -> dict[str, int]:
    """Read a vocab.json written by :func:`build_workspace_vocab`.

    Raises:
        WorkbenchError: The file is missing, not JSON, or not a token -> id mapping with
            [PAD] and [UNK].
    """
    path = Path(path)
    if not path.exists():
        raise WorkbenchError(f"{path} does not exist. Run `workbench vocab` to build it.")
    try:
        vocab = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise WorkbenchError(f"{path} is not valid JSON ({err}); rebuild it.") from err
    valid = isinstance(vocab, dict) and all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
        for k, v in vocab.items()
    )
    if not valid or PAD not in vocab or UNK not in vocab:
        raise WorkbenchError(
            f"{path} is not a label vocabulary (a JSON object of label -> id with {PAD} and "
            f"{UNK}); rebuild it."
        )
    if len(set(vocab.values())) != len(vocab):
        raise WorkbenchError(f"{path} gives two labels the same id; rebuild it.")
    return vocab


def encode_labels(
    text: str, vocab: dict[str, int], profile: OrthographyProfile | None = None
) -> list[int]:
    """Turn a raw transcript into label ids (unknown labels become the [UNK] id).

    Uses the workbench tokenizer, not the HF one, so multi-character graphemes and the word
    delimiter come out exactly as in the vocabulary.
    """
    unk = vocab[UNK]
    return [vocab.get(token, unk) for token in tokenize(normalize(text, profile), profile)]


# ---------------------------------------------------------------------------------------------
# Report


def unicode_names(token: str) -> str:
    """Code points and names of a label, e.g. "U+0063 LATIN SMALL LETTER C"."""
    return " + ".join(f"U+{ord(c):04X} {unicodedata.name(c, '(unnamed)')}" for c in token)


@dataclass
class TokenStat:
    """One label in the report: how often it occurs and where."""

    token: str
    count: int
    names: str
    examples: list[str] = field(default_factory=list)


@dataclass
class FoldedLookAlike:
    """An apostrophe look-alike the profile folded into another character, in every split."""

    char: str
    names: str
    into: str
    count: int
    examples: list[str] = field(default_factory=list)


@dataclass
class VocabReport:
    """What the vocabulary covers and what it misses.

    Attributes:
        vocab_size: Number of labels including [PAD], [UNK] and the word delimiter.
        train_utterances: Training utterances the vocabulary was built from.
        train_counts: Every training label (word delimiter excluded), most frequent first.
        rare: Training labels seen fewer than ``rare_threshold`` times.
        unseen: Per dev/test split, labels the vocabulary lacks (they become [UNK]).
        unk_share: Per dev/test split, the share of its labels (word delimiters excluded)
            that would become [UNK].
        split_label_counts: Per dev/test split, the number of labels counted for unk_share.
        rare_threshold: The count below which a label is called rare.
        folded_look_alikes: Apostrophe look-alikes found in the transcripts (any split) and
            folded into one character by the profile, most frequent first.
        look_alike_labels: Apostrophe look-alikes that are labels of their own in the
            vocabulary (two or more of them may be one letter typed differently).
        label_unit: What one label is: "codepoint" or "grapheme" (the profile's label_unit).
        seen_once: Training labels seen exactly once.
    """

    vocab_size: int
    train_utterances: int
    train_counts: list[TokenStat]
    rare: list[TokenStat]
    unseen: dict[str, list[TokenStat]]
    unk_share: dict[str, float]
    split_label_counts: dict[str, int]
    rare_threshold: int
    folded_look_alikes: list[FoldedLookAlike] = field(default_factory=list)
    look_alike_labels: list[str] = field(default_factory=list)
    label_unit: str = CODEPOINT
    seen_once: int = 0

    def to_dict(self) -> dict:
        """JSON-ready form of the report."""
        return asdict(self)

    @property
    def too_many_single_labels(self) -> bool:
        """Many labels occur once in training: most of them cannot be learnt."""
        labels = len(self.train_counts)
        return labels >= SINGLES_MIN_LABELS and self.seen_once >= SINGLES_SHARE * labels

    def unit_advice(self) -> str:
        """What the unit means here, and why many labels seen once hurt ("" if all is well)."""
        if not self.too_many_single_labels:
            return ""
        share = f"{self.seen_once} of the {len(self.train_counts)} labels occur only once"
        if self.label_unit == GRAPHEME:
            return (f"{share} in training. With label_unit: grapheme every letter with its "
                    "marks (in an abugida, nearly every syllable) is a label of its own, and "
                    "a label seen once cannot be learnt; a syllable never seen whole can never "
                    "be written. Set label_unit: codepoint in the orthography profile so "
                    "letters and marks are labels the model shares between syllables.")
        return (f"{share} in training: the model can hardly learn them. Check them for "
                "typos or look-alikes (map them to a common letter in the orthography "
                "profile), or add transcribed audio that uses them.")


def _label_stats(
    utterances: Iterable[Utterance], profile: OrthographyProfile
) -> tuple[Counter, dict[str, list[str]]]:
    """Label counts (word delimiter excluded) and example utterance ids per label."""
    counts: Counter = Counter()
    examples: dict[str, list[str]] = {}
    for utt in utterances:
        tokens = tokenize(normalize(utt.text, profile), profile)
        tokens = [t for t in tokens if t != profile.word_delimiter]
        counts.update(tokens)
        for token in dict.fromkeys(tokens):
            ids = examples.setdefault(token, [])
            if len(ids) < MAX_EXAMPLES:
                ids.append(utt.id)
    return counts, examples


def _stat(token: str, count: int, examples: dict[str, list[str]]) -> TokenStat:
    return TokenStat(token, count, unicode_names(token), list(examples.get(token, [])))


def _by_count(counts: Counter) -> list[str]:
    return sorted(counts, key=lambda t: (-counts[t], t))


def folded_look_alikes(
    splits: dict[str, list[Utterance]], profile: OrthographyProfile
) -> list[FoldedLookAlike]:
    """Apostrophe look-alikes in the raw transcripts that the profile folds, with counts."""
    table = apostrophe_folding(profile)
    counts: Counter = Counter()
    examples: dict[str, list[str]] = {}
    for utterances in splits.values():
        for utt in utterances:
            text = unicodedata.normalize("NFC", remove_format_characters(utt.text))
            found = Counter(c for c in text if c in table)
            counts.update(found)
            for char in found:
                ids = examples.setdefault(char, [])
                if len(ids) < MAX_EXAMPLES:
                    ids.append(utt.id)
    return [
        FoldedLookAlike(c, unicode_names(c), table[c], counts[c], examples[c])
        for c in _by_count(counts)
    ]


def vocab_report(
    splits: dict[str, list[Utterance]],
    vocab: dict[str, int],
    profile: OrthographyProfile | None = None,
    rare_threshold: int = 3,
) -> VocabReport:
    """Describe how well a vocabulary built from train covers every split.

    Args:
        splits: Utterances keyed by split name ("train", "dev", "test").
        vocab: The vocabulary built from train.
        profile: The orthography profile used to build it (defaults when None).
        rare_threshold: Training labels seen fewer times than this are reported as rare.

    Returns:
        The report; nothing is written.
    """
    profile = profile or OrthographyProfile()
    train = splits.get("train", [])
    counts, examples = _label_stats(train, profile)
    train_counts = [_stat(t, counts[t], examples) for t in _by_count(counts)]
    rare = [s for s in train_counts if s.count < rare_threshold]
    unseen: dict[str, list[TokenStat]] = {}
    unk_share: dict[str, float] = {}
    totals: dict[str, int] = {}
    for name, utterances in splits.items():
        if name == "train":
            continue
        split_counts, split_examples = _label_stats(utterances, profile)
        missing = Counter({t: c for t, c in split_counts.items() if t not in vocab})
        unseen[name] = [_stat(t, missing[t], split_examples) for t in _by_count(missing)]
        totals[name] = sum(split_counts.values())
        unk_share[name] = sum(missing.values()) / totals[name] if totals[name] else 0.0
    return VocabReport(
        vocab_size=len(vocab),
        train_utterances=len(train),
        train_counts=train_counts,
        rare=rare,
        unseen=unseen,
        unk_share=unk_share,
        split_label_counts=totals,
        rare_threshold=rare_threshold,
        folded_look_alikes=folded_look_alikes(splits, profile),
        look_alike_labels=[t for t in vocab if len(t) == 1 and t in APOSTROPHE_LOOK_ALIKES],
        label_unit=profile.label_unit,
        seen_once=sum(1 for s in train_counts if s.count == 1),
    )


def format_vocab_report(report: VocabReport) -> str:
    """Human-readable summary of a vocabulary report (for the CLI)."""
    unit = ("one per code point of the NFC text" if report.label_unit == CODEPOINT
            else "one per letter with its combining marks")
    lines = [
        f"Vocabulary: {report.vocab_size} labels (with [PAD], [UNK] and the word delimiter), "
        f"from {report.train_utterances} training utterances; labels are {unit} "
        f"(label_unit: {report.label_unit}).",
        "Training labels (count, code points):",
    ]
    lines += [f"  {s.token!r:>8} {s.count:>7}  {s.names}" for s in report.train_counts]
    if report.rare:
        lines.append(f"Rare labels (fewer than {report.rare_threshold} in train):")
        lines += [
            f"  {s.token!r:>8} {s.count:>7}  {s.names}  e.g. {', '.join(s.examples)}"
            for s in report.rare
        ]
    for split, stats in report.unseen.items():
        share = report.unk_share.get(split, 0.0)
        total = report.split_label_counts.get(split, 0)
        if not stats:
            lines.append(f"{split}: every label is in the vocabulary ({total} labels).")
            continue
        lines.append(
            f"{split}: {len(stats)} label(s) not in the vocabulary; {share:.2%} of its "
            f"{total} labels would become [UNK]:"
        )
        lines += [
            f"  {s.token!r:>8} {s.count:>7}  {s.names}  e.g. {', '.join(s.examples)}" for s in stats
        ]
    if any(report.unseen.values()):
        lines.append(
            "If an unseen label is a look-alike of a training label (compare the code points), "
            "add a mapping to the orthography profile; if it is punctuation, add it to ignore."
        )
    advice = report.unit_advice()
    return "\n".join(lines + _look_alike_lines(report) + ([advice] if advice else []))


def _look_alike_lines(report: VocabReport) -> list[str]:
    lines = []
    if report.folded_look_alikes:
        into = report.folded_look_alikes[0].into
        lines.append(f"Apostrophe look-alikes written as {into!r} ({unicode_names(into)}):")
        lines += [
            f"  {f.char!r:>8} {f.count:>7}  {f.names}  e.g. {', '.join(f.examples)}"
            for f in report.folded_look_alikes
        ]
        lines.append(
            "If one of them is a letter of its own in your orthography, list it under "
            "distinct_letters in the orthography profile."
        )
    if len(report.look_alike_labels) > 1:
        lines.append(
            f"Look-alike labels kept apart: {' '.join(report.look_alike_labels)}. If they are "
            "one letter typed differently, remove them from distinct_letters (or set "
            "fold_apostrophes) so they share one label."
        )
    return lines


# ---------------------------------------------------------------------------------------------
# Workspace step


def resolve_profile(ws: Workspace, profile_path: Path | None = None) -> OrthographyProfile:
    """The profile a workspace step uses: ``profile_path``, else the workspace's, else defaults.

    Raises:
        WorkbenchError: ``profile_path`` does not exist or is not a valid profile.
    """
    if profile_path is None:
        return load_profile(ws.profile_path)
    profile_path = Path(profile_path)
    if not profile_path.is_file():
        raise WorkbenchError(f"Orthography profile {profile_path} does not exist.")
    return load_profile(profile_path)


def install_profile(ws: Workspace, profile_path: Path) -> None:
    """Copy a profile file to ``ws.profile_path`` (verbatim, comments kept), atomically."""
    target = ws.profile_path
    if target.exists() and target.samefile(profile_path):
        return
    write_bytes_atomic(target, Path(profile_path).read_bytes())


def vocab_inputs(ws: Workspace) -> str:
    """Fingerprint of what the vocabulary is built from: train transcripts and the profile."""
    digest = hashlib.sha1()
    for utt in ws.read_split("train"):
        digest.update(utt.text.encode("utf-8") + b"\0")
    profile = profile_to_dict(load_profile(ws.profile_path))
    profile.pop("label_unit")  # recorded apart (see built_unit): older reports lack it
    digest.update(json.dumps(profile, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()


def built_unit(ws: Workspace) -> str:
    """The label unit the workspace's vocabulary was built with (a vocabulary built before
    label_unit existed used one label per letter with its marks)."""
    try:
        report = json.loads(ws.vocab_report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return LEGACY_LABEL_UNIT
    unit = report.get("label_unit") if isinstance(report, dict) else None
    return unit if unit in LABEL_UNITS else LEGACY_LABEL_UNIT


def unit_changed(ws: Workspace) -> bool:
    """The profile's label unit is not the one the vocabulary was built with."""
    return (ws.vocab_path.is_file()
            and built_unit(ws) != load_profile(ws.profile_path).label_unit)


def vocab_is_stale(ws: Workspace) -> bool:
    """Whether the training transcripts or the orthography profile changed since the
    vocabulary was built (False when there is no vocabulary yet)."""
    if not ws.vocab_path.is_file():
        return False
    if unit_changed(ws):
        return True
    try:
        built_from = json.loads(ws.vocab_report_path.read_text(encoding="utf-8"))["inputs"]
    except (OSError, ValueError, KeyError, TypeError):
        built = ws.vocab_path.stat().st_mtime_ns  # a report from before fingerprints
        sources = (ws.manifest_path("train"), ws.profile_path)
        return any(p.is_file() and p.stat().st_mtime_ns > built for p in sources)
    return built_from != vocab_inputs(ws)


def require_current_vocab(ws: Workspace) -> None:
    """Refuse to train on a missing or out-of-date vocabulary.

    Raises:
        WorkbenchError: There is no vocab.json, or the data or profile changed since.
    """
    if not ws.vocab_path.is_file():
        raise WorkbenchError(f"{ws.root.name} has no vocabulary yet. Build it with "
                             f"`workbench vocab -w {ws.root}` (step 3, Alphabet, in the page).",
                             page="There is no vocabulary yet: build it in step 3, Alphabet "
                                  "(Save and build the vocabulary).")
    if unit_changed(ws):
        built, now = built_unit(ws), load_profile(ws.profile_path).label_unit
        raise WorkbenchError(
            f"The vocabulary was built with one label per {_unit_words(built)}, but the "
            f"orthography profile now says label_unit: {now} (one label per "
            f"{_unit_words(now)}; codepoint is the default since vocabularies record their "
            f"unit). Build it again with `workbench vocab -w {ws.root}`, or set label_unit: "
            f"{built} in {ws.profile_path.name} to keep it.",
            page=f"The vocabulary was built with one label per {_unit_words(built)}, but the "
                 f"profile now makes one label per {_unit_words(now)}. Build it again in "
                 "step 3, Alphabet (Save and build the vocabulary), then train.")
    if vocab_is_stale(ws):
        raise WorkbenchError(
            "The training transcripts or the orthography profile changed after the vocabulary "
            f"was built, so its labels no longer match the data. Build it again with "
            f"`workbench vocab -w {ws.root}` (step 3, Alphabet, in the page), then train.",
            page="The training transcripts or the orthography profile changed after the "
                 "vocabulary was built, so its labels no longer match the data. Build it "
                 "again in step 3, Alphabet (Save and build the vocabulary), then train.")


def _unit_words(unit: str) -> str:
    return "code point" if unit == CODEPOINT else "letter with its combining marks"


def build_workspace_vocab(ws: Workspace, profile_path: Path | None = None) -> VocabReport:
    """Build vocab.json from the workspace's train split and write the vocabulary report.

    Args:
        ws: The workspace (must be prepared and split).
        profile_path: Orthography profile to use (copied into the workspace); None uses the
            workspace's orthography.yaml, or the defaults if there is none.

    Returns:
        The vocabulary report (also written to ``ws.vocab_report_path``).

    Raises:
        WorkbenchError: No training data, or the training transcripts yield no labels.
    """
    profile = resolve_profile(ws, profile_path)
    splits = ws.read_all()
    train = splits.get("train", [])
    if not train:
        raise WorkbenchError(
            f"{ws.manifest_path('train')} is missing or empty, so there is nothing to build "
            f"the vocabulary from. Run `workbench prepare SOURCE -w {ws.root}` first.",
            page="There are no training transcripts to build the vocabulary from: import "
                 "data in step 1, Data, first.",
        )
    vocab = build_vocab((u.text for u in train), profile)
    if len(vocab) <= len(SPECIAL_TOKENS) + 1:
        raise WorkbenchError(
            f"The {len(train)} training transcripts contain no letters after normalisation. "
            f"Check that the transcripts are filled in and that the ignore setting of "
            f"{ws.profile_path} does not remove the letters."
        )
    if profile_path is not None:
        install_profile(ws, Path(profile_path))  # later steps normalise the same way
    report = vocab_report(splits, vocab, profile)
    write_json_atomic(ws.vocab_path, vocab)
    write_json_atomic(ws.vocab_report_path, {**report.to_dict(), "inputs": vocab_inputs(ws)})
    return report


# ---------------------------------------------------------------------------------------------
# Hugging Face objects


def make_tokenizer(vocab_path: Path, *, word_delimiter: str | None = None) -> Wav2Vec2CTCTokenizer:
    """A ``Wav2Vec2CTCTokenizer`` over vocab.json.

    No <s>/</s> tokens are added, so ``len(tokenizer) == len(vocab)`` and the model's output
    layer matches the vocabulary. Use it for decoding; encode labels with
    :func:`encode_labels` (the HF tokenizer splits multi-character labels wrongly around
    spaces).

    Args:
        vocab_path: The vocab.json written by :func:`build_workspace_vocab`.
        word_delimiter: The word delimiter label; None takes the label with id 2, where
            :func:`build_vocab` puts it.
    """
    from transformers import Wav2Vec2CTCTokenizer

    vocab = load_vocab(vocab_path)  # readable error instead of one deep inside transformers
    if word_delimiter is None:
        by_id = {index: token for token, index in vocab.items()}
        word_delimiter = by_id.get(DELIMITER_ID, DEFAULT_WORD_DELIMITER)
    return Wav2Vec2CTCTokenizer(
        str(vocab_path),
        unk_token=UNK,
        pad_token=PAD,
        word_delimiter_token=word_delimiter,
        bos_token=None,
        eos_token=None,
        do_lower_case=False,
        clean_up_tokenization_spaces=False,  # would glue apostrophe letters to the word before
    )


def make_feature_extractor() -> Wav2Vec2FeatureExtractor:
    """The ``Wav2Vec2FeatureExtractor`` every workbench model uses (16 kHz, normalised)."""
    from transformers import Wav2Vec2FeatureExtractor

    return Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=SAMPLE_RATE,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    )


def make_processor(vocab_path: Path, *, word_delimiter: str | None = None) -> Wav2Vec2Processor:
    """A ``Wav2Vec2Processor``: the feature extractor plus :func:`make_tokenizer`."""
    from transformers import Wav2Vec2Processor

    return Wav2Vec2Processor(
        feature_extractor=make_feature_extractor(),
        tokenizer=make_tokenizer(vocab_path, word_delimiter=word_delimiter),
    )
