"""The training estimate: its arithmetic, its cache, `train --estimate`, the time left."""

import json
import math
from dataclasses import replace

import pytest

from tests.conftest import prepared_workspace
from workbench import estimate as est
from workbench.cli import main
from workbench.config import build_config, resolve_schedule
from workbench.data import steps_per_epoch
from workbench.errors import WorkbenchError

MEASURED = est.Measurement(
    key="k", model="m", params=300_000_000, trainable=290_000_000, layers=24, layer_share=0.9,
    adapters=0, batch_seconds=16.0, steps=2, forward_s=30.0, backward_s=60.0, optimizer_s=2.0,
    data_s=0.5, encoder_s_per_s=0.2, inference_s_per_s=0.5, base_mb=2000.0, peak_mb=9000.0,
    encoder_cache_mb=10.0, encoder_mb_per_s=0.1, device="cpu", threads=2)


@pytest.fixture(scope="module")
def prepared(demo_corpus, tmp_path_factory):
    return prepared_workspace(demo_corpus, tmp_path_factory.mktemp("estimate"), 24, vocab=True)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(est.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / "estimates.json"


def test_the_step_count_is_the_trainers_and_a_step_scales_with_its_audio():
    durations = [3.0, 4.0, 5.0, 6.0] * 25
    config = build_config(preset="10min", overrides=["data.max_batch_seconds=20"])
    work = est.workload_for(durations, [4.0] * 5, config)
    assert work.steps == resolve_schedule(config, steps_per_epoch(durations, 20)).max_steps
    assert steps_per_epoch(durations, 20) == 24 and work.steps == 24 * 150  # the preset's epochs
    assert work.train_seconds == sum(durations) and work.dev_seconds == 20.0
    assert 15.0 < work.batch_seconds <= work.largest_batch_seconds <= 20.0
    assert work.peak_batch_seconds == work.largest_batch_seconds
    assert work.evaluations == 10  # every 360 steps
    assert work.encoded_seconds == work.train_seconds  # whole epochs: every clip is encoded
    one = est.step_seconds(MEASURED, 16.0)
    assert one == pytest.approx(30 + 60 + 0.5 + 2)
    # Twice the audio: twice the compute, the same optimizer step.
    assert est.step_seconds(MEASURED, 32.0) == pytest.approx(2 * (one - 2) + 2)


def test_batches_padded_to_whole_seconds_are_counted_as_the_run_forms_them():
    durations, padded = [2.1, 3.1] * 50, [3.0, 4.0] * 50
    config = build_config(preset="10min", overrides=["data.max_batch_seconds=20",
                                                     "data.pad_to_seconds=1"])
    work = est.workload_for(durations, [], config)
    assert steps_per_epoch(padded, 20) > steps_per_epoch(durations, 20)
    assert work.steps == resolve_schedule(config, steps_per_epoch(padded, 20)).max_steps
    assert work.largest_batch_seconds in (18.0, 20.0)  # whole seconds, within the budget
    assert work.train_seconds == pytest.approx(sum(durations))  # real audio, not padding
    unpadded = est.workload_for(durations, [], build_config(
        preset="10min", overrides=["data.max_batch_seconds=20"]))  # -1 on a CPU: none
    assert unpadded.steps == resolve_schedule(config, steps_per_epoch(durations, 20)).max_steps


def test_a_full_run_is_its_steps_plus_the_encoder_once_and_the_evaluations():
    work = est.Workload(steps=100, batch_seconds=16.0, train_seconds=600.0, dev_seconds=60.0,
                        evaluations=10, encoded_seconds=600.0)
    full = est.estimate(MEASURED, work, "full")
    saves = 10 * (MEASURED.params + MEASURED.trainable) * 8 / est.SAVE_BYTES_PER_S
    assert full.basis == "measured"
    assert full.seconds == pytest.approx(100 * 92.5 + 600 * 0.2 + 10 * 60 * 0.5 + saves)
    assert not full.fits_hour
    # The measured peak at the measured batch size comes back, plus the cache of all clips.
    assert full.peak_mb == pytest.approx(MEASURED.peak_mb - MEASURED.encoder_cache_mb + 60.0)
    top = est.estimate(MEASURED, work, "top", top_layers=6)
    assert top.basis == "model" and "top 6 of 24" in top.detail
    assert top.step_s < full.step_s / 3 and top.peak_mb < full.peak_mb
    with pytest.raises(WorkbenchError, match="no attention adapters"):
        est.estimate(MEASURED, work, "adapter")
    adapter = est.estimate(replace(MEASURED, adapters=2_000_000), work, "adapter")
    assert top.step_s < adapter.step_s < full.step_s


def test_laptop_mode_pays_one_inference_pass_below_the_cut_and_holds_the_states():
    """Top mode's cache: the lower layers' share of one inference pass over the audio it
    reaches, and the states (hidden x 4 bytes x 50 frames a second) in RAM up to the limit."""
    work = est.Workload(steps=100, batch_seconds=16.0, train_seconds=600.0, dev_seconds=0.0,
                        evaluations=0, encoded_seconds=600.0)
    wide = replace(MEASURED, hidden_size=1024)
    top = est.estimate(wide, work, "top", top_layers=2)
    share = wide.layer_share * 2 / wide.layers
    steps = 100 * top.step_s
    assert top.seconds - steps == pytest.approx(600 * wide.inference_s_per_s * (1 - share))
    states = 600 * 50 * 1024 * 4 / 2**20
    narrow = est.estimate(replace(MEASURED, hidden_size=0), work, "top", top_layers=2)
    assert top.peak_mb - narrow.peak_mb == pytest.approx(states)
    hours = replace(work, encoded_seconds=36000.0)
    capped = est.estimate(wide, hours, "top", top_layers=2)
    uncapped_states = 36000 * 50 * 1024 * 4 / 2**20
    held = capped.peak_mb - est.estimate(replace(MEASURED, hidden_size=0), hours, "top",
                                         top_layers=2).peak_mb
    assert held == pytest.approx(est.laptop_ram_limit_mb())
    assert held < uncapped_states


def test_augmented_laptop_mode_caches_every_view_and_holds_them_all():
    """With augmentation, top mode caches ``views`` copies of each clip: as many cache
    passes (less what is cached already) and as many states in RAM."""
    work = est.Workload(steps=100, batch_seconds=16.0, train_seconds=600.0, dev_seconds=0.0,
                        evaluations=0, encoded_seconds=600.0)
    wide = replace(MEASURED, hidden_size=1024)
    one = est.estimate(wide, work, "top", top_layers=2)
    four = est.estimate(wide, work, "top", top_layers=2, views=4, cached_share=1.0)
    building = one.seconds - 100 * one.step_s
    assert four.seconds - 100 * four.step_s == pytest.approx(3 * building)
    assert four.peak_mb - one.peak_mb == pytest.approx(3 * 600 * 50 * 1024 * 4 / 2**20)
    assert "4 copies of each clip cached" in four.detail
    plain = build_config(preset="10min", overrides=["model.name=tiny"])
    augmented = build_config(preset="10min", overrides=["model.name=tiny", "data.augment=0.3"])
    assert (est.top_views(plain), est.top_views(augmented)) == (1, 4)


def test_laptop_mode_scores_dev_with_the_top_layers_after_one_pass_below():
    """Each dev evaluation of a top run costs the top layers' share of an inference pass;
    the lower layers run over the dev set once."""
    quiet = est.Workload(steps=100, batch_seconds=16.0, train_seconds=600.0, dev_seconds=0.0,
                         evaluations=0, encoded_seconds=600.0)
    scored = replace(quiet, dev_seconds=120.0, evaluations=10)
    share = MEASURED.layer_share * 2 / MEASURED.layers
    top = est.estimate(MEASURED, scored, "top", top_layers=2)
    plain = est.estimate(MEASURED, quiet, "top", top_layers=2)
    saves = 10 * (MEASURED.params + MEASURED.trainable) * 8 / est.SAVE_BYTES_PER_S
    dev = 120.0 * MEASURED.inference_s_per_s
    assert top.seconds - plain.seconds == pytest.approx(10 * dev * share + dev * (1 - share)
                                                        + saves)
    full = est.estimate(MEASURED, scored, "full").seconds \
        - est.estimate(MEASURED, quiet, "full").seconds
    assert full == pytest.approx(10 * dev + saves)


def test_the_peak_follows_the_largest_batch_and_the_time_the_mean():
    """The child measures the run's largest batches: a run whose mean batch is half its
    largest keeps the measured activations in the peak, and halves the step time."""
    small = est.Workload(steps=100, batch_seconds=8.0, train_seconds=600.0, dev_seconds=0.0,
                         evaluations=0, encoded_seconds=600.0)
    largest = replace(small, largest_batch_seconds=16.0)
    by_mean, by_largest = est.estimate(MEASURED, small, "full"), est.estimate(MEASURED, largest,
                                                                             "full")
    assert by_largest.seconds == by_mean.seconds
    activations = MEASURED.peak_mb - MEASURED.base_mb - MEASURED.trainable * est.STATE_BYTES \
        / 2**20 - MEASURED.encoder_cache_mb
    assert by_largest.peak_mb - by_mean.peak_mb == pytest.approx(activations / 2)


def test_a_short_run_encodes_only_the_clips_it_reaches():
    durations = [5.0] * 40  # 10 batches of 20 s
    config = build_config(preset="10min", overrides=["data.max_batch_seconds=20",
                                                    "optim.max_steps=2"])
    work = est.workload_for(durations, [], config)
    assert work.steps == 2 and work.encoded_seconds == pytest.approx(40.0)
    assert work.evaluations == 0  # no dev set


def test_the_chosen_mode_is_suggested_only_when_it_fits_an_hour():
    slow = est.Estimate("full", 1000, 5 * 3600, 9000, "measured", 18.0)
    fast = est.Estimate("top", 1000, 1800, 4000, "model", 1.8)
    plan = est.Plan([slow, fast], chosen="full", suggested="top")
    line = est.summary_line(plan)
    assert "--mode full" in line and "5.0 h" in line
    assert "More than an hour here: --mode top would take about 30 min" in line


def test_a_measurement_is_cached_per_model_and_threads(cache):
    config = build_config(preset="10min", overrides=["model.name=tiny", "run.threads=2"])
    key = est.cache_key(config, 1000, "full")
    assert est.cached(key) is None
    est.remember(replace(MEASURED, key=key))
    assert est.cached(key) == replace(MEASURED, key=key)
    assert json.loads(cache.read_text())[key]["forward_s"] == 30.0
    others = [replace(config, run=replace(config.run, threads=1)),
              replace(config, model=replace(config.model, name="small"))]
    for other in others:
        assert est.cache_key(other, 1000, "full") != key
    assert est.cache_key(config, 2000, "full") != key
    assert est.cache_key(config, 1000, "adapter") != key


def test_without_a_measurement_the_line_before_training_is_a_rough_one(prepared):
    config = build_config(preset="10min", overrides=["model.name=small", "run.threads=2"])
    plan = est.plan(prepared, config, measure_missing=False)
    assert [e.basis for e in plan.estimates] == ["rough"]
    assert "rough, from the model size" in est.summary_line(plan)


def test_train_estimate_measures_once_then_reads_the_cache(prepared, cache, capsys):
    argv = ["train", "-w", str(prepared.root), "--model", "tiny", "--json",
            "run.threads=1", "data.max_batch_seconds=8"]
    assert main([*argv, "--estimate"]) == 0
    first = json.loads(capsys.readouterr().out)
    modes = {e["mode"]: e for e in first["estimates"]}
    assert set(modes) == {"full", "top"}  # tiny has no adapters
    assert modes["full"]["basis"] == "measured" and modes["top"]["basis"] == "model"
    assert 0 < modes["top"]["seconds"] < modes["full"]["seconds"]
    assert modes["full"]["peak_mb"] > 100  # a Python process with torch and a model
    assert first["suggested"] == "full" and modes["full"]["fits_hour"]
    entry = next(iter(json.loads(cache.read_text()).values()))
    assert entry["model"] == "tiny" and entry["threads"] == 1 and entry["steps"] == 2
    assert entry["forward_s"] > 0 and entry["backward_s"] > 0
    # Laptop mode probed and stepped for real (tiny: 4 layers, the default top 2).
    assert entry["top_layer_mb"] > 0 and entry["top_step_mb"] > 0
    assert entry["top_step_layers"] == 2
    # The second estimate reads the cache: the very same figures.
    assert main([*argv, "--estimate"]) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert not (prepared.runs_dir.exists() and any(prepared.runs_dir.iterdir()))


def test_the_time_left_follows_the_latter_half_of_the_steps():
    records = [{"event": "start", "step": 0, "max_steps": 100, "time": 0.0}]
    # 10 s a step for the first 10 steps (warm-up, encoder), then 2 s a step.
    for step in range(1, 41):
        elapsed = 10.0 * min(step, 10) + 2.0 * max(0, step - 10)
        records.append({"event": "train", "step": step, "elapsed_s": elapsed,
                        "time": 1000.0 + elapsed})
    assert est.remaining_seconds(records[:2]) is None
    assert est.remaining_seconds(records) == pytest.approx(60 * 2.0)
    # Read 30 s after the last record: 30 s less to go.
    assert est.remaining_seconds(records, now=records[-1]["time"] + 30) == pytest.approx(90.0)
    assert est.remaining_seconds([*records, {"event": "end", "step": 40}]) is None


def test_durations_read_as_people_say_them():
    assert [est.duration_text(s) for s in (45, 600, 3 * 3600, 5 * 86400)] == \
        ["45 s", "10 min", "3.0 h", "5 days"]
    assert math.isclose(est.HOUR_S, 3600)


def test_states_an_earlier_top_run_cached_are_not_counted_again(prepared):
    from workbench.laptop import cache_root
    from workbench.laptop_cache import clip_key

    config = build_config(preset="10min", overrides=["model.name=tiny"])
    train = est.training_utterances(prepared, config)
    half = train[: len(train) // 2]
    folder = cache_root(prepared.root) / "0123abcd"
    folder.mkdir(parents=True)
    try:
        (folder / "info.json").write_text(json.dumps({"model": "tiny", "cut": 3}))
        for utterance in half:
            (folder / f"{clip_key(utterance, prepared.root)}.npy").write_bytes(b"")
        share = sum(u.duration for u in half) / sum(u.duration for u in train)
        assert est.cached_states_share(prepared, config, 3) == pytest.approx(share)
        assert est.cached_states_share(prepared, config, 2) == 0.0  # another cut
        other = build_config(preset="10min", overrides=["model.name=small"])
        assert est.cached_states_share(prepared, other, 3) == 0.0  # another model
    finally:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
    work = est.Workload(steps=100, batch_seconds=16.0, train_seconds=600.0, dev_seconds=0.0,
                        evaluations=0, encoded_seconds=600.0)
    fresh = est.estimate(MEASURED, work, "top", top_layers=2)
    cached = est.estimate(MEASURED, work, "top", top_layers=2, cached_share=0.25)
    building = fresh.seconds - 100 * fresh.step_s
    assert cached.seconds == pytest.approx(fresh.seconds - 0.25 * building)
    assert "25% of the audio's states cached already" in cached.detail


def test_the_laptop_step_probe_counts_what_each_top_layer_holds(prepared):
    """The measuring child counts the tensors laptop mode's step keeps for backward: per top
    layer at least a dozen batch x frames x hidden tensors (norms, projections, residuals,
    the feed-forward ones, the attention weights), twice as much for twice the clips."""
    import torch
    from transformers import Wav2Vec2ForCTC

    from tests.workbench.ctc_fixtures import tiny_config
    from workbench.estimate_child import _probe_top
    from workbench.text import load_profile
    from workbench.train import load_training_data
    from workbench.vocab import load_vocab

    vocab = load_vocab(prepared.vocab_path)
    data = load_training_data(prepared, vocab, load_profile(prepared.profile_path))
    config = tiny_config("layer")
    config.num_hidden_layers, config.vocab_size, config.layerdrop = 4, len(vocab), 0.5
    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(config).train()
    batch = [0, 1, 2, 3]
    layer_mb, rest_mb, seconds = _probe_top(model, data, batch, "cpu")
    samples = [len(data.train[i].samples) for i in batch]
    frames = int(model._get_feat_extract_output_lengths(max(samples)))
    unit_mb = len(batch) * frames * config.hidden_size * 4 / 2**20
    assert 12 * unit_mb <= layer_mb <= 100 * unit_mb
    assert 0 < rest_mb < layer_mb
    assert seconds == pytest.approx(len(batch) * max(samples) / 16000)
    assert model.config.layerdrop == 0.5  # restored after the probe
    twice = _probe_top(model, data, batch * 2, "cpu")
    assert twice[0] == pytest.approx(2 * layer_mb, rel=0.05)
    assert twice[2] == pytest.approx(2 * seconds)


def test_laptop_modes_peak_counts_the_probed_activations_of_each_top_layer():
    """With the probe, each top layer adds its activations (at the run's largest batch) and
    its gradient and AdamW state; without it the full step's activations are shared out."""
    work = est.Workload(steps=100, batch_seconds=16.0, train_seconds=600.0, dev_seconds=0.0,
                        evaluations=0, encoded_seconds=600.0, largest_batch_seconds=20.0)
    probed = replace(MEASURED, top_layer_mb=300.0, top_rest_mb=40.0, top_probe_seconds=10.0)
    two, three = (est.estimate(probed, work, "top", top_layers=k) for k in (2, 3))
    per_layer_state = MEASURED.trainable * MEASURED.layer_share / 24 * est.STATE_BYTES / 2**20
    assert three.peak_mb - two.peak_mb == pytest.approx(300.0 * 20 / 10 + per_layer_state,
                                                        rel=1e-3)
    unprobed = est.estimate(MEASURED, work, "top", top_layers=2)
    full_activations = (MEASURED.peak_mb - MEASURED.base_mb - MEASURED.encoder_cache_mb
                        - MEASURED.trainable * est.STATE_BYTES / 2**20)
    shared_out = full_activations * MEASURED.layer_share * 2 / 24 * 20 / 16
    assert two.peak_mb - unprobed.peak_mb == pytest.approx((2 * 300 + 40) * 20 / 10
                                                           - shared_out, rel=1e-3)
    # Measured laptop steps: what they grew by beyond activations and optimizer state is
    # added as it was (it does not scale with the batch or the layers).
    two_state = MEASURED.trainable * MEASURED.layer_share * 2 / 24 * est.STATE_BYTES / 2**20
    stepped = replace(probed, top_step_mb=two_state + 640.0 + 90.0, top_step_layers=2)
    assert est.top_slack_mb(stepped) == pytest.approx(90.0)
    for k in (2, 4):
        assert (est.estimate(stepped, work, "top", top_layers=k).peak_mb
                - est.estimate(probed, work, "top", top_layers=k).peak_mb) == pytest.approx(90.0)


def test_laptop_mode_with_a_finish_adds_its_full_steps_and_their_peak():
    work = est.Workload(steps=100, batch_seconds=16.0, train_seconds=600.0, dev_seconds=60.0,
                        evaluations=8, encoded_seconds=600.0)
    top = est.estimate(MEASURED, work, "top", top_layers=2)
    finishing = replace(work, finish_steps=30, finish_evaluations=3,
                        finish_encoded_seconds=300.0)
    both = est.estimate(MEASURED, finishing, "top", top_layers=2)
    full_part = est.estimate(MEASURED, replace(work, steps=30, evaluations=3,
                                               encoded_seconds=300.0), "full")
    assert both.steps == 130 and "then 30 steps of a full fine-tune" in both.detail
    assert both.seconds == pytest.approx(top.seconds + full_part.seconds)
    assert both.peak_mb == pytest.approx(max(top.peak_mb, full_part.peak_mb))
    assert both.peak_mb > top.peak_mb


def test_the_workload_counts_the_finish_and_about_ten_evaluations_in_all():
    durations = [3.0, 4.0, 5.0, 6.0] * 25
    config = build_config(preset="10min", overrides=["model.name=demo-base", "model.mode=top"])
    work = est.workload_for(durations, [4.0] * 5, config)
    per_epoch = steps_per_epoch(durations, config.data.max_batch_seconds)
    assert work.steps == math.ceil(15 * per_epoch)
    assert work.finish_steps == math.ceil(6 * per_epoch)
    assert work.finish_encoded_seconds == sum(durations)
    assert 10 <= work.evaluations + work.finish_evaluations <= 12  # and each stage's last
    assert work.finish_evaluations >= 2


def test_each_mode_is_estimated_with_its_own_defaults_and_the_users_edits():
    from workbench.config import config_for_mode

    full = build_config(preset="10min", overrides=["model.name=demo-base",
                                                   "data.max_batch_seconds=12"])
    top = config_for_mode(full, "top")
    assert top.model.mode == "top" and top.model.finish_epochs == 6
    assert top.optim.epochs == full.optim.epochs / 2
    assert top.data.max_batch_seconds == 12  # the edit carries over
    back = config_for_mode(top, "full")
    assert back == full


def test_the_time_left_in_the_top_stage_counts_the_finish_at_its_step_ratio():
    records = [{"event": "start", "step": 0, "max_steps": 100, "finish_steps": 20,
                "finish_step_ratio": 3.0}]
    for step in range(1, 51):
        records.append({"event": "train", "step": step, "elapsed_s": 1.0 * step})
    assert est.remaining_seconds(records) == pytest.approx(50 * 1.0 + 20 * 3.0)
    # Once the finish runs, its own start record and steps set the pace.
    records += [{"event": "stage_end", "steps": 100},
                {"event": "start", "step": 100, "max_steps": 120, "stage": "finish"}]
    records += [{"event": "train", "step": 100 + s, "elapsed_s": 100.0 + 4.0 * s}
                for s in range(1, 11)]
    assert est.remaining_seconds(records) == pytest.approx(10 * 4.0)
