"""Laptop mode (model.mode=top): the top-only forward on cached states is the full model's,
only the top trains, the result is a standard model, the cache is reused and invalidated
when it should be, masking on cached states, and resume."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import Wav2Vec2ForCTC

from tests.conftest import prepared_workspace, private_copy
from tests.workbench.ctc_fixtures import noise, tiny_config, tiny_processor
from workbench import laptop, laptop_cache
from workbench.cli import main
from workbench.config import build_config
from workbench.data import Example
from workbench.errors import WorkbenchError
from workbench.evaluate import evaluate_run
from workbench.laptop import TopCollator, TopMode, default_top_layers, mask_states, run_top, top_cut
from workbench.laptop_cache import capture_states
from workbench.manifest import write_manifest
from workbench.onnx_export import export_onnx
from workbench.recognizer import Recognizer, clip_logits
from workbench.run import Run, find_run
from workbench.train import resume_run, train
from workbench.transcribe import load_recognizer, transcribe_files
from workbench.workspace import Workspace

LAYERS = 4
QUIET = ("mask_time_prob", "mask_feature_prob", "layerdrop", "hidden_dropout",
         "activation_dropout", "attention_dropout", "feat_proj_dropout", "final_dropout")
STEPS = 12


def tiny_model(norm: str, seed: int = 0, **settings) -> Wav2Vec2ForCTC:
    """A random four-layer wav2vec2 CTC model in the pre-LN ("layer") or post-LN layout."""
    config = tiny_config(norm)
    config.num_hidden_layers = LAYERS
    for key, value in settings.items():
        setattr(config, key, value)
    torch.manual_seed(seed)
    return Wav2Vec2ForCTC(config)


def saved_model(directory: Path, norm: str) -> Path:
    tiny_model(norm).save_pretrained(directory, safe_serialization=True)
    tiny_processor(directory, attention_mask=norm == "layer").save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def prepared(demo_corpus, tmp_path_factory) -> Workspace:
    return prepared_workspace(demo_corpus, tmp_path_factory.mktemp("laptop"), 32, vocab=True)


@pytest.fixture
def ws(prepared, tmp_path) -> Workspace:
    return private_copy(prepared, tmp_path / "ws")


@pytest.fixture(scope="module", params=["layer", "group"])
def source(request, tmp_path_factory) -> Path:
    return saved_model(tmp_path_factory.mktemp(f"model-{request.param}"), request.param)


@pytest.fixture(scope="module")
def pre_ln(tmp_path_factory) -> Path:
    return saved_model(tmp_path_factory.mktemp("model-pre-ln"), "layer")


def top_config(model: Path, *extra: str):
    return build_config(preset="10min", overrides=[
        f"model.name={model}", "model.mode=top", "model.top_layers=2",
        "data.max_batch_seconds=12", "run.log_every=1", "run.threads=2",
        f"optim.max_steps={STEPS}", "run.eval_every=4", "optim.learning_rate=1e-3", *extra])


def records(run: Run, event: str) -> list[dict]:
    return [r for r in run.read_metrics() if r["event"] == event]


# --------------------------------------------------------------------------- (a) equivalence


@pytest.mark.parametrize("norm", ["layer", "group"])
@pytest.mark.parametrize("top_layers", [1, 2, LAYERS])
def test_top_forward_on_cached_states_equals_the_full_forward(norm, top_layers, tmp_path):
    model = tiny_model(norm, **dict.fromkeys(QUIET, 0.0))
    extractor = tiny_processor(tmp_path, attention_mask=norm == "layer").feature_extractor
    cut = top_cut(model.config, top_layers)
    clips = [noise(1.3, 1), noise(0.7, 2)]
    states = [capture_states(model, cut, extractor, clip) for clip in clips]
    run_top(model, cut)
    model.train()  # the training path, with every source of randomness at zero
    labels = torch.tensor([[3, 4, 5, 6]])
    for clip, state in zip(clips, states, strict=True):
        audio = extractor(clip, sampling_rate=16_000, return_tensors="pt")["input_values"]
        samples = torch.ones(1, len(clip), dtype=torch.long)
        full = model(audio, attention_mask=samples, labels=labels)
        top = model(state[None], attention_mask=samples, labels=labels)
        torch.testing.assert_close(top.logits, full.logits, rtol=0, atol=1e-5)
        torch.testing.assert_close(top.loss, full.loss, rtol=0, atol=1e-5)
    if norm == "layer":  # a padded batch: each clip's frames as when it is alone
        padded = extractor(clips, sampling_rate=16_000, padding=True, return_tensors="pt")
        batch = torch.zeros(2, states[0].shape[0], states[0].shape[1])
        batch[0], batch[1, : states[1].shape[0]] = states[0], states[1]
        full = model(padded["input_values"], attention_mask=padded["attention_mask"]).logits
        top = model(batch, attention_mask=padded["attention_mask"]).logits
        real = states[1].shape[0]
        torch.testing.assert_close(top[0], full[0], rtol=0, atol=1e-5)
        torch.testing.assert_close(top[1, :real], full[1, :real], rtol=0, atol=1e-5)


class _HeldStates:
    """A stand-in for the states cache: the collator only asks it for a clip's states."""

    def __init__(self, states: dict):
        self.held = states

    def states(self, clip_id: str, view: int) -> torch.Tensor:
        return self.held[clip_id]


def test_batches_of_cached_states_padded_to_whole_seconds_keep_their_loss(tmp_path):
    model = tiny_model("layer", **dict.fromkeys(QUIET, 0.0))
    extractor = tiny_processor(tmp_path).feature_extractor
    cut = top_cut(model.config, 2)
    clips = {"a": noise(1.3, 1), "b": noise(0.7, 2)}
    cache = _HeldStates({key: capture_states(model, cut, extractor, clip)
                         for key, clip in clips.items()})
    run_top(model, cut)
    model.eval()
    examples = [Example("a", np.zeros(0, np.float32), [3, 4, 5, 6]),
                Example("b", np.zeros(0, np.float32), [3, 4])]
    plain = TopCollator(cache, model.config)(examples)
    padded = TopCollator(cache, model.config, pad_to_frames=50)(examples)
    assert plain["input_values"].shape[1] == 64 and padded["input_values"].shape[1] == 100
    assert torch.equal(padded["attention_mask"], plain["attention_mask"])
    assert float(model(**padded).loss.detach()) == pytest.approx(
        float(model(**plain).loss.detach()), rel=1e-5)


def test_the_lower_layers_run_without_onednn_which_is_restored_after(tmp_path):
    """oneDNN keeps a kernel per input length: the once-per-clip pass runs without it."""
    model = tiny_model("layer").eval()
    seen = []
    model.base_model.encoder.layers[0].register_forward_pre_hook(
        lambda *_: seen.append(torch._C._get_mkldnn_enabled()))
    before = torch._C._get_mkldnn_enabled()
    extractor = tiny_processor(tmp_path / "processor").feature_extractor
    states = capture_states(model, 2, extractor, noise(1.0, seed=1))
    assert seen == [False] and torch._C._get_mkldnn_enabled() == before
    assert states.shape[1] == model.config.hidden_size


@pytest.mark.parametrize("norm", ["layer", "group"])
def test_dev_scoring_on_kept_states_gives_the_full_models_logits(norm, tmp_path, monkeypatch):
    """Laptop mode's dev recognizer: the full model's logits for padded batches, and the
    lower layers run once per clip over every evaluation."""
    model = tiny_model(norm, **dict.fromkeys(QUIET, 0.0)).eval()
    processor = tiny_processor(tmp_path, attention_mask=norm == "layer")
    clips = [noise(1.3, 1), noise(0.7, 2), noise(0.9, 3)]
    full = clip_logits(Recognizer(model, processor, torch.device("cpu")), clips)
    cut = top_cut(model.config, 2)
    run_top(model, cut)
    bottoms = []
    original = laptop_cache.states_at
    monkeypatch.setattr(laptop_cache, "states_at",
                        lambda *a: bottoms.append(1) or original(*a))
    top = TopMode(cut=cut, top_layers=2, cache=None, report=None, model_config=model.config)
    recognizer = top.dev_recognizer(model, processor, "cpu")
    for _evaluation in range(3):
        kept = clip_logits(recognizer, clips)
        for a, b in zip(full, kept, strict=True):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
    assert len(bottoms) == len(clips)
    # Past the limit nothing is kept: the bottom runs at every evaluation, same logits.
    monkeypatch.setattr(laptop, "DEV_STATES_LIMIT_BYTES", 0)
    bottoms.clear()
    unkept = top.dev_recognizer(model, processor, "cpu")
    for _evaluation in range(2):
        for a, b in zip(full, clip_logits(unkept, clips), strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
    assert len(bottoms) == 2 * len(clips) and not unkept.held


def test_top_layers_out_of_range_are_refused_with_the_range():
    config = tiny_config()
    config.num_hidden_layers = 24
    assert top_cut(config, 0) == 24 - default_top_layers(24)
    assert [default_top_layers(n) for n in (1, 2, 6, 12, 24, 48)] == [1, 2, 2, 2, 2, 4]
    assert top_cut(config, 24) == 0
    with pytest.raises(WorkbenchError, match="has 24 transformer layers; give 1 to 24"):
        top_cut(config, 25)


@pytest.mark.parametrize("model", ["demo-base", "facebook/wav2vec2-xls-r-300m"])
def test_top_mode_trains_at_three_times_the_full_learning_rate_unless_set(model):
    full = build_config(preset="10min", overrides=[f"model.name={model}"])
    top = build_config(preset="10min", overrides=[f"model.name={model}", "model.mode=top"])
    assert top.optim.learning_rate == pytest.approx(3 * full.optim.learning_rate)
    own = build_config(preset="10min", overrides=[f"model.name={model}", "model.mode=top",
                                                  "optim.learning_rate=2e-4"])
    assert own.optim.learning_rate == 2e-4


def test_augmentation_with_one_view_is_refused_before_any_work(ws, pre_ln):
    with pytest.raises(WorkbenchError, match="augmentation needs at least 2 views"):
        train(ws, top_config(pre_ln, "data.augment=0.3", "data.augment_views=1"),
              progress=False)
    assert not ws.runs_dir.exists() or not list(ws.runs_dir.glob("2*"))


# --------------------------------------------------------------------------- (b) what trains


def test_only_the_top_layers_and_the_head_change(ws, source):
    result = train(ws, top_config(source, "model.mask_time_prob=0.2"), progress=False)
    assert result.steps == STEPS
    before, after = load_file(source / "model.safetensors"), load_file(
        Run(result.run_dir).model_dir / "model.safetensors")
    stable = json.loads((source / "config.json").read_text())["do_stable_layer_norm"]
    top = ("wav2vec2.encoder.layers.2.", "wav2vec2.encoder.layers.3.", "lm_head.",
           *(("wav2vec2.encoder.layer_norm.",) if stable else ()))
    frozen = [k for k in before if not k.startswith(top)]
    assert any(k.startswith("wav2vec2.feature_extractor.") for k in frozen)
    assert any(k.startswith("wav2vec2.encoder.layers.1.") for k in frozen)
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    trained = [k for k in after if k.startswith(top[:2])]
    assert trained and all(not torch.equal(before[k], after[k]) for k in trained)
    if stable:
        assert not torch.equal(before["wav2vec2.encoder.layer_norm.weight"],
                               after["wav2vec2.encoder.layer_norm.weight"])
    assert after["lm_head.weight"].shape[0] == len(json.loads(ws.vocab_path.read_text()))


def test_the_loss_falls_on_the_cache(ws, pre_ln):
    result = train(ws, top_config(pre_ln, "optim.max_steps=40", "run.eval_every=40",
                                  "optim.learning_rate=3e-3"), progress=False)
    losses = [r["loss"] for r in records(Run(result.run_dir), "train")]
    assert sum(losses[-5:]) / 5 < 0.6 * losses[0]


def test_the_steps_read_no_audio_in_top_mode(ws, pre_ln, monkeypatch):
    """The steps train on cached states: the dataset reads no clip (a full run reads them)."""
    import soundfile

    from workbench import data

    train_audio = {str(ws.audio_path(u)) for u in ws.read_split("train")}
    reads = []

    class CountingSoundfile:
        @staticmethod
        def read(path, *args, **kwargs):
            reads.append(str(path))
            return soundfile.read(path, *args, **kwargs)

    monkeypatch.setattr(data, "sf", CountingSoundfile)
    short = ["optim.max_steps=4", "run.eval_every=4"]
    train(ws, top_config(pre_ln, *short), progress=False)
    assert not train_audio & set(reads)
    train(ws, top_config(pre_ln, *short, "model.mode=full"), progress=False)
    assert train_audio & set(reads)


def test_top_mode_hands_freed_memory_back_between_steps_on_a_cpu(ws, pre_ln, monkeypatch):
    """At most every TRIM_EVERY_S (here: every step) in top mode; never in a full run."""
    import workbench.train as training

    trims = []
    monkeypatch.setattr(training, "TRIM_EVERY_S", 0.0)
    monkeypatch.setattr(training, "release_freed_memory", lambda: trims.append(1))
    short = ["optim.max_steps=4", "run.eval_every=4"]
    train(ws, top_config(pre_ln, *short), progress=False)
    assert len(trims) == 4
    trims.clear()
    train(ws, top_config(pre_ln, *short, "model.mode=full"), progress=False)
    assert not trims
    monkeypatch.setattr(training, "TRIM_EVERY_S", 3600.0)  # once, then not within the hour
    train(ws, top_config(pre_ln, *short), progress=False)
    assert len(trims) == 1


# --------------------------------------------------------------------------- (c) a standard model


def test_the_run_model_is_a_standard_model_for_pipeline_transcribe_and_onnx(ws, pre_ln, capsys,
                                                                             tmp_path):
    code = main(["train", "-w", str(ws.root), "--model", str(pre_ln), "--mode", "top",
                 "--top-layers", "2", "--max-steps", "4", "data.max_batch_seconds=12",
                 "run.eval_every=4", "--json", "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    run = Run(Path(json.loads(out.out)["run_dir"]))
    model = Wav2Vec2ForCTC.from_pretrained(run.model_dir)
    assert len(model.wav2vec2.encoder.layers) == LAYERS

    from transformers import pipeline

    recognise = pipeline("automatic-speech-recognition", model=str(run.model_dir), device="cpu")
    clip = ws.audio_path(ws.read_split("test")[0])
    ours = transcribe_files([clip], load_recognizer(run.model_dir), progress=False)[0]
    assert recognise(str(clip))["text"] == ours.text
    code = main(["transcribe", str(clip), "--model", str(run.root), "--json", "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert json.loads(out.out)["results"][0]["text"] == ours.text
    exported = export_onnx(run.root, tmp_path / "onnx")
    assert exported.max_logit_diff < 1e-3
    onnx_text = transcribe_files([clip], load_recognizer(exported.out_dir, threads=1),
                                 progress=False)[0].text
    assert onnx_text == ours.text
    [cache] = records(run, "cache")
    assert (cache["top_layers"], cache["cut"], cache["computed"]) == (2, 2, cache["clips"])
    # The dev CER logged (scored on kept states) is what `workbench evaluate` reports.
    [evaluation] = records(run, "eval")
    assert evaluate_run(ws, run.name, "dev", progress=False).cer == pytest.approx(
        evaluation["dev_cer"])


# --------------------------------------------------------------------------- (d) the cache


def test_the_cache_is_reused_and_invalidated_by_the_cut_and_the_audio(ws, pre_ln):
    short = ["optim.max_steps=2", "run.eval_every=2"]
    first = records(Run(train(ws, top_config(pre_ln, *short), progress=False).run_dir),
                    "cache")[0]
    assert first["computed"] == first["clips"] > 0 and first["in_ram"]
    again = records(Run(train(ws, top_config(pre_ln, *short), progress=False).run_dir),
                    "cache")[0]
    assert (again["computed"], again["reused"], again["folder"]) == (
        0, first["clips"], first["folder"])

    other_cut = records(Run(train(ws, top_config(pre_ln, *short, "model.top_layers=1"),
                                  progress=False).run_dir), "cache")[0]
    assert other_cut["computed"] == first["clips"] and other_cut["folder"] != first["folder"]
    assert Path(first["folder"]).is_dir()  # kept: the last other cache (KEPT_CACHES)

    # One clip's audio changes (as a new `prepare` would record it): only it is computed.
    utterances = ws.read_split("train")
    changed = utterances[0]
    path = ws.audio_path(changed)
    import soundfile as sf

    samples, rate = sf.read(path, dtype="float32")
    sf.write(path, samples * 0.5, rate, subtype="PCM_16")
    write_manifest(ws.manifest_path("train"),
                   [changed.__class__(**{**changed.__dict__, "sha1": "f" * 40}),
                    *utterances[1:]])
    after = records(Run(train(ws, top_config(pre_ln, *short), progress=False).run_dir),
                    "cache")[0]
    assert (after["computed"], after["reused"]) == (1, first["clips"] - 1)


def test_augmented_views_are_cached_beside_the_clip_and_taken_in_turn(ws, pre_ln, monkeypatch):
    served = []
    original = TopCollator.__call__
    monkeypatch.setattr(TopCollator, "__call__",
                        lambda self, examples: served.extend(e.view for e in examples)
                        or original(self, examples))
    plain = ["optim.max_steps=2", "run.eval_every=2"]
    first = records(Run(train(ws, top_config(pre_ln, *plain), progress=False).run_dir),
                    "cache")[0]
    assert set(served) == {0}
    served.clear()
    augmented = [*plain, "data.augment=1.0", "data.augment_views=3", "optim.max_steps=24"]
    result = train(ws, top_config(pre_ln, *augmented), progress=False)
    cache = records(Run(result.run_dir), "cache")[0]
    # The clips themselves are reused from the plain run; two perturbed copies each are new.
    assert cache["views"] == 3 and cache["folder"] == first["folder"]
    assert (cache["computed"], cache["reused"]) == (2 * first["clips"], first["clips"])
    files = sorted(Path(cache["folder"]).glob("*.npy"))
    assert len(files) == 3 * first["clips"]
    assert sum(f.name.endswith("-v1.npy") for f in files) == first["clips"]
    steps_per_epoch = records(Run(result.run_dir), "start")[0]["steps_per_epoch"]
    assert 24 // steps_per_epoch >= 3 and set(served) == {0, 1, 2}  # epoch e: view e % 3
    # The copies differ from the clip (every effect applies at 1.0), one stretch each.
    clip = sorted(f for f in files if "-a" not in f.name)[0]
    copies = sorted(Path(cache["folder"]).glob(f"{clip.stem}-a*.npy"))
    assert len(copies) == 2
    states = [np.load(f) for f in (clip, *copies)]
    assert all(s.shape[1] == states[0].shape[1] for s in states)
    assert not any(s.shape == states[0].shape and np.allclose(s, states[0]) for s in states[1:])
    # Other augmentation settings, other copies; the clips are still reused.
    other = train(ws, top_config(pre_ln, *augmented, "data.augment=0.5"), progress=False)
    again = records(Run(other.run_dir), "cache")[0]
    assert (again["computed"], again["reused"]) == (2 * first["clips"], first["clips"])


def test_the_collator_gives_each_cached_clip_its_own_frame_count():
    model = tiny_model("layer")
    collator = TopCollator(cache=None, model_config=model.config)
    for frames in (1, 2, 7, 49, 50, 333):
        samples = collator.samples_for(frames)
        lengths = model._get_feat_extract_output_lengths(torch.tensor([samples - 1, samples]))
        assert lengths.tolist() == [frames - 1, frames]


def test_a_tiny_ram_limit_serves_the_batches_from_disk(ws, pre_ln, tmp_path, monkeypatch):
    in_ram = train(private_copy(ws, tmp_path / "ram"), top_config(pre_ln), progress=False)
    monkeypatch.setattr(laptop_cache, "RAM_LIMIT_BYTES", 0)
    reads = []
    original = laptop_cache.StatesCache._read
    monkeypatch.setattr(laptop_cache.StatesCache, "_read",
                        lambda self, key: reads.append(key) or original(self, key))
    on_disk = train(ws, top_config(pre_ln), progress=False)
    [cache] = records(Run(on_disk.run_dir), "cache")
    assert not cache["in_ram"] and len(list(Path(cache["folder"]).glob("*.npy"))) == cache[
        "clips"]
    assert len(reads) > cache["clips"]  # every batch read its clips from disk, every epoch
    # The same training either way.
    a = load_file(Run(in_ram.run_dir).last_checkpoint / "model.safetensors")
    b = load_file(Run(on_disk.run_dir).last_checkpoint / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------- (e) masking


def test_masking_replaces_frames_and_channels_by_the_clip_mean_at_the_expected_rate():
    config = tiny_config()
    config.update({"mask_time_prob": 0.3, "mask_time_length": 5, "mask_feature_prob": 0.0})
    np.random.seed(0)
    states = torch.randn(64, 200, 32)
    lengths = torch.randint(120, 201, (64,))
    lengths[0] = 200
    frames = torch.arange(200)[None, :] < lengths[:, None]
    masked = mask_states(states, config, frames)
    mean = (states * frames[..., None]).sum(1, keepdim=True) / lengths[:, None, None]
    changed = (masked != states).any(-1)
    assert not changed[~frames].any()  # padding untouched
    torch.testing.assert_close(masked[changed], mean.expand_as(states)[changed])
    share = changed.sum().item() / frames.sum().item()
    assert 0.2 < share <= 0.3  # spans may overlap, so a little under mask_time_prob

    config.update({"mask_time_prob": 0.0, "mask_feature_prob": 0.25, "mask_feature_length": 4})
    masked = mask_states(states, config, frames)
    channels = (masked != states)[:, 0, :]  # (batch, hidden): whole channels change
    assert torch.equal((masked != states).any(1), channels)
    share = channels.float().mean().item()
    assert 0.15 < share <= 0.25
    torch.testing.assert_close(masked[0][:, channels[0]],
                               mean[0, 0, channels[0]].expand(200, -1))

    config.update({"mask_time_prob": 0.3, "mask_feature_prob": 0.25})
    model = tiny_model("layer", **{**dict.fromkeys(QUIET, 0.0), "mask_time_prob": 0.3})
    run_top(model, 2)
    state = torch.randn(1, 50, 32)
    mask = torch.ones(1, 50 * 320, dtype=torch.long)
    model.eval()
    assert torch.equal(model(state, attention_mask=mask).logits,
                       model(state, attention_mask=mask).logits)  # no masking in eval
    model.train()
    assert not torch.equal(model(state, attention_mask=mask).logits,
                           model(state, attention_mask=mask).logits)


# --------------------------------------------------------------------------- (f) resume


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("views", [1, 3])
def test_a_resumed_top_run_ends_with_the_weights_of_the_uninterrupted_run(ws, pre_ln, tmp_path,
                                                                          views):
    settings = ["model.mask_time_prob=0.3", "model.mask_feature_prob=0.2",
                "model.layerdrop=0.3", "model.hidden_dropout=0.1",
                *(["data.augment=0.5", f"data.augment_views={views}"] if views > 1 else [])]
    reference = Run(train(private_copy(ws, tmp_path / "reference"),
                          top_config(pre_ln, *settings), progress=False).run_dir)

    def stop_after_6(event):
        if event["event"] == "train" and event["step"] == 6:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(ws, top_config(pre_ln, *settings), progress=False, on_event=stop_after_6)
    result = resume_run(ws, progress=False)
    run = find_run(ws)
    assert result.steps == STEPS and [r["step"] for r in records(run, "start")] == [0, 4]
    assert [r["computed"] for r in records(run, "cache")] == [views * run_clips(run), 0]
    if views > 1:  # the resumed part trains on perturbed copies (epoch e: copy e mod views)
        assert any(r["epoch"] % views for r in records(run, "train") if r["step"] > 6)
    assert_same_training(run, reference)


def assert_same_training(run: Run, reference: Run) -> None:
    """The runs logged the same losses and ended with the same weights."""
    final = load_file(run.last_checkpoint / "model.safetensors")
    expected = load_file(reference.last_checkpoint / "model.safetensors")
    for key, value in expected.items():
        torch.testing.assert_close(final[key], value, rtol=0, atol=1e-6, msg=key)
    assert [(r["step"], r["loss"]) for r in records(run, "train")] == [
        (r["step"], r["loss"]) for r in records(reference, "train")]


def run_clips(run: Run) -> int:
    return records(run, "cache")[0]["clips"]


def test_older_caches_are_pruned_keeping_the_one_in_use_and_the_last_other(tmp_path):
    import os

    from workbench.laptop import KEPT_CACHES, cache_root, prune_caches

    folders = []
    for age, name in enumerate(("newest", "older", "oldest", "in-use")):
        folder = cache_root(tmp_path) / name
        folder.mkdir(parents=True)
        (folder / "info.json").write_text("{}")
        (folder / "clip.npy").write_bytes(b"x")
        os.utime(folder / "info.json", (1e9 - age * 1000, 1e9 - age * 1000))
        folders.append(folder)
    removed = prune_caches(tmp_path, keep=folders[-1])
    assert sorted(p.name for p in removed) == ["older", "oldest"]
    assert sorted(p.name for p in cache_root(tmp_path).iterdir()) == ["in-use", "newest"]
    assert KEPT_CACHES == 2
    assert (folders[-1] / "info.json").stat().st_mtime > 1e9  # marked used now
