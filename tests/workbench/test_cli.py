"""End to end through the `workbench` command on a small corpus with the tiny model."""

import json
import subprocess
import sys

import pytest

from workbench.cli import main


def run_json(capsys, *argv) -> dict:
    code = main([*argv, "--json", "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def test_whole_flow(small_corpus, tmp_path, capsys):
    ws = str(tmp_path / "ws")
    prepared = run_json(capsys, "prepare", str(small_corpus), "-w", ws)
    assert prepared["utterances"] == 48 and len(prepared["sources"]) == 1
    assert prepared["splits"]["test"]["utterances"] > 0

    audit = run_json(capsys, "audit", "-w", ws)
    assert audit["total"]["utterances"] == 48
    assert (tmp_path / "ws" / "audit.json").is_file()

    vocab = run_json(capsys, "vocab", "-w", ws)
    assert vocab["vocab_size"] > 10
    labels = json.loads((tmp_path / "ws" / "vocab.json").read_text())
    assert {"[PAD]", "[UNK]", "|", "a", "'"} <= set(labels)

    trained = run_json(capsys, "train", "-w", ws, "--model", "tiny", "--max-steps", "12",
                       "data.max_batch_seconds=12", "run.eval_every=6")
    assert trained["steps"] == 12
    run_dir = trained["run_dir"]

    report = run_json(capsys, "evaluate", "-w", ws)
    assert 0.0 <= report["cer"] and report["wer"] >= 0.0
    assert len(report["utterances"]) == prepared["splits"]["test"]["utterances"]
    saved = json.loads((tmp_path / "ws" / "runs" / run_dir.rsplit("/", 1)[-1] /
                        "report.json").read_text())
    assert "test" in json.dumps(saved)

    clip = next((tmp_path / "ws" / "audio").glob("*.wav"))
    out = run_json(capsys, "transcribe", str(clip), "--model", run_dir)
    assert len(out["results"]) == 1 and out["results"][0]["error"] is None


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
