"""Tests for workbench.vocab: train-only vocabulary, report, tokenizer and processor."""

from __future__ import annotations

import json
import unicodedata

import pytest

from workbench.errors import WorkbenchError
from workbench.manifest import Utterance, write_manifest
from workbench.text import OrthographyProfile, save_profile
from workbench.vocab import (
    PAD,
    UNK,
    build_vocab,
    build_workspace_vocab,
    encode_labels,
    format_vocab_report,
    load_vocab,
    make_processor,
    make_tokenizer,
    vocab_report,
)
from workbench.workspace import Workspace


def _utt(uid: str, text: str, split: str) -> Utterance:
    return Utterance(id=uid, audio=f"audio/{uid}.wav", text=text, split=split, duration=2.0)


def _workspace(tmp_path, splits: dict[str, list[str]]) -> Workspace:
    ws = Workspace.at(tmp_path / "ws")
    for split, texts in splits.items():
        utts = [_utt(f"{split}_{i}", text, split) for i, text in enumerate(texts)]
        write_manifest(ws.manifest_path(split), utts)
    return ws


# --- build_vocab -----------------------------------------------------------------------------


def test_special_ids_then_code_point_order():
    vocab = build_vocab(["ba ca", "z'ñ"])
    assert list(vocab.items())[:3] == [(PAD, 0), (UNK, 1), ("|", 2)]
    rest = list(vocab)[3:]
    assert rest == sorted(rest) == ["'", "a", "b", "c", "z", "ñ"]
    assert sorted(vocab.values()) == list(range(len(vocab)))


def test_nfd_input_gives_nfc_letters_and_no_bare_marks():
    vocab = build_vocab([unicodedata.normalize("NFD", "Ñandú pé")])
    assert "ñ" in vocab and "ú" in vocab and "é" in vocab
    assert not any(unicodedata.category(t[0]).startswith("M") for t in vocab)
    assert all(unicodedata.is_normalized("NFC", t) for t in vocab)


def test_punctuation_absent_and_apostrophe_kept():
    vocab = build_vocab(["«Ch'aki», dijo: “¡sí!” (a|b) - ok…"])
    assert not set(vocab) & set("«»,:“”¡!()-…")
    assert "'" in vocab


def test_custom_ignore_keeps_other_punctuation():
    vocab = build_vocab(["a!b-c;d,e.f"], OrthographyProfile(ignore="!-;"))
    assert {",", "."} <= set(vocab)
    assert not {"!", "-", ";"} & set(vocab)


def test_mappings_merge_look_alikes():
    vocab = build_vocab(["ka’a kaʼa"], OrthographyProfile(mappings={"’": "'", "ʼ": "'"}))
    assert "'" in vocab and "’" not in vocab and "ʼ" not in vocab


def test_multigraphs_are_single_tokens():
    profile = OrthographyProfile(graphemes=("ch", "ll", "ch'"))
    vocab = build_vocab(["ch'aki llama chay"], profile)
    assert {"ch", "ll", "ch'"} <= set(vocab)
    assert "c" not in vocab and "h" not in vocab  # never seen outside a multigraph


def test_grapheme_clashing_with_special_token_rejected():
    profile = OrthographyProfile(lowercase=False, ignore="", graphemes=("[UNK]",))
    with pytest.raises(WorkbenchError, match="special"):
        build_vocab(["[UNK] a"], profile)


def test_encode_labels_uses_multigraphs_and_unk():
    profile = OrthographyProfile(graphemes=("ch", "ch'"))
    vocab = build_vocab(["ch'a cha"], profile)
    ids = encode_labels("Ch'a chaz!", vocab, profile)
    assert ids == [vocab["ch'"], vocab["a"], 2, vocab["ch"], vocab["a"], vocab[UNK]]


# --- report ----------------------------------------------------------------------------------


def test_report_lists_unseen_rare_and_unk_share():
    profile = OrthographyProfile()
    splits = {
        "train": [_utt("t1", "aaa bbb", "train"), _utt("t2", "aab", "train")],
        "dev": [_utt("d1", "ab x", "dev"), _utt("d2", "xa", "dev")],
        "test": [_utt("e1", "ab", "test")],
    }
    vocab = build_vocab([u.text for u in splits["train"]], profile)
    report = vocab_report(splits, vocab, profile, rare_threshold=5)
    counts = {s.token: s.count for s in report.train_counts}
    assert counts == {"a": 5, "b": 4}
    assert [s.token for s in report.rare] == ["b"]
    assert report.rare[0].examples == ["t1", "t2"]
    [unseen] = report.unseen["dev"]
    assert (unseen.token, unseen.count, unseen.examples) == ("x", 2, ["d1", "d2"])
    assert unseen.names == "U+0078 LATIN SMALL LETTER X"
    assert report.unk_share["dev"] == pytest.approx(2 / 5)
    assert report.unseen["test"] == [] and report.unk_share["test"] == 0.0
    json.dumps(report.to_dict())
    text = format_vocab_report(report)
    assert "LATIN SMALL LETTER X" in text and "40.00%" in text


def test_report_names_look_alikes():
    splits = {"train": [_utt("t", "ka'a", "train")], "dev": [_utt("d", "kaʼa", "dev")]}
    unfolded = OrthographyProfile(fold_apostrophes=None)  # the default would merge them
    vocab = build_vocab(["ka'a"], unfolded)
    report = vocab_report(splits, vocab, unfolded)
    assert report.unseen["dev"][0].names == "U+02BC MODIFIER LETTER APOSTROPHE"
    assert "U+0027 APOSTROPHE" in [s.names for s in report.train_counts]


# --- workspace step --------------------------------------------------------------------------


def test_workspace_vocab_is_train_only(tmp_path):
    ws = _workspace(
        tmp_path,
        {"train": ["Kuna ch'aki", "llama"], "dev": ["kuna qhapaq"], "test": ["ñawi"]},
    )
    profile_file = tmp_path / "my_profile.yaml"
    save_profile(OrthographyProfile(graphemes=("ch'", "ll")), profile_file)
    report = build_workspace_vocab(ws, profile_file)

    vocab = load_vocab(ws.vocab_path)
    assert vocab == json.loads(ws.vocab_path.read_text(encoding="utf-8"))
    assert {"ch'", "ll"} <= set(vocab)
    assert "q" not in vocab and "p" not in vocab and "ñ" not in vocab and "w" not in vocab
    # "h" occurs in train only inside the grapheme "ch'", so on its own it is unseen.
    assert {s.token for s in report.unseen["dev"]} == {"q", "h", "p"}
    assert {s.token for s in report.unseen["test"]} == {"ñ", "w"}
    saved = json.loads(ws.vocab_report_path.read_text(encoding="utf-8"))
    assert {row["token"] for row in saved["unseen"]["test"]} == {"ñ", "w"}
    # The profile now lives in the workspace, so later steps use the same one.
    assert ws.profile_path.read_text(encoding="utf-8") == profile_file.read_text(encoding="utf-8")


def test_workspace_vocab_uses_workspace_profile_by_default(tmp_path):
    ws = _workspace(tmp_path, {"train": ["chay"]})
    save_profile(OrthographyProfile(graphemes=("ch",)), ws.profile_path)
    build_workspace_vocab(ws)
    assert "ch" in load_vocab(ws.vocab_path)


def test_workspace_vocab_errors(tmp_path):
    ws = _workspace(tmp_path, {"dev": ["a"]})
    with pytest.raises(WorkbenchError, match="train"):
        build_workspace_vocab(ws)
    write_manifest(ws.manifest_path("train"), [])
    with pytest.raises(WorkbenchError, match="empty"):
        build_workspace_vocab(ws)
    write_manifest(ws.manifest_path("train"), [_utt("t", "¿...!", "train")])
    with pytest.raises(WorkbenchError, match="no letters"):
        build_workspace_vocab(ws)
    with pytest.raises(WorkbenchError, match="does not exist"):
        build_workspace_vocab(ws, tmp_path / "missing.yaml")
    profile_file = tmp_path / "p.yaml"
    save_profile(OrthographyProfile(), profile_file)
    with pytest.raises(WorkbenchError, match="no letters"):
        build_workspace_vocab(ws, profile_file)
    assert not ws.vocab_path.exists()
    assert not ws.profile_path.exists()  # a failed build installs nothing


@pytest.mark.parametrize(
    "content", ["not json", "[1, 2]", '{"a": 0}', '{"[PAD]": 0, "[UNK]": 1, "a": 1}']
)
def test_load_vocab_rejects_bad_files(tmp_path, content):
    path = tmp_path / "vocab.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(WorkbenchError):
        load_vocab(path)


def test_load_vocab_missing_file(tmp_path):
    with pytest.raises(WorkbenchError, match="does not exist"):
        load_vocab(tmp_path / "vocab.json")


# --- Hugging Face objects --------------------------------------------------------------------


@pytest.fixture
def quechua_vocab(tmp_path):
    profile = OrthographyProfile(graphemes=("ch", "ch'", "ll"))
    vocab = build_vocab(["ch'aki llama chay wa'a"], profile)
    path = tmp_path / "vocab.json"
    path.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    return path, vocab, profile


def test_tokenizer_size_matches_vocab(quechua_vocab):
    path, vocab, _ = quechua_vocab
    tokenizer = make_tokenizer(path)
    assert len(tokenizer) == len(vocab)
    assert tokenizer.pad_token_id == 0 and tokenizer.unk_token_id == 1
    assert tokenizer.word_delimiter_token_id == 2


def test_processor_round_trip_decodes_multigraphs(quechua_vocab, tmp_path):
    from transformers import AutoProcessor

    path, vocab, profile = quechua_vocab
    make_processor(path).save_pretrained(tmp_path / "processor")
    processor = AutoProcessor.from_pretrained(tmp_path / "processor")
    assert processor.feature_extractor.sampling_rate == 16000
    assert processor.feature_extractor.return_attention_mask is True
    tokenizer = processor.tokenizer

    ids = encode_labels("Ch'aki llama wa'a", vocab, profile)
    assert tokenizer.decode(ids, group_tokens=False) == "ch'aki llama wa'a"
    # "ll" "a" "ll" "a": no repeats, so CTC grouping leaves the labels alone.
    assert tokenizer.decode(encode_labels("llalla", vocab, profile)) == "llalla"
    # CTC output: repeats collapse, the blank separates real repeats.
    ch = vocab["ch'"]
    a = vocab["a"]
    assert tokenizer.decode([ch, ch, 0, ch, a, a, 0]) == "ch'ch'a"


def test_tokenizer_takes_custom_delimiter_from_the_vocab(tmp_path):
    profile = OrthographyProfile(word_delimiter="#")
    vocab = build_vocab(["ka wa"], profile)
    assert vocab["#"] == 2 and "|" not in vocab
    path = tmp_path / "vocab.json"
    path.write_text(json.dumps(vocab), encoding="utf-8")
    tokenizer = make_tokenizer(path)
    assert tokenizer.word_delimiter_token == "#"
    assert tokenizer.decode(encode_labels("ka wa", vocab, profile)) == "ka wa"


# --- apostrophe look-alikes ------------------------------------------------------------------


def test_look_alikes_share_one_label_by_default():
    vocab = build_vocab(["ch'aki chʼaki ch’aki ch`aki"])
    assert "'" in vocab
    assert not set(vocab) & set("ʼ’`‘ʻ´′")


def test_distinct_letter_keeps_its_own_label():
    profile = OrthographyProfile(distinct_letters=("ʻ",))
    vocab = build_vocab(["hawaiʻi kaʼa ka'a"], profile)
    assert {"ʻ", "'"} <= set(vocab) and "ʼ" not in vocab


def test_report_lists_folded_look_alikes_from_every_split():
    splits = {
        "train": [_utt("t1", "kaʼa kaʼa", "train"), _utt("t2", "ka'a", "train")],
        "test": [_utt("e1", "ka’a", "test")],
    }
    vocab = build_vocab([u.text for u in splits["train"]])
    report = vocab_report(splits, vocab)
    folded = [(f.char, f.into, f.count, f.examples) for f in report.folded_look_alikes]
    assert folded == [("ʼ", "'", 2, ["t1"]), ("’", "'", 1, ["e1"])]
    assert report.folded_look_alikes[0].names == "U+02BC MODIFIER LETTER APOSTROPHE"
    assert report.unseen["test"] == []  # ’ is no longer an unknown label in test
    assert report.look_alike_labels == ["'"]
    json.dumps(report.to_dict())
    text = format_vocab_report(report)
    assert "Apostrophe look-alikes written as \"'\"" in text
    assert "U+2019 RIGHT SINGLE QUOTATION MARK" in text
    assert "distinct_letters" in text


def test_report_points_out_look_alike_labels_kept_apart():
    profile = OrthographyProfile(fold_apostrophes=None)
    splits = {"train": [_utt("t", "kaʼa ka'a", "train")]}
    vocab = build_vocab(["kaʼa ka'a"], profile)
    report = vocab_report(splits, vocab, profile)
    assert report.folded_look_alikes == []
    assert report.look_alike_labels == ["'", "ʼ"]
    assert "Look-alike labels kept apart: ' ʼ" in format_vocab_report(report)


def test_workspace_vocab_uses_distinct_letters_from_the_profile_file(tmp_path):
    ws = _workspace(tmp_path, {"train": ["hawaiʻi", "kaʼa"], "dev": ["ʻe"]})
    ws.profile_path.write_text('distinct_letters: ["ʻ"]\n', encoding="utf-8")
    report = build_workspace_vocab(ws)
    vocab = json.loads(ws.vocab_path.read_text(encoding="utf-8"))
    assert "ʻ" in vocab and "'" in vocab and "ʼ" not in vocab
    assert [f.char for f in report.folded_look_alikes] == ["ʼ"]


def test_the_vocabulary_records_its_unit_and_goes_stale_when_the_profile_changes_it(tmp_path):
    import json

    from workbench.text import save_profile
    from workbench.vocab import built_unit, require_current_vocab, vocab_is_stale

    ws = _workspace(tmp_path, {"train": ["नमस्ते", "दुनिया"], "dev": ["नमस्ते"]})
    report = build_workspace_vocab(ws)
    assert report.label_unit == "codepoint" and built_unit(ws) == "codepoint"
    assert "(label_unit: codepoint)" in format_vocab_report(report)
    assert not vocab_is_stale(ws)
    save_profile(OrthographyProfile(label_unit="grapheme"), ws.profile_path)
    assert vocab_is_stale(ws)  # not silently mixed
    with pytest.raises(WorkbenchError, match="label_unit: grapheme") as err:
        require_current_vocab(ws)
    assert "letter with its combining marks" in err.value.for_page()
    build_workspace_vocab(ws)
    assert built_unit(ws) == "grapheme" and not vocab_is_stale(ws)
    # A vocabulary built before the unit was recorded was built by grapheme.
    saved = json.loads(ws.vocab_report_path.read_text(encoding="utf-8"))
    del saved["label_unit"]
    ws.vocab_report_path.write_text(json.dumps(saved), encoding="utf-8")
    assert built_unit(ws) == "grapheme" and not vocab_is_stale(ws)
    ws.profile_path.unlink()  # the default profile: code points
    assert vocab_is_stale(ws)


def test_the_report_says_why_many_labels_seen_once_hurt():
    syllables = [c + s for c in "कखगचजतदनपमरलसह" for s in ("ा", "ि", "ी", "ु", "े", "ो")]
    train = [_utt(f"t{i}", s, "train") for i, s in enumerate(syllables)]
    by_cluster = OrthographyProfile(label_unit="grapheme")
    report = vocab_report({"train": train}, build_vocab(syllables, by_cluster), by_cluster)
    assert report.seen_once == len(syllables) and report.too_many_single_labels
    assert "Set label_unit: codepoint" in format_vocab_report(report)
    report = vocab_report({"train": train}, build_vocab(syllables))
    assert report.seen_once == 0 and not report.unit_advice()  # each letter and sign shared
