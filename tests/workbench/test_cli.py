"""End to end through the `workbench` command on a small corpus with the tiny model."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.evaluate import error_rates
from workbench.run import Run
from workbench.workspace import Workspace


def run_json(capsys, *argv) -> dict:
    code = main([*argv, "--json", "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def test_whole_flow(small_corpus, tmp_path, capsys):
    ws = str(tmp_path / "ws")
    prepared = run_json(capsys, "prepare", str(small_corpus), "-w", ws)
    assert prepared["utterances"] == 48 and len(prepared["sources"]) == 1
    assert sum(s["utterances"] for s in prepared["splits"].values()) == 48
    assert prepared["splits"]["test"]["utterances"] > 0

    audit = run_json(capsys, "audit", "-w", ws)
    assert audit["total"]["utterances"] == 48
    saved_audit = json.loads((tmp_path / "ws" / "audit.json").read_text())
    assert saved_audit["excluded_ids"] == audit["excluded_ids"]
    assert audit["total"]["kept"] == 48 - len(audit["excluded_ids"])

    vocab = run_json(capsys, "vocab", "-w", ws)
    labels = json.loads((tmp_path / "ws" / "vocab.json").read_text())
    assert vocab["vocab_size"] == len(labels)
    assert {"[PAD]", "[UNK]", "|", "a", "'"} <= set(labels)

    trained = run_json(capsys, "train", "-w", ws, "--model", "tiny", "--max-steps", "12",
                       "data.max_batch_seconds=12", "run.eval_every=6")
    assert trained["steps"] == 12
    run = Run(Path(trained["run_dir"]))
    evals = [r for r in run.read_metrics() if r["event"] == "eval"]
    assert [r["step"] for r in evals] == [6, 12]
    best = min(evals, key=lambda r: (r["dev_cer"], r["step"]))
    assert (trained["best_dev_cer"], trained["best_step"]) == (best["dev_cer"], best["step"])

    # `evaluate --split dev` reports exactly the dev CER training chose its model by.
    dev = run_json(capsys, "evaluate", "-w", ws, "--split", "dev")
    assert (dev["cer"], dev["wer"]) == (trained["best_dev_cer"], trained["best_dev_wer"])

    report = run_json(capsys, "evaluate", "-w", ws)
    test_ids = [u.id for u in Workspace.at(ws).read_split("test")]
    excluded = set(audit["excluded_ids"])
    assert [u["id"] for u in report["left_out"]] == [i for i in test_ids if i in excluded]
    assert sorted(u["id"] for u in report["utterances"]) == sorted(
        i for i in test_ids if i not in excluded)
    pairs = [(u["reference"], u["hypothesis"]) for u in report["utterances"]]
    rates = error_rates([r for r, _ in pairs], [h for _, h in pairs])
    assert (report["wer"], report["cer"]) == (rates["wer"], rates["cer"])
    assert run.read_reports()["test"]["cer"] == report["cer"]

    everything = run_json(capsys, "evaluate", "-w", ws, "--include-excluded")
    assert len(everything["utterances"]) == len(test_ids) and everything["left_out"] == []

    scored = report["utterances"][0]
    clip = tmp_path / "ws" / scored["audio"]
    out = run_json(capsys, "transcribe", str(clip), "--model", trained["run_dir"])
    [result] = out["results"]
    assert result["error"] is None and result["text"] == scored["hypothesis"]
    small = run_json(capsys, "transcribe", str(clip), "--model", trained["run_dir"],
                     "--threads", "1", "--batch-seconds", "4")
    assert small["results"][0]["text"] == scored["hypothesis"]


def test_bad_input_is_a_message_not_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "prepare", str(tmp_path / "nowhere"),
         "-w", str(tmp_path / "ws")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "nowhere" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("argv,expected", [
    (["train", "-w", "{ws}", "--model", "tiny"], "workbench prepare"),
    (["evaluate", "-w", "{ws}"], "no training runs"),
    (["train", "-w", "{ws}", "--help-config"], None),
])
def test_steps_out_of_order_explain_what_to_do(tmp_path, capsys, argv, expected):
    (tmp_path / "ws").mkdir()
    code = main([a.format(ws=tmp_path / "ws") for a in argv])
    err = capsys.readouterr().err
    if expected is None:
        assert code == 0
    else:
        assert code == 2 and expected in err


def test_every_command_has_help(capsys):
    for command in ("prepare", "audit", "vocab", "train", "evaluate", "transcribe", "demo"):
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0
        assert "--json" in capsys.readouterr().out


def test_transcribe_writes_timed_files_and_never_replaces_one_unasked(tmp_path, capsys):
    import soundfile as sf

    from data_recipes.textgrid import parse_textgrid
    from tests.workbench.ctc_fixtures import noise, save_tiny_model

    model = save_tiny_model(tmp_path / "run-1" / "model")  # tiers are named after the run
    audio = tmp_path / "long.flac"
    sf.write(audio, noise(40.0, seed=1), 16_000)
    out = run_json(capsys, "transcribe", str(audio), "--model", str(model), "--output",
                   "textgrid", "-o", str(tmp_path / "out"))
    [result] = out["results"]
    grid = parse_textgrid(Path(result["output"]))
    assert Path(result["output"]).name == "long.TextGrid" and grid.xmax == pytest.approx(40.0)
    assert [t.name for t in grid.tiers] == ["run-1", "run-1-words"]
    assert sum(1 for e in grid.tiers[0].entries if e.text) == result["utterances"]
    before = Path(result["output"]).read_bytes()
    code = main(["transcribe", str(audio), "--model", str(model), "--output", "textgrid",
                 "-o", str(tmp_path / "out"), "--quiet"])
    printed = capsys.readouterr()
    assert code == 2 and "long.TextGrid exists" in printed.out and "--force" in printed.out
    assert Path(result["output"]).read_bytes() == before


def test_transcribe_into_a_textgrid_keeps_its_tiers_and_the_file(tmp_path, capsys):
    import soundfile as sf

    from data_recipes.textgrid import parse_textgrid
    from tests.workbench.ctc_fixtures import noise, save_tiny_model

    model = save_tiny_model(tmp_path / "run-4" / "model")
    audio = tmp_path / "visit.wav"
    sf.write(audio, noise(20.0, seed=2), 16_000)
    grid = tmp_path / "visit.TextGrid"
    grid.write_text('File type = "ooTextFile"\nObject class = "TextGrid"\n\nxmin = 0\n'
                    'xmax = 20\ntiers? <exists>\nsize = 1\nitem []:\n    item [1]:\n'
                    '        class = "IntervalTier"\n        name = "notes"\n        xmin = 0\n'
                    '        xmax = 20\n        intervals: size = 1\n        intervals [1]:\n'
                    '            xmin = 0\n            xmax = 20\n'
                    '            text = "ñawpa willakuy"\n', encoding="utf-8")
    before = grid.read_bytes()
    out = run_json(capsys, "transcribe", str(audio), "--model", str(model), "--into",
                   str(grid))
    [result] = out["results"]
    assert result["output"] == str(tmp_path / "visit.run-4.TextGrid")
    merged = parse_textgrid(Path(result["output"]))
    assert [t.name for t in merged.tiers] == ["notes", "run-4", "run-4-words"]
    assert [e.text for e in merged.tiers[0].entries] == ["ñawpa willakuy"]
    assert grid.read_bytes() == before
    assert main(["transcribe", str(audio), str(audio), "--model", str(model), "--into",
                 str(grid), "-q"]) == 2
    assert "one audio file" in capsys.readouterr().err
