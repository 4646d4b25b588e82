import json

from workbench.base_export import export_base
from workbench.config import build_config, save_config
from workbench.manifest import Utterance, write_manifest
from workbench.models import load_for_finetuning


def test_export_copies_weights_and_writes_an_honest_card(tmp_path):
    run = tmp_path / "ws" / "runs" / "r1"
    load_for_finetuning("tiny", vocab_size=12).save_pretrained(run / "model")
    (run / "result.json").write_text(json.dumps({"steps": 40, "elapsed_s": 600.0,
                                                 "best_dev_cer": 0.123}))
    save_config(build_config(preset="10min", overrides=["model.name=tiny"]), run / "config.yaml")
    write_manifest(tmp_path / "ws" / "manifests" / "train.jsonl", [
        Utterance(id="a", audio="", text="x", speaker="es-m3", duration=60.0),
        Utterance(id="b", audio="", text="y", speaker="fi-f2", duration=60.0)])
    target = export_base(run, tmp_path / "base")
    assert sorted(p.name for p in target.iterdir()) == ["README.md", "config.json",
                                                       "model.safetensors"]
    card = " ".join((target / "README.md").read_text().split())
    assert "Not for real recognition" in card
    assert "2 languages (es, fi)" in card and "0.123" in card and "40 steps" in card
    model = load_for_finetuning(str(target), vocab_size=20)
    assert model.lm_head.out_features == 20
