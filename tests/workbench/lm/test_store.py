"""`workbench lm build` / `lm tune` and LM decoding in evaluate, on a small workspace."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.workbench.ctc_fixtures import VOCAB
from tests.workbench.test_evaluate import make_workspace
from workbench.errors import WorkbenchError
from workbench.evaluate import evaluate_run, read_report
from workbench.fsio import FAULTS_ENV
from workbench.lm.beam import BeamSettings
from workbench.lm.ngram import read_arpa
from workbench.lm.store import build_lm, find_lm, load_decoder, read_info
from workbench.manifest import write_manifest
from workbench.recognizer import load_recognizer
from workbench.vocab import build_workspace_vocab

REPO = Path(__file__).resolve().parents[3]
TEXT = ["a cat bat a mat", "un monde tout bon", "bonne nuit a tout", "un cat dime",
        "a mat a cat un monde"]  # none of them a test transcript ("bonne nuit" is, but short)


@pytest.fixture
def workspace(tmp_path):
    """make_workspace's run and clips, with training transcripts whose vocabulary is VOCAB."""
    ws = make_workspace(tmp_path / "ws")
    (train,) = ws.read_split("train")
    write_manifest(ws.manifest_path("train"), [replace(train, text="kamu bad tie coin")])
    build_workspace_vocab(ws)
    assert json.loads(ws.vocab_path.read_text(encoding="utf-8")) == VOCAB
    return ws


def write(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def test_build_reports_text_leakage_and_the_dev_perplexity(workspace, tmp_path):
    text = write(tmp_path / "text.txt", [*TEXT * 3, "Tout un Monde.", "xyz qqq", "a ʃip"])
    result = build_lm(workspace, [text], name="base", transcripts=True)
    info = read_info(result.folder)
    assert info == result.info and info["unit"] == "word" and info["order"] == 3
    assert info["tokens"][:3] == ["[PAD]", "[UNK]", "|"]
    report = info["text"]
    # "Tout un Monde." is a test transcript: left out
    assert report["leaked_lines"] == {"dev": 0, "test": 1}
    assert "text.txt:16 (test): tout un monde" in report["leaked_examples"]
    assert report["outside_alphabet"] == {"x": 1, "y": 1, "z": 1, "q": 3, "p": 1, "ʃ": 1}
    assert report["words_outside_alphabet"] == 3  # xyz, qqq, ʃip
    probs, _ = read_arpa(result.folder / "lm.arpa")
    unigrams = {g[0] for g in probs[0]}
    assert {"cat", "kamu", "coin"} <= unigrams  # text and training transcripts
    assert not {"xyz", "qqq", "ʃip"} & unigrams  # unspellable
    assert (result.folder / "lexicon.txt").read_text(encoding="utf-8").count("\n") == len(
        unigrams) - 3  # <s>, </s>, <unk> are not words
    assert info["dev"]["utterances"] == 1 and info["dev"]["oov_rate"] == 0.0  # "dime" is in TEXT
    assert info["dev"]["tokens"] == 2 and info["dev"]["perplexity"] > 1  # dime </s>
    assert find_lm(workspace, "base") == result.folder


def test_leakage_can_be_kept_on_request(workspace, tmp_path):
    text = write(tmp_path / "text.txt", ["tout un monde", "a cat"])
    info = build_lm(workspace, [text], allow_leakage=True).info
    assert info["text"]["leaked_lines"]["test"] == 1 and info["text"]["leakage_allowed"]
    assert info["text"]["sentences"] == 2


def test_bad_files_are_named_and_the_rest_goes_on(workspace, tmp_path):
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\x00\x01PK\x03\x04" * 100)
    empty = write(tmp_path / "empty.txt", [""])
    windows = write(tmp_path / "cp1252.txt", ["a cat ñ"], encoding="cp1252")
    good = write(tmp_path / "good.txt", TEXT)
    info = build_lm(workspace, [binary, empty, windows, good]).info
    files = {Path(f["path"]).name: f for f in info["text"]["files"]}
    assert "binary file" in files["model.bin"]["error"]
    assert "empty" in files["empty.txt"]["error"]
    assert files["cp1252.txt"]["encoding"] == "cp1252"
    assert "Windows-1252" in files["cp1252.txt"]["note"]
    assert info["text"]["outside_alphabet"]["ñ"] == 1  # decoded as ñ, not mojibake
    assert files["good.txt"]["sentences"] == len(TEXT)


def test_text_in_another_script_is_explained(workspace, tmp_path):
    text = write(tmp_path / "hindi.txt", ["नमस्ते दुनिया", "यह एक वाक्य है"])
    with pytest.raises(WorkbenchError, match="another script") as err:
        build_lm(workspace, [text])
    assert "None of its 6 words" in str(err.value)
    with pytest.raises(WorkbenchError, match="empty"):
        build_lm(workspace, [write(tmp_path / "blank.txt", ["", "  "])])


def test_char_lm_uses_the_model_labels(workspace, tmp_path):
    info = build_lm(workspace, [write(tmp_path / "t.txt", TEXT)], name="chars", unit="char").info
    probs, _ = read_arpa(find_lm(workspace, "chars") / "lm.arpa")
    assert info["order"] == 6 and not (find_lm(workspace, "chars") / "lexicon.txt").exists()
    assert {g[0] for g in probs[0]} == {"<s>", "</s>", "<unk>", "|", *"acmtunobdei"}
    assert info["dev"]["perplexity"] > 1 and info["dev"]["oov_rate"] == 0.0


def test_evaluate_with_an_lm_keeps_the_greedy_report(workspace, tmp_path):
    build_lm(workspace, [write(tmp_path / "t.txt", TEXT)], name="base")
    greedy = evaluate_run(workspace, progress=False)
    with_lm = evaluate_run(workspace, progress=False, lm="base",
                           beam=BeamSettings(alpha=2.0, beta=0.0, beam=20))
    assert greedy.decoder == "greedy"
    assert with_lm.decoder.startswith("lm:base (word LM, alpha 2, beta 0, beam 20)")
    words = {w for line in TEXT for w in line.split()} | {"kamu", "bad", "tie", "coin"}
    assert all(set(u.hypothesis.split()) <= words for u in with_lm.utterances), [
        u.hypothesis for u in with_lm.utterances]
    stored = read_report(workspace.runs_dir / "20240101-090000")
    assert set(stored) == {"test", "test+lm:base"}
    assert stored["test"]["wer"] == greedy.wer


def test_an_lm_of_another_vocabulary_is_refused(workspace, tmp_path):
    build_lm(workspace, [write(tmp_path / "t.txt", TEXT)], name="base")
    info_path = find_lm(workspace, "base") / "lm.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info["tokens"] = [*info["tokens"][:-1], "z"]
    info_path.write_text(json.dumps(info), encoding="utf-8")
    recognizer = load_recognizer(workspace.runs_dir / "20240101-090000" / "model")
    with pytest.raises(WorkbenchError, match="another vocabulary"):
        load_decoder(find_lm(workspace, "base"), recognizer.tokenizer)
    with pytest.raises(WorkbenchError, match=r"No language model 'nope' \(built: base\)"):
        find_lm(workspace, "nope")
    with pytest.raises(WorkbenchError, match="LM name"):
        build_lm(workspace, [], name="../escape", transcripts=True)


def test_tune_stores_the_best_dev_setting_and_reports_test(workspace, tmp_path):
    from workbench.lm.tune import format_tuning, tune_lm

    build_lm(workspace, [write(tmp_path / "t.txt", TEXT)], name="base", transcripts=True)
    result = tune_lm(workspace, "base", beam=10, alphas=(0.0, 1.0), betas=(0.0, 2.0),
                     progress=False)
    assert len(result["grid"]) == 4 and result["tuned_on"] == "dev"
    score = min((g["wer"], g["cer"]) for g in result["grid"])
    (best,) = [g for g in result["grid"] if (g["alpha"], g["beta"]) == (
        result["settings"]["alpha"], result["settings"]["beta"])]
    assert (best["wer"], best["cer"]) == score
    assert result["tied_settings"] == sum((g["wer"], g["cer"]) == score for g in result["grid"])
    assert read_info(find_lm(workspace, "base"))["tuned"]["settings"] == result["settings"]
    assert set(result["test"]) == {"greedy", "lm"}
    assert "greedy WER" in format_tuning(result)
    # the stored settings are what evaluate uses by default
    report = evaluate_run(workspace, progress=False, lm="base")
    assert f"alpha {best['alpha']:g}, beta {best['beta']:g}, beam 10" in report.decoder


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fault", ["replace_dir.staged", "replace_dir.swapped",
                                   "atomic.before_fsync"])
def test_a_build_killed_at_any_point_leaves_the_previous_lm(workspace, tmp_path, fault):
    build_lm(workspace, [write(tmp_path / "t.txt", TEXT)], name="base")
    folder = find_lm(workspace, "base")
    before = snapshot(folder)
    more = write(tmp_path / "more.txt", [*TEXT, "a cat un cat"])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", FAULTS_ENV: f"{fault}=kill"}
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "lm", "build", str(more),
                           "-w", str(workspace.root), "--name", "base", "--quiet"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr[-2000:]
    from workbench.fsio import recover_dir

    recover_dir(folder)  # what the next reader does
    after = snapshot(folder)
    if fault == "replace_dir.swapped":  # killed after the swap: the new model, whole
        assert after != before and read_info(folder)["text"]["sentences"] == len(TEXT) + 1
    else:
        assert after == before
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "lm", "build", str(more),
                           "-w", str(workspace.root), "--name", "base", "--quiet"],
                          cwd=REPO, env={**env, FAULTS_ENV: ""}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Language model base (word 3-gram" in done.stdout
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]


def test_transcribe_cli_decodes_with_the_lm(workspace, tmp_path):
    build_lm(workspace, [write(tmp_path / "t.txt", TEXT)], name="base")
    clip = str(workspace.root / "audio" / "test_1.wav")
    base = [sys.executable, "-m", "workbench.cli", "transcribe", clip, "--model",
            "20240101-090000", "-w", str(workspace.root), "--quiet", "--json"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    greedy = subprocess.run(base, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    lm = subprocess.run([*base, "--lm", "base"], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=300)
    assert greedy.returncode == 0 == lm.returncode, lm.stderr[-2000:]
    (greedy_text,) = [r["text"] for r in json.loads(greedy.stdout)["results"]]
    (lm_text,) = [r["text"] for r in json.loads(lm.stdout)["results"]]
    words = {w for line in TEXT for w in line.split()}
    assert lm_text and set(lm_text.split()) <= words and lm_text != greedy_text
    timed = subprocess.run([*base, "--lm", "base", "--output", "json", "-o", str(tmp_path)],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert timed.returncode == 0, timed.stderr[-2000:]
    segments = json.loads((tmp_path / "test_1.json").read_text(encoding="utf-8"))["segments"]
    timed_words = [w for s in segments for w in s["words"]]
    assert timed_words and {w["text"] for w in timed_words} <= words  # the LM's words
    assert all(s["start"] <= w["start"] < w["end"] <= s["end"] for s in segments
               for w in s["words"])


def test_the_lm_travels_with_the_export_and_the_card_has_the_scores(workspace, tmp_path):
    import yaml

    from workbench.onnx_export import export_onnx

    build_lm(workspace, [write(tmp_path / "t.txt", TEXT)], name="base")
    evaluate_run(workspace, progress=False)
    evaluate_run(workspace, progress=False, lm="base")
    run_dir = workspace.runs_dir / "20240101-090000"
    out = export_onnx(run_dir, tmp_path / "export", lm=find_lm(workspace, "base"),
                      language="qu").out_dir
    assert read_info(out / "lm")["name"] == "base" and (out / "lm" / "lm.arpa").is_file()
    card = (out / "README.md").read_text(encoding="utf-8")
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["language"] == "qu" and front["pipeline_tag"] == "automatic-speech-recognition"
    assert "base_model" not in front and "- Base model: `tiny`." in card  # not a Hub id
    metrics = front["model-index"][0]["results"][0]["metrics"]
    stored = read_report(run_dir)
    assert {(m["name"], m["value"]) for m in metrics} == {
        ("Test WER (greedy decoding)", round(100 * stored["test"]["wer"], 2)),
        ("Test CER (greedy decoding)", round(100 * stored["test"]["cer"], 2)),
        ("Test WER (LM base decoding)", round(100 * stored["test+lm:base"]["wer"], 2)),
        ("Test CER (LM base decoding)", round(100 * stored["test+lm:base"]["cer"], 2))}
    assert "## Limitations" in card and "1 utterances, 0 speaker(s)" in card

    clip = str(workspace.root / "audio" / "test_1.wav")
    command = [sys.executable, "-m", "workbench.cli", "transcribe", clip, "--model", str(out),
               "--json"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with_lm = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=300)
    greedy = subprocess.run([*command, "--greedy"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert with_lm.returncode == 0 == greedy.returncode, with_lm.stderr[-2000:]
    assert "Decoding with lm:base" in with_lm.stderr and "Decoding with" not in greedy.stderr
    (text,) = [r["text"] for r in json.loads(with_lm.stdout)["results"]]
    assert set(text.split()) <= {w for line in TEXT for w in line.split()}


def test_a_char_lm_through_the_run_tokenizer_keeps_word_boundaries(workspace, tmp_path):
    """The tokenizer counts "|" among its special tokens; decoding must still write spaces."""
    build_lm(workspace, [write(tmp_path / "t.txt", TEXT * 3)], name="chars", unit="char")
    recognizer = load_recognizer(workspace.runs_dir / "20240101-090000" / "model")
    assert "|" in recognizer.tokenizer.all_special_tokens
    decoder = load_decoder(find_lm(workspace, "chars"), recognizer.tokenizer,
                           BeamSettings(alpha=0.0, beta=0.0))
    rows = np.full((7, len(VOCAB)), 1e-4)
    for frame, token in enumerate(["a", "[PAD]", "|", "c", "a", "t", "[PAD]"]):
        rows[frame, VOCAB[token]] = 1.0
    assert decoder.decode(np.log(rows / rows.sum(1, keepdims=True))) == "a cat"


def test_tuning_report_says_when_the_lm_does_not_help_on_dev():
    from workbench.lm.tune import format_tuning

    def result(dev_lm: dict) -> dict:
        return {"lm": "words", "unit": "word", "run": "r", "grid": [{}],
                "search_seconds": 1.0, "settings": {"alpha": 1.0, "beta": 0.0, "beam": 50},
                "dev": {"greedy": {"wer": 0.8, "cer": 0.1}, "lm": dev_lm},
                "test": {"greedy": {"wer": 0.8, "cer": 0.1}, "lm": {"wer": 0.5, "cer": 0.2}}}

    worse = format_tuning(result({"wer": 1.4, "cer": 0.45}))
    assert "no setting beats greedy" in worse and "--unit char" in worse
    assert "no setting beats greedy" not in format_tuning(result({"wer": 0.4, "cer": 0.09}))


def test_among_settings_that_tie_on_dev_the_middle_of_the_plateau_is_kept():
    from workbench.lm.tune import _best, _ties_note

    def grid(scores: dict[tuple[float, float], float]) -> list[dict]:
        return [{"alpha": a, "beta": b, "wer": w, "cer": w} for (a, b), w in scores.items()]

    def key(g):
        return g["wer"], g["cer"]

    plateau = {(a, b): (0.1 if 0.5 <= a <= 1.5 and b >= 0 else 0.3)
               for a in (0.0, 0.5, 1.0, 1.5, 2.0) for b in (-1.0, 0.0, 1.0, 2.0)}
    best, ties = _best(grid(plateau), key)
    assert (best["alpha"], best["beta"], ties) == (1.0, 1.0, 9)  # not the edge (0.5, 0.0)
    unique = {**plateau, (2.0, 2.0): 0.05}
    assert _best(grid(unique), key) == ({"alpha": 2.0, "beta": 2.0, "wer": 0.05,
                                         "cer": 0.05}, 1)
    result = {"tied_settings": 9, "grid": grid(plateau), "dev": {"utterances": 36}}
    assert "9 of 20 settings score the same on dev (36 utterances)" in _ties_note(result)[0]
    assert _ties_note({**result, "tied_settings": 1}) == []


def test_a_long_recording_streamed_gets_the_lm_text_of_the_whole(workspace, tmp_path):
    """Beyond one window, the streamed path keeps log-probabilities instead of ids; the text
    equals a beam search over the stitched logits of the whole recording."""
    import soundfile as sf

    from workbench.audio import load_audio
    from workbench.decode import log_softmax
    from workbench.evaluate import attach_lm
    from workbench.transcribe import long_logits, transcribe_files

    build_lm(workspace, [write(tmp_path / "t.txt", TEXT * 3)], name="chars", unit="char")
    recognizer = load_recognizer(workspace.runs_dir / "20240101-090000" / "model")
    recognizer, _ = attach_lm(recognizer, workspace, "chars",
                              BeamSettings(alpha=0.5, beta=0.0, beam=8))
    clips = [load_audio(workspace.root / f"audio/test_{i}.wav") for i in range(4)] * 12
    samples = np.concatenate(clips)  # about 60 s: three 20 s windows
    path = tmp_path / "long.wav"
    sf.write(path, samples, 16_000)
    (result,) = transcribe_files([path], recognizer, progress=False, chunk_s=20.0)
    whole = recognizer.lm.decode(log_softmax(long_logits(recognizer, samples, 20.0,
                                                          (4.0, 2.0))))
    assert result.ok and result.text == whole and len(whole) > 20


def test_the_card_names_a_hub_base_model_only_when_it_is_one(tmp_path):
    from workbench.model_card import _is_hub_id

    assert _is_hub_id("facebook/wav2vec2-xls-r-300m")
    (tmp_path / "local").mkdir()
    assert not any(_is_hub_id(n) for n in ("demo-base", "tiny", str(tmp_path / "local"),
                                           "./models/xlsr", "a/b/c"))
