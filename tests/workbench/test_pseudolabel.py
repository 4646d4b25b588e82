"""Pseudo-labels: confidence of a greedy path, the threshold chosen on dev, the marked set
written atomically, and training that includes it with a loss weight (dev and test never)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf

from data_recipes.untranscribed import import_untranscribed
from tests.conftest import prepared_workspace, private_copy
from workbench.cli import main
from workbench.config import build_config
from workbench.distributed import WeightedDataset
from workbench.errors import WorkbenchError
from workbench.manifest import write_manifest
from workbench.pseudolabel import (
    choose_threshold,
    path_confidence,
    pseudolabel,
    pseudolabel_dir,
    read_pseudolabels,
)
from workbench.text import load_profile
from workbench.train import load_training_data, train
from workbench.vocab import load_vocab


def test_confidence_is_the_geometric_mean_probability_of_the_letters_only():
    blank = 0
    sure_blank = [10.0, 0.0, 0.0]
    letter = np.log([0.2, 0.5, 0.3])  # a letter at probability 0.5
    other = np.log([0.1, 0.1, 0.8])
    logits = np.array([sure_blank, letter, sure_blank, other, sure_blank])
    assert path_confidence(logits, blank) == pytest.approx(math.sqrt(0.5 * 0.8))
    assert path_confidence(np.array([sure_blank] * 3), blank) == 0.0  # writes nothing
    assert path_confidence(np.zeros((0, 3)), blank) == 0.0


def test_the_threshold_keeps_the_most_confident_dev_utterances_at_half_the_dev_cer():
    confidences = [0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6, 0.5, 0.4, 0.3]
    errors = [0, 0, 1, 0, 1, 1, 5, 6, 8, 8]
    lengths = [10] * 10  # dev CER 30/100 = 0.3; half: 0.15
    chosen = choose_threshold(confidences, errors, lengths)
    # The top 7 have 8 errors in 70 characters (0.114); the top 8, 14 in 80 (0.175 > 0.15).
    assert (chosen.value, chosen.dev_kept, chosen.dev_total, chosen.met) == (0.6, 7, 10, True)
    assert chosen.dev_cer == pytest.approx(0.3)
    assert chosen.dev_cer_kept == pytest.approx(8 / 70)
    # A perfect dev set keeps everything.
    assert choose_threshold([0.9, 0.1], [0, 0], [5, 5]).value == 0.1
    # Unreachable: the level with the lowest CER that keeps at least five utterances.
    hard = choose_threshold([1 - i / 20 for i in range(20)], [0, 0, 0, 0, 5, 9] + [2] * 14,
                            [10] * 20, share=0.1)
    assert not hard.met and (hard.dev_kept, hard.value) == (5, 0.8)
    assert hard.dev_cer_kept == pytest.approx(5 / 50)
    with pytest.raises(WorkbenchError, match="dev split is empty"):
        choose_threshold([], [], [])


@pytest.fixture(scope="module")
def prepared(demo_corpus, tmp_path_factory):
    from workbench.vocab import build_workspace_vocab

    ws = prepared_workspace(demo_corpus, tmp_path_factory.mktemp("pseudo"), 60)
    build_workspace_vocab(ws)
    return ws


def hand_made_set(ws, name: str, count: int) -> list:
    """A pseudo-label set of ``count`` clips with their true text (to test the plumbing)."""
    from dataclasses import replace

    utterances = [replace(u, id=f"p{i}", source=f"pseudo of {u.id}")
                  for i, u in enumerate(ws.read_split("train")[:count])]
    folder = pseudolabel_dir(ws, name)
    folder.mkdir(parents=True)
    write_manifest(folder / "manifest.jsonl", utterances)
    return utterances


def test_training_adds_a_pseudo_label_set_with_its_weight_and_nothing_else(prepared, tmp_path):
    ws = private_copy(prepared, tmp_path / "ws")
    vocab, profile = load_vocab(ws.vocab_path), load_profile(ws.profile_path)
    plain = load_training_data(ws, vocab, profile)
    added = hand_made_set(ws, "round1", 5)
    data = load_training_data(ws, vocab, profile, pseudolabels="round1", pseudo_weight=0.25)
    assert len(data.train) == len(plain.train) + 5
    assert [u.id for u in data.train.utterances[-5:]] == [u.id for u in added]
    assert data.train.weights == [1.0] * len(plain.train) + [0.25] * 5
    assert data.fingerprint != plain.fingerprint  # a resumed run notices the change
    assert [u.id for u in data.dev] == [u.id for u in plain.dev]  # dev untouched
    weighted = WeightedDataset(data.train)
    assert weighted[(len(data.train) - 1, 0.5, 0)][1] == pytest.approx(0.125)
    assert weighted[(0, 0.5, 0)][1] == pytest.approx(0.5)
    with pytest.raises(WorkbenchError, match="there are: round1"):
        load_training_data(ws, vocab, profile, pseudolabels="round2")
    config = build_config(preset="10min", overrides=[
        "model.name=tiny", "optim.max_steps=2", "run.eval_every=2",
        "data.pseudolabels=round1", "data.pseudo_weight=0.25"])
    result = train(ws, config, progress=False)
    start = next(r for r in map(json.loads, (result.run_dir / "metrics.jsonl").open())
                 if r["event"] == "start")
    assert start["pseudolabels"] == {"name": "round1", "utterances": 5, "weight": 0.25}


@pytest.fixture(scope="module")
def learned(prepared, tmp_path_factory, demo_corpus):
    """A short demo-base fine-tune and untranscribed recordings of held-out demo clips."""
    import csv

    ws = private_copy(prepared, tmp_path_factory.mktemp("learned") / "ws")
    config = build_config(preset="10min", overrides=[
        "model.name=demo-base", "optim.max_steps=150", "run.eval_every=1000000"])
    run = train(ws, config, progress=False)
    with open(demo_corpus / "metadata.csv", encoding="utf-8") as table:
        rows = list(csv.DictReader(table))[100:130]
    pause = np.zeros(12800, dtype=np.float32)
    parts = []
    for row in rows:
        parts += [sf.read(demo_corpus / row["file_name"], dtype="float32")[0], pause]
    recording = tmp_path_factory.mktemp("rec") / "held out.wav"
    sf.write(recording, np.concatenate(parts), 16000)
    import_untranscribed([recording], ws)
    return ws, run.run_dir.name


def test_pseudolabel_keeps_the_confident_pieces_as_a_marked_set(learned, capsys):
    ws, run = learned
    test_before = ws.manifest_path("test").read_bytes()
    code = main(["pseudolabel", "-w", str(ws.root), "--run", run, "--json", "-q"])
    out = capsys.readouterr()
    assert code == 0, out.err
    chosen = json.loads(out.out)
    threshold = chosen["threshold"]
    assert 0 < threshold["value"] <= 1 and threshold["dev_kept"] >= 1
    assert threshold["dev_cer_kept"] < threshold["dev_cer"]
    if threshold["met"]:
        assert threshold["dev_cer_kept"] <= 0.5 * threshold["dev_cer"] + 1e-9
    code = main(["pseudolabel", "-w", str(ws.root), "--run", run, "--threshold", "0.5",
                 "--name", "lenient", "--json", "-q"])
    out = capsys.readouterr()
    assert code == 0, out.err
    lenient = json.loads(out.out)
    assert 0 < lenient["kept"] <= lenient["total"] and lenient["kept"] >= chosen["kept"]
    for summary in (chosen, lenient):
        labels = read_pseudolabels(ws, summary["name"])
        assert len(labels) == summary["kept"]
        assert all(u.text and "pseudo-label by" in u.source for u in labels)
        confidences = [float(u.source.split("confidence ")[1].split(")")[0]) for u in labels]
        assert all(c >= summary["threshold"]["value"] - 1e-3 for c in confidences)
        info = json.loads((pseudolabel_dir(ws, summary["name"]) / "info.json").read_text())
        assert info["run"] == run and info["kept"] == summary["kept"]
    assert ws.manifest_path("test").read_bytes() == test_before  # test never touched


def test_pseudolabel_without_untranscribed_audio_says_how_to_add_it(prepared, tmp_path):
    ws = private_copy(prepared, tmp_path / "ws")
    with pytest.raises(WorkbenchError, match="prepare --untranscribed"):
        pseudolabel(ws, "none")
