"""Training: learning, exact resume, reproducibility, the best model, and refusals."""

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.conftest import prepared_workspace, private_copy
from workbench.config import build_config, load_config
from workbench.errors import WorkbenchError
from workbench.evaluate import evaluate_run
from workbench.run import Run, TrainingLock, find_run
from workbench.train import TrainingDiverged, resume_run, train
from workbench.transcribe import load_recognizer, transcribe_files
from workbench.workspace import Workspace

FAST = ["model.name=tiny", "data.max_batch_seconds=12", "run.log_every=1", "run.threads=2"]
# Every source of randomness on: dropout everywhere, SpecAugment in time and in features,
# layerdrop, waveform augmentation. Runs must still be reproducible and resumable to the last
# bit (augmentation is drawn per clip and epoch, and STEPS crosses an epoch).
RANDOM = ["model.mask_time_prob=0.3", "model.mask_feature_prob=0.2", "model.layerdrop=0.3",
          "model.hidden_dropout=0.1", "model.activation_dropout=0.1",
          "model.attention_dropout=0.1", "model.feat_proj_dropout=0.1",
          "model.final_dropout=0.1", "data.augment=0.5"]
STEPS = 12


@pytest.fixture(scope="module")
def prepared(demo_corpus, tmp_path_factory) -> Workspace:
    return prepared_workspace(demo_corpus, tmp_path_factory.mktemp("train"), 48, vocab=True)


@pytest.fixture
def ws(prepared, tmp_path) -> Workspace:
    return private_copy(prepared, tmp_path / "ws")


class Interrupt(Exception):
    pass


def stop_after(step: int):
    def handler(event):
        if event["event"] == "train" and event["step"] == step:
            raise Interrupt
    return handler


def records(run: Run, event: str) -> list[dict]:
    return [r for r in run.read_metrics() if r["event"] == event]


def weights(folder) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def random_config(seed: int = 0, *extra: str):
    return build_config(preset="10min", overrides=[*FAST, *RANDOM, f"optim.max_steps={STEPS}",
                                                   "run.eval_every=4", f"run.seed={seed}",
                                                   *extra])


@pytest.fixture(scope="module")
def uninterrupted(prepared, tmp_path_factory):
    """One run of STEPS steps with every kind of randomness on, never interrupted."""
    ws = private_copy(prepared, tmp_path_factory.mktemp("reference") / "ws")
    result = train(ws, random_config(), progress=False)
    return ws, Run(result.run_dir)


# --------------------------------------------------------------------------- learning


def test_loss_falls_the_model_is_standard_hf_and_dev_cer_is_what_evaluate_says(ws):
    config = build_config(preset="10min", overrides=[*FAST, "optim.max_steps=40",
                                                     "run.eval_every=10"])
    result = train(ws, config, progress=False)
    run = Run(result.run_dir)
    steps = [(r["step"], r["loss"]) for r in records(run, "train")]
    assert steps[0][0] == 1 and steps[-1][0] == 40
    first, last5 = steps[0][1], [loss for _, loss in steps[-5:]]
    assert sum(last5) / 5 < 0.6 * first

    evals = records(run, "eval")
    best = min(evals, key=lambda r: (r["dev_cer"], r["step"]))
    assert (result.best_dev_cer, result.best_step) == (best["dev_cer"], best["step"])
    assert json.loads(run.result_path.read_text())["best_dev_cer"] == best["dev_cer"]
    # The one scoring rule: the dev CER training logged for the model it kept is exactly what
    # `workbench evaluate --split dev` reports for that model.
    report = evaluate_run(ws, run.name, "dev", progress=False)
    assert (report.cer, report.wer) == (best["dev_cer"], best["dev_wer"])
    assert (report.ger, report.wer_meaningful) == (best["dev_ger"], best["dev_wer_meaningful"])
    [start] = records(run, "start")
    assert report.rates["utterances"] == start["dev_utterances"] > 0

    from transformers import pipeline

    recognise = pipeline("automatic-speech-recognition", model=str(run.model_dir), device="cpu")
    clip = ws.audio_path(ws.read_split("test")[0])
    ours = transcribe_files([clip], load_recognizer(run.model_dir), progress=False)[0]
    assert recognise(str(clip))["text"] == ours.text
    assert (run.config_path.read_text()).count("name: tiny") == 1


def test_runs_with_the_same_seed_end_with_identical_weights(uninterrupted, ws):
    reference_ws, reference = uninterrupted
    config = json.loads((reference.model_dir / "config.json").read_text())
    assert (config["mask_time_prob"], config["layerdrop"], config["hidden_dropout"]) == (
        0.3, 0.3, 0.1)  # the randomness really is on
    again = Run(train(ws, random_config(), progress=False).run_dir)
    other_seed = Run(train(ws, random_config(seed=1), progress=False).run_dir)
    expected = weights(reference.last_checkpoint)
    same = weights(again.last_checkpoint)
    assert expected.keys() == same.keys()
    assert all(torch.equal(same[k], expected[k]) for k in expected)
    assert [r["loss"] for r in records(again, "train")] == [
        r["loss"] for r in records(reference, "train")]
    different = weights(other_seed.last_checkpoint)
    assert any(not torch.equal(different[k], expected[k]) for k in expected)


def test_a_resumed_run_ends_with_the_weights_of_the_uninterrupted_run(uninterrupted, ws):
    _, reference = uninterrupted
    with pytest.raises(Interrupt):
        train(ws, random_config(), progress=False, on_event=stop_after(6))
    run = find_run(ws)
    assert json.loads((run.last_checkpoint / "state.json").read_text())["step"] == 4
    result = resume_run(ws, progress=False)
    assert result.run_dir == run.root and result.steps == STEPS

    final, expected = weights(run.last_checkpoint), weights(reference.last_checkpoint)
    for key, value in expected.items():
        torch.testing.assert_close(final[key], value, rtol=0, atol=1e-6, msg=key)
    # The steps logged after the checkpoint were cut on resume: one line per step, and each
    # loss is the uninterrupted run's.
    assert [(r["step"], r["loss"]) for r in records(run, "train")] == [
        (r["step"], r["loss"]) for r in records(reference, "train")]
    assert [s["step"] for s in records(run, "start")] == [0, 4]
    assert run.read_result()["best_dev_cer"] == reference.read_result()["best_dev_cer"]


# --------------------------------------------------------------------------- the best model


def test_resume_never_replaces_the_best_model_with_a_worse_one(ws):
    with pytest.raises(Interrupt):
        train(ws, random_config(), progress=False, on_event=stop_after(6))
    run = find_run(ws)
    kept = weights(run.model_dir)
    # Pretend the evaluation at step 4 was perfect: nothing after the resume can beat it, so
    # model/ must stay the step-4 model and the result must report that best.
    state_file = run.last_checkpoint / "state.json"
    state = json.loads(state_file.read_text())
    state_file.write_text(json.dumps({**state, "best_cer": 0.0, "best_wer": 0.0,
                                      "best_step": 4}))
    result = resume_run(ws, progress=False)
    assert (result.best_dev_cer, result.best_dev_wer, result.best_step) == (0.0, 0.0, 4)
    assert run.read_result()["best_dev_cer"] == 0.0
    after = weights(run.model_dir)
    assert all(torch.equal(after[k], kept[k]) for k in kept)
    assert not any(r["best"] for r in records(run, "eval") if r["step"] > 4)


# --------------------------------------------------------------------------- refusals


@pytest.fixture
def interrupted(ws) -> tuple[Workspace, Run]:
    """A run stopped at step 6 of 12, with its checkpoint at step 4."""
    with pytest.raises(Interrupt):
        train(ws, random_config(), progress=False, on_event=stop_after(6))
    return ws, find_run(ws)


@pytest.mark.parametrize("override,value", [("optim.max_steps", 99),
                                            ("data.max_batch_seconds", 6.0),
                                            ("optim.learning_rate", 1.0),
                                            ("data.augment", 0.1)])
def test_resume_refuses_settings_that_would_misalign_the_schedule(interrupted, override, value):
    ws, run = interrupted
    with pytest.raises(WorkbenchError, match=rf"{override}={value!r}.*run.eval_every"):
        resume_run(ws, overrides={override: value}, progress=False)
    assert json.loads((run.last_checkpoint / "state.json").read_text())["step"] == 4


def test_resume_accepts_the_settings_that_may_change(interrupted):
    ws, run = interrupted
    result = resume_run(ws, overrides={"run.eval_every": 5, "run.log_every": 2},
                        progress=False)
    assert result.steps == STEPS
    assert [r["step"] for r in records(run, "eval")] == [4, 5, 10, 12]


def test_resume_refuses_a_checkpoint_that_does_not_fit_the_model(interrupted):
    ws, run = interrupted
    path = run.last_checkpoint / "model.safetensors"
    tensors = load_file(path)
    dropped = sorted(tensors)[0]
    del tensors[dropped]
    save_file(tensors, path)
    with pytest.raises(WorkbenchError, match=rf"does not fit.*missing {dropped}"):
        resume_run(ws, progress=False)


def test_resume_refuses_changed_training_data(interrupted):
    ws, _ = interrupted
    from workbench.manifest import write_manifest
    from workbench.vocab import build_workspace_vocab

    train_split = ws.read_split("train")
    write_manifest(ws.manifest_path("train"), train_split[:-3])
    build_workspace_vocab(ws)
    with pytest.raises(WorkbenchError, match="training data or the vocabulary changed"):
        resume_run(ws, progress=False)


@pytest.mark.parametrize("value", ["-0.1", "1.5"])
def test_an_augmentation_probability_outside_0_1_is_refused_by_name(ws, value):
    runs = ws.root / "runs"
    before = sorted(runs.glob("2*")) if runs.exists() else []
    config = build_config(preset="10min", overrides=[*FAST, f"data.augment={value}"])
    with pytest.raises(WorkbenchError, match=rf"data.augment={value}.*from 0 \(off\) to 1"):
        train(ws, config, progress=False)
    assert (sorted(runs.glob("2*")) if runs.exists() else []) == before  # no run folder made


def test_a_finished_run_is_not_resumed(ws):
    config = build_config(preset="10min", overrides=[*FAST, "optim.max_steps=2"])
    train(ws, config, progress=False)
    with pytest.raises(WorkbenchError, match="has trained its whole schedule"):
        resume_run(ws, progress=False)


def test_a_stale_vocabulary_is_refused(ws):
    from workbench.manifest import write_manifest

    utterances = ws.read_split("train")
    changed = [replace(utterances[0], text="zzz qqq"), *utterances[1:]]
    write_manifest(ws.manifest_path("train"), changed)
    config = build_config(preset="10min", overrides=[*FAST, "optim.max_steps=2"])
    with pytest.raises(WorkbenchError, match="changed after the vocabulary was built"):
        train(ws, config, progress=False)
    assert not ws.runs_dir.exists() or not list(ws.runs_dir.glob("2*"))


def test_a_second_training_in_the_same_workspace_is_refused(ws):
    lock = TrainingLock.acquire(ws, "20260101-000000-xls-r-300m")
    try:
        config = build_config(preset="10min", overrides=[*FAST, "optim.max_steps=2"])
        with pytest.raises(WorkbenchError, match="20260101-000000-xls-r-300m is being trained"):
            train(ws, config, progress=False)
    finally:
        lock.release()
    assert train(ws, config, progress=False).steps == 2  # free again


# --------------------------------------------------------------------------- guards


def test_non_finite_loss_stops_with_the_last_good_checkpoint_intact(ws):
    config = build_config(preset="10min", overrides=[*FAST, "optim.max_steps=60",
                                                     "run.eval_every=1", "learning_rate=1e9",
                                                     "optim.warmup_fraction=0",
                                                     "optim.grad_clip=0"])
    with pytest.raises(TrainingDiverged, match="learning rate") as caught:
        train(ws, config, progress=False)
    run = find_run(ws)
    state = json.loads((run.last_checkpoint / "state.json").read_text())
    saved = weights(run.last_checkpoint)
    assert all(torch.isfinite(w).all() for w in saved.values())
    assert f"step {state['step']}" in str(caught.value)
    [diverged] = records(run, "diverged")
    assert diverged["step"] == state["step"] + 1


def test_stop_at_step_ends_early_on_the_longer_schedule(ws):
    config = build_config(preset="10min", overrides=[*FAST, "optim.max_steps=10",
                                                     "optim.warmup_fraction=0",
                                                     "run.stop_at_step=4"])
    result = train(ws, config, progress=False)
    assert result.steps == 4 and result.stopped == "stop_at_step"
    lr_at_4 = next(r["lr"] for r in records(Run(result.run_dir), "train") if r["step"] == 4)
    assert lr_at_4 == pytest.approx(config.optim.learning_rate * 6 / 10)
    # A run stopped early on purpose can go on to the end of its schedule.
    more = resume_run(ws, overrides={"run.stop_at_step": 0}, progress=False)
    assert (more.run_dir, more.steps, more.stopped) == (result.run_dir, 10, "max_steps")


def test_start_logs_the_runtime_and_steps_log_their_wait_for_data(ws):
    config = build_config(preset="10min", overrides=[*FAST, "optim.max_steps=4",
                                                     "run.log_every=2", "run.eval_every=4"])
    result = train(ws, config, progress=False)
    run = Run(result.run_dir)
    [start] = records(run, "start")
    assert start["world_size"] == 1 and start["attn_implementation"] == "sdpa"
    assert start["runtime"]["device_type"] == "cpu" and start["runtime"]["num_workers"] == 0
    steps = records(run, "train")
    assert [r["step"] for r in steps] == [1, 2, 4]
    assert all(0 < r["data_wait_s"] and 0 < r["data_wait_share"] < 1 for r in steps)
    saved = run.read_result()
    assert saved["data_wait_s"] == pytest.approx(result.data_wait_s)
    assert saved["data_wait_s"] >= sum(r["data_wait_s"] for r in steps) - 1e-3
    assert 0 < saved["data_wait_share"] < 1


def batch_widths(monkeypatch) -> list[int]:
    """The audio width (samples) of every batch the CTC collator makes from now on."""
    from workbench.data import CTCCollator

    widths, collate = [], CTCCollator.__call__

    def recording(self, examples):
        batch = collate(self, examples)
        widths.append(batch["input_values"].shape[1])
        return batch

    monkeypatch.setattr(CTCCollator, "__call__", recording)
    return widths


def test_padding_to_whole_seconds_reaches_every_batch_and_the_step_count(ws, monkeypatch):
    """What a GPU run does by default (data.pad_to_seconds=-1), asked for here on the CPU."""
    from workbench import data as data_module
    from workbench.audit import load_excluded_ids

    widths = batch_widths(monkeypatch)
    config = build_config(preset="10min", overrides=[
        *FAST, "optim.max_steps=3", "run.eval_every=3", "data.pad_to_seconds=1",
        "data.cache_encoder_features=false", "data.max_batch_seconds=8"])
    [start] = records(Run(train(ws, config, progress=False).run_dir), "start")
    assert len(widths) >= 3 and all(width % 16000 == 0 for width in widths)
    excluded = load_excluded_ids(ws)
    durations = [u.duration for u in ws.read_split("train") if u.id not in excluded]
    padded = data_module.padded_durations(durations, 1.0)
    assert start["pad_to_seconds"] == 1.0
    assert start["steps_per_epoch"] == data_module.steps_per_epoch(padded, 8.0)
    assert start["steps_per_epoch"] > data_module.steps_per_epoch(durations, 8.0)


def test_a_run_started_on_a_gpu_resumes_elsewhere_with_the_batches_it_started_with(
        ws, monkeypatch):
    """data.pad_to_seconds=-1 is saved resolved (1 s on a GPU, 0 on a CPU): a resume on a
    machine that would resolve it otherwise keeps the run's padding, so its schedule."""
    import workbench.train as training

    widths = batch_widths(monkeypatch)
    config = build_config(preset="10min", overrides=[
        *FAST, "optim.max_steps=6", "run.eval_every=2", "data.cache_encoder_features=false",
        "data.max_batch_seconds=8"])
    assert config.data.pad_to_seconds == -1
    monkeypatch.setattr(training, "batch_pad_seconds", lambda *args: 1.0)  # as on a GPU
    with pytest.raises(Interrupt):
        train(ws, config, progress=False, on_event=stop_after(3))
    run = find_run(ws)
    assert load_config(run.config_path).data.pad_to_seconds == 1.0
    monkeypatch.undo()  # the real resolution: 0 on this CPU
    widths = batch_widths(monkeypatch)
    assert resume_run(ws, progress=False).steps == 6
    assert widths and all(width % 16000 == 0 for width in widths)
    [first, again] = records(run, "start")
    assert first["steps_per_epoch"] == again["steps_per_epoch"]
    assert first["pad_to_seconds"] == again["pad_to_seconds"] == 1.0


def test_head_only_steps_leave_everything_but_the_head_unchanged(ws, tmp_path):
    """For its first optim.head_only_steps the encoder stays where pretraining left it."""
    other = private_copy(ws, tmp_path / "other")
    settings = [*FAST, "optim.max_steps=12", "optim.head_only_steps=3"]  # cap: 12 // 4
    first = train(ws, build_config(preset="10min", overrides=[*settings, "run.stop_at_step=1"]),
                  progress=False)
    third = train(other, build_config(preset="10min", overrides=[*settings,
                                                                   "run.stop_at_step=3"]),
                  progress=False)
    at_1 = weights(Run(first.run_dir).last_checkpoint)
    at_3 = weights(Run(third.run_dir).last_checkpoint)
    head = {k for k in at_1 if k.startswith("lm_head.")}
    assert head and all(not torch.equal(at_1[k], at_3[k]) for k in head)
    assert all(torch.equal(at_1[k], at_3[k]) for k in at_1.keys() - head)
    resume_run(other, overrides={"run.stop_at_step": 0}, progress=False)
    at_6 = weights(Run(third.run_dir).last_checkpoint)
    moved = [k for k in at_1.keys() - head if not torch.equal(at_3[k], at_6[k])]
    assert any(k.startswith("wav2vec2.encoder.layers.") for k in moved)


def test_head_only_steps_are_capped_at_a_quarter_of_the_schedule(ws):
    """A short run (here 12 steps, so 3 head-only ones) still trains its encoder."""
    config = build_config(preset="10min", overrides=[*FAST, "optim.max_steps=12",
                                                     "optim.head_only_steps=100",
                                                     "run.stop_at_step=4"])
    at_4 = weights(Run(train(ws, config, progress=False).run_dir).last_checkpoint)
    initial = weights(Run(train(private_copy(ws, ws.root.parent / "again"), build_config(
        preset="10min", overrides=[*FAST, "optim.max_steps=12", "optim.head_only_steps=100",
                                   "run.stop_at_step=1"]), progress=False).run_dir)
        .last_checkpoint)
    assert any(not torch.equal(initial[k], at_4[k]) for k in initial
               if k.startswith("wav2vec2.encoder.layers."))
