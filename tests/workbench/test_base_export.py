import json

import pytest

from workbench.base_export import HISTORY, export_base
from workbench.config import build_config, save_config
from workbench.manifest import Utterance, write_manifest
from workbench.models import load_for_finetuning


def _run(root, name: str, model: str, speakers: list[str], steps: int, cer: float):
    """A finished run folder as `workbench train` leaves it, in a workspace of ``speakers``."""
    run = root / "ws" / "runs" / name
    load_for_finetuning("tiny", vocab_size=12).save_pretrained(run / "model")
    (run / "result.json").write_text(json.dumps({"steps": steps, "elapsed_s": 600.0,
                                                 "best_dev_cer": cer}))
    (run / "metrics.jsonl").write_text(json.dumps({"event": "start", "step": 0,
                                                   "max_steps": 2 * steps}) + "\n")
    save_config(build_config(preset="10min", overrides=[f"model.name={model}",
                                                        "data.augment=0.3"]),
                run / "config.yaml")
    write_manifest(root / "ws" / "manifests" / "train.jsonl", [
        Utterance(id=f"u{i}", audio="", text="x", speaker=s, duration=60.0)
        for i, s in enumerate(speakers)])
    return run


def test_export_copies_weights_and_writes_an_honest_card(tmp_path):
    run = _run(tmp_path, "r1", "tiny", ["es-m3", "fi-f2"], 40, 0.123)
    target = export_base(run, tmp_path / "base")
    assert sorted(p.name for p in target.iterdir()) == ["README.md", "config.json",
                                                       "model.safetensors", HISTORY]
    card = " ".join((target / "README.md").read_text().split())
    assert "Not for real recognition" in card
    assert "2 languages (es, fi)" in card and "0.123" in card and "40 (80)" in card
    assert "random initialisation (`--model tiny`)" in card and "## Measured" not in card
    model = load_for_finetuning(str(target), vocab_size=20)
    assert model.lm_head.out_features == 20


def test_a_continued_run_adds_a_stage_to_the_history_of_its_base(tmp_path):
    first = export_base(_run(tmp_path / "a", "r1", "tiny", ["es-m3"], 40, 0.3),
                        tmp_path / "base")
    second = _run(tmp_path / "b", "r2", str(first), ["es-m3", "vi-f1", "ta-m2"], 60, 0.2)
    target = export_base(second, tmp_path / "base2", figures="| demo | 0.111 |")
    stages = json.loads((target / HISTORY).read_text())
    assert [(s["stage"], s["steps"], s["languages"]) for s in stages] == [
        (1, 40, ["es"]), (2, 60, ["es", "ta", "vi"])]
    assert stages[1]["started_from"] == "stage 1" and stages[1]["augment"] == 0.3
    card = " ".join((target / "README.md").read_text().split())
    assert "3 languages (es, ta, vi)" in card and "2 stage(s), 100 steps in all" in card
    assert "p=0.3 per effect" in card and "## Measured | demo | 0.111 |" in card


def test_exporting_again_into_the_base_it_continued_from_keeps_one_stage_per_run(tmp_path):
    base = export_base(_run(tmp_path / "a", "r1", "tiny", ["es-m3"], 40, 0.3),
                       tmp_path / "base")
    second = _run(tmp_path / "b", "r2", str(base), ["es-m3", "vi-f1"], 60, 0.2)
    export_base(second, base)
    export_base(second, base, figures="| mi | 0.1 |")
    stages = json.loads((base / HISTORY).read_text())
    assert [(s["stage"], s["run"]) for s in stages] == [(1, "r1"), (2, "r2")]
    assert "| mi | 0.1 |" in (base / "README.md").read_text()


def test_a_continued_run_from_a_base_without_history_is_refused(tmp_path):
    first = export_base(_run(tmp_path / "a", "r1", "tiny", ["es-m3"], 40, 0.3),
                        tmp_path / "base")
    (first / HISTORY).unlink()
    second = _run(tmp_path / "b", "r2", str(first), ["es-m3"], 60, 0.2)
    with pytest.raises(SystemExit, match="no recorded history"):
        export_base(second, tmp_path / "base2")
    assert not (tmp_path / "base2").exists()
