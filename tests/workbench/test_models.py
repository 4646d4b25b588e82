import pytest
import torch

from workbench.errors import WorkbenchError
from workbench.models import (
    REGISTRY,
    checkpoint_availability,
    load_for_finetuning,
    resolve_model_name,
)


def test_registry_short_names_resolve_to_hub_ids():
    assert resolve_model_name("xls-r-300m") == "facebook/wav2vec2-xls-r-300m"
    assert resolve_model_name("some/other-model") == "some/other-model"
    assert "tiny" in REGISTRY


def test_unreachable_hub_names_the_checkpoint_and_the_way_out():
    # conftest sets HF_HUB_OFFLINE=1; without network the Hub call fails the same way.
    with pytest.raises(WorkbenchError) as caught:
        load_for_finetuning("facebook/wav2vec2-xls-r-300m", vocab_size=20)
    message = str(caught.value)
    assert "facebook/wav2vec2-xls-r-300m" in message and "--model DIR" in message
    page = caught.value.for_page()  # the browser's wording: no option, what works instead
    assert "--model" not in page and "demo-base" in page and "models folder" in page


def test_availability_is_told_without_loading_anything(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from tests.workbench.ctc_fixtures import save_tiny_model

    assert checkpoint_availability("tiny").ok and checkpoint_availability("demo-base").ok
    save_tiny_model(tmp_path / "mine")
    assert checkpoint_availability(str(tmp_path / "mine")).where == "folder"
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "config.json").write_text("{}")
    (tmp_path / "pickled" / "pytorch_model.bin").write_bytes(b"x")
    refused = checkpoint_availability(str(tmp_path / "pickled"))
    assert not refused.ok and "safetensors" in refused.reason
    assert not checkpoint_availability(str(tmp_path / "missing")).ok
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    offline = checkpoint_availability("xls-r-300m", ask_hub=True)
    assert not offline.ok and "not been downloaded" in offline.reason


def test_availability_asks_the_hub_only_when_told(monkeypatch):
    from huggingface_hub import HfApi, constants

    asked = []

    def model_info(self, repo_id, **kwargs):
        asked.append(repo_id)
        raise OSError("no route to host")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(HfApi, "model_info", model_info)
    quiet = checkpoint_availability("mms-300m")
    assert quiet.ok and quiet.where == "hub" and asked == []  # looked only on this machine
    found = checkpoint_availability("mms-300m", ask_hub=True)
    assert asked == ["facebook/mms-300m"]
    assert not found.ok and "cannot be reached" in found.reason


def test_local_checkpoint_gets_a_fresh_head_of_the_new_size(tmp_path):
    base = load_for_finetuning("tiny", vocab_size=12)
    base.save_pretrained(tmp_path / "base", safe_serialization=True)
    model = load_for_finetuning(str(tmp_path / "base"), vocab_size=30, pad_token_id=0)
    assert model.lm_head.out_features == 30
    encoder = "wav2vec2.encoder.layers.0.attention.q_proj.weight"
    assert torch.equal(model.state_dict()[encoder], base.state_dict()[encoder])


def test_loaded_checkpoints_never_fetch_hub_kernels(tmp_path):
    """transformers 5 loads with Hub kernels on, and on a GPU its train()/eval() then download
    and run kernels from the Hub (remote code; offline, training fails)."""
    load_for_finetuning("tiny", vocab_size=12).save_pretrained(tmp_path / "base",
                                                                safe_serialization=True)
    model = load_for_finetuning(str(tmp_path / "base"), vocab_size=12, pad_token_id=0)
    model.train()
    assert getattr(model, "use_kernels", False) is False
    assert getattr(model, "kernels_mode", None) is None


def test_same_size_head_is_still_reset(tmp_path):
    base = load_for_finetuning("tiny", vocab_size=12)
    with torch.no_grad():
        base.lm_head.weight.fill_(3.0)
    base.save_pretrained(tmp_path / "base", safe_serialization=True)
    model = load_for_finetuning(str(tmp_path / "base"), vocab_size=12)
    assert not torch.equal(model.lm_head.weight, base.lm_head.weight)


def test_a_fresh_head_starts_as_transformers_starts_a_new_one(tmp_path):
    """normal (the default): N(0, initializer_range) weights and a zero bias, drawn anew with
    each seed; zero; uniform (nn.Linear's draw, the bias too: the head that kept one
    demo-base seed in six on CTC's plateau); the checkpoint's own head when not reset."""
    base = load_for_finetuning("tiny", vocab_size=12)
    with torch.no_grad():
        base.lm_head.weight.fill_(3.0)
        base.lm_head.bias.fill_(1.0)
    base.save_pretrained(tmp_path / "base", safe_serialization=True)

    def head(seed: int, **settings):
        torch.manual_seed(seed)
        return load_for_finetuning(str(tmp_path / "base"), vocab_size=12,
                                   settings=settings).lm_head

    normal, again = head(0), head(1)
    assert normal.weight.std().item() == pytest.approx(base.config.initializer_range, rel=0.2)
    assert not normal.bias.any() and not torch.equal(normal.weight, again.weight)
    zero = head(0, head_init="zero")
    assert not zero.weight.any() and not zero.bias.any()
    uniform = head(0, head_init="uniform")
    bound = 1 / base.config.hidden_size ** 0.5
    assert uniform.bias.any() and uniform.weight.abs().max() <= bound
    assert uniform.weight.std().item() > 2 * base.config.initializer_range
    kept = load_for_finetuning(str(tmp_path / "base"), vocab_size=12, reset_head=False)
    assert torch.equal(kept.lm_head.weight, base.lm_head.weight)
    with pytest.raises(WorkbenchError, match=r"model.head_init='gaussian'.*normal, zero"):
        head(0, head_init="gaussian")


def test_pickle_checkpoints_are_refused(tmp_path):
    base = load_for_finetuning("tiny", vocab_size=12)
    base.config.save_pretrained(tmp_path / "pickled")
    torch.save(base.state_dict(), tmp_path / "pickled" / "pytorch_model.bin")
    with pytest.raises(WorkbenchError, match="safetensors"):
        load_for_finetuning(str(tmp_path / "pickled"), vocab_size=12)


def test_model_settings_reach_the_config():
    model = load_for_finetuning("tiny", vocab_size=12, settings={"mask_time_prob": 0.2,
                                                                "layerdrop": 0.1, "foo": 1})
    assert model.config.mask_time_prob == 0.2 and model.config.layerdrop == 0.1
