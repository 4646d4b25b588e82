"""mode=adapter: MMS attention adapters and the head train on a frozen base, saved per language.

The base is a tiny random wav2vec2 in MMS's layout (stable layer norm, ``adapter_attn_dim``),
saved locally: nothing is downloaded.
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

from tests.conftest import prepared_workspace, private_copy
from workbench.adapters import ADAPTER_FILE, adapter_weights, check_adapter_lang
from workbench.cli import main
from workbench.config import PRESETS, build_config, load_config
from workbench.data import EncoderCache
from workbench.errors import WorkbenchError
from workbench.models import LOCAL_ARCHITECTURES
from workbench.recognizer import load_recognizer
from workbench.run import Run, list_runs
from workbench.train import build_model, build_processor, train
from workbench.vocab import load_vocab
from workbench.workspace import Workspace

LANG = "quy"
STEPS = 24
BASE_VOCAB = 7  # another language's head: the workspace vocabulary differs


def base_config(**changes) -> Wav2Vec2Config:
    settings = {**LOCAL_ARCHITECTURES["tiny"], "conv_kernel": (10, 3, 3, 3, 3, 2, 2),
                "conv_stride": (5, 2, 2, 2, 2, 2, 2), "feat_extract_norm": "layer",
                "do_stable_layer_norm": True, "adapter_attn_dim": 16,
                "vocab_size": BASE_VOCAB, **changes}
    return Wav2Vec2Config(**settings)


def save_base(folder: Path, **changes) -> Path:
    torch.manual_seed(0)
    Wav2Vec2ForCTC(base_config(**changes)).save_pretrained(folder, safe_serialization=True)
    return folder


def run_json(capsys, *argv) -> dict:
    code = main([*argv, "--json", "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return save_base(tmp_path_factory.mktemp("mms") / "base")


@pytest.fixture(scope="module")
def prepared(demo_corpus, tmp_path_factory) -> Workspace:
    return prepared_workspace(demo_corpus, tmp_path_factory.mktemp("adapters"), 32, vocab=True)


@pytest.fixture(scope="module")
def trained(prepared, base, tmp_path_factory):
    """One adapter run through the `workbench train` command."""
    ws = private_copy(prepared, tmp_path_factory.mktemp("run") / "ws")
    summary = _train_cli(ws, base)
    return ws, Run(Path(summary["run_dir"])), summary


def _train_cli(ws: Workspace, base: Path) -> dict:
    code = main(["train", "-w", str(ws.root), "--model", str(base), "--mode", "adapter",
                 "--adapter-lang", LANG, "--max-steps", str(STEPS), "data.max_batch_seconds=12",
                 "run.eval_every=12", "run.log_every=1", "run.threads=2", "--json", "--quiet"])
    assert code == 0
    return Run(_latest_run(ws)).read_result()


def _latest_run(ws: Workspace) -> Path:
    return sorted((ws.root / "runs").iterdir())[-1]


# --------------------------------------------------------------------------- training


def test_only_the_adapters_and_the_head_train_and_the_loss_falls(trained, base):
    ws, run, summary = trained
    assert summary["steps"] == STEPS
    assert load_config(run.config_path).optim.learning_rate == 1e-3  # the mode's default
    losses = [r["loss"] for r in run.read_metrics() if r["event"] == "train"]
    assert sum(losses[-4:]) < 0.75 * sum(losses[:4])  # batches differ: means of four

    before, after = load_file(base / "model.safetensors"), load_file(run.model_dir /
                                                                     "model.safetensors")
    assert before.keys() == after.keys()
    trainable = {k for k in after if ".adapter_layer." in k or k.startswith("lm_head.")}
    layers = LOCAL_ARCHITECTURES["tiny"]["num_hidden_layers"]
    assert len([k for k in trainable if ".adapter_layer." in k]) == 6 * layers
    frozen = after.keys() - trainable
    assert all(torch.equal(before[k], after[k]) for k in frozen)  # the base, bit for bit
    moved = [k for k in trainable if k.endswith("linear_2.weight")
             and not torch.equal(before[k], after[k])]
    assert len(moved) == layers  # every layer's adapter learned
    assert after["lm_head.weight"].shape[0] == len(load_vocab(ws.vocab_path)) != BASE_VOCAB


def test_build_model_leaves_only_adapters_and_head_trainable(prepared, base):
    config = build_config(preset="10min", overrides=[f"model.name={base}",
                                                     "model.mode=adapter",
                                                     f"model.adapter_lang={LANG}"])
    model = build_model(config, load_vocab(prepared.vocab_path))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(model._get_adapters())
    assert trainable and all(".adapter_layer." in n or n.startswith("lm_head.")
                             for n in trainable)
    # Only the frozen CNN's output can be cached: the adapters change every layer's.
    processor = build_processor(prepared, model)
    assert EncoderCache.for_model(model, processor.feature_extractor) is not None


def test_the_learning_rate_defaults_to_the_adapter_recipe_unless_set():
    adapter = build_config(preset="10min", overrides=["model.mode=adapter"])
    assert adapter.optim.learning_rate == 1e-3 and adapter.model.layerdrop == 0.0
    assert build_config(preset="10min").optim.learning_rate == PRESETS["10min"][
        "optim.learning_rate"]
    mine = build_config(preset="10min", overrides=["model.mode=adapter",
                                                   "optim.learning_rate=3e-4"])
    assert mine.optim.learning_rate == 3e-4


# --------------------------------------------------------------------------- the saved model


def test_the_adapter_file_holds_the_adapters_and_a_head_for_the_workspace_vocab(trained):
    ws, run, _ = trained
    vocab = load_vocab(ws.vocab_path)
    saved = load_file(run.model_dir / ADAPTER_FILE.format(LANG))
    model = Wav2Vec2ForCTC.from_pretrained(run.model_dir)
    assert saved.keys() == set(model._get_adapters())
    assert all(torch.equal(saved[k], v) for k, v in adapter_weights(model).items())
    assert saved["lm_head.weight"].shape == (len(vocab), model.config.hidden_size)
    assert model.config.vocab_size == len(vocab)
    assert json.loads((run.model_dir / "vocab.json").read_text()) == vocab


def test_every_loading_path_gives_the_trained_model(trained, base, tmp_path):
    """Plain (the recogniser's), with target_lang, and load_adapter onto the untouched base."""
    ws, run, _ = trained
    audio = torch.randn(1, 16000, generator=torch.Generator().manual_seed(1))

    def logits(model) -> torch.Tensor:
        with torch.inference_mode():
            return model.eval()(audio).logits

    recognizer = load_recognizer(run.model_dir, device="cpu")
    expected = logits(recognizer.model)
    with_lang = Wav2Vec2ForCTC.from_pretrained(run.model_dir, target_lang=LANG)
    assert with_lang.target_lang == LANG
    assert torch.equal(logits(with_lang), expected)

    # One base, one file per language: the adapter file alone turns the base into this model.
    shared = tmp_path / "base"
    shared.mkdir()
    for item in base.iterdir():
        (shared / item.name).write_bytes(item.read_bytes())
    (shared / ADAPTER_FILE.format(LANG)).write_bytes(
        (run.model_dir / ADAPTER_FILE.format(LANG)).read_bytes())
    model = Wav2Vec2ForCTC.from_pretrained(shared)
    assert model.config.vocab_size == BASE_VOCAB
    model.load_adapter(LANG)
    assert torch.equal(logits(model), expected)


def test_evaluate_and_transcribe_use_the_adapter_run(trained, capsys):
    ws, run, summary = trained
    dev = run_json(capsys, "evaluate", "-w", str(ws.root), "--split", "dev")
    assert (dev["cer"], dev["wer"]) == (summary["best_dev_cer"], summary["best_dev_wer"])
    report = run_json(capsys, "evaluate", "-w", str(ws.root))
    scored = report["utterances"][0]
    out = run_json(capsys, "transcribe", str(ws.root / scored["audio"]), "--model",
                   str(run.root))
    [result] = out["results"]
    assert result["error"] is None and result["text"] == scored["hypothesis"]


# --------------------------------------------------------------------------- refusals


def _refused(ws: Workspace, *overrides: str) -> str:
    config = build_config(preset="10min", overrides=["model.mode=adapter", *overrides])
    with pytest.raises(WorkbenchError) as err:
        train(ws, config, progress=False)
    assert list_runs(ws) == []  # refused before a run folder is made
    return str(err.value)


@pytest.mark.parametrize("model", ["tiny", "post-ln", "no-adapters"])
def test_a_model_without_adapters_is_refused_by_name(prepared, tmp_path, model):
    ws = private_copy(prepared, tmp_path / "ws")
    name = {"tiny": "tiny",
            "post-ln": str(save_base(tmp_path / "post", do_stable_layer_norm=False)),
            "no-adapters": str(save_base(tmp_path / "plain", adapter_attn_dim=None))}[model]
    message = _refused(ws, f"model.name={name}", f"model.adapter_lang={LANG}")
    assert name in message and "facebook/mms-1b-all" in message and "--mode full" in message


@pytest.mark.parametrize("lang", ["", "Quechua", "q", "../quy", "quy lang"])
def test_a_missing_or_invalid_adapter_language_is_refused(prepared, base, tmp_path, lang):
    ws = private_copy(prepared, tmp_path / "ws")
    message = _refused(ws, f"model.name={base}", f"model.adapter_lang={lang}")
    assert "--adapter-lang" in message


@pytest.mark.parametrize("lang", ["quy", "eng", "cmn-script_simplified", "gn"])
def test_language_codes_are_accepted(lang):
    assert check_adapter_lang(lang) == lang


def test_a_checkpoint_holds_only_what_trains_and_resumes_exactly(prepared, base, tmp_path):
    """The frozen base is left out of checkpoints (4 GB each for MMS-1B otherwise); a resume
    takes it from the base again, and refuses a base whose frozen weights changed."""
    import shutil

    from safetensors.torch import save_file

    ws = private_copy(prepared, tmp_path / "ws")
    own_base = tmp_path / "base"
    shutil.copytree(base, own_base)
    argv = ["train", "-w", str(ws.root), "--model", str(own_base), "--mode", "adapter",
            "--adapter-lang", LANG, "--max-steps", "8", "data.max_batch_seconds=12",
            "run.eval_every=4", "run.threads=1"]
    assert main([*argv, "--json", "--quiet"]) == 0
    whole = Run(_latest_run(ws))
    assert main([*argv, "run.stop_at_step=4", "--json", "--quiet"]) == 0
    cut = Run(_latest_run(ws))
    saved = load_file(cut.last_checkpoint / "model.safetensors")
    frozen = json.loads((cut.last_checkpoint / "frozen.json").read_text())["names"]
    assert saved and all(".adapter_layer." in k or k.startswith("lm_head.") for k in saved)
    assert frozen and set(frozen).isdisjoint(saved)
    assert set(frozen) | set(saved) == set(load_file(whole.model_dir / "model.safetensors"))

    weights = load_file(own_base / "model.safetensors")
    original = dict(weights)
    key = next(k for k in weights if k.endswith("feed_forward.output_dense.weight"))
    weights[key] = weights[key] + 0.01
    save_file(weights, own_base / "model.safetensors")
    resume = ["train", "-w", str(ws.root), "--resume", "--run", cut.name, "run.stop_at_step=0",
              "--json", "--quiet"]
    assert main(resume) != 0  # refused: the frozen weights it would take are not the run's
    save_file(original, own_base / "model.safetensors")
    assert main(resume) == 0
    assert json.loads((cut.last_checkpoint / "state.json").read_text())["step"] == 8
    ends = [load_file(r.last_checkpoint / "model.safetensors") for r in (whole, cut)]
    assert ends[0].keys() == ends[1].keys()
    for name, value in ends[0].items():
        torch.testing.assert_close(ends[1][name], value, atol=1e-6, rtol=1e-5)
