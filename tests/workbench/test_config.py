import pytest

from workbench.config import (
    build_config,
    load_config,
    preset_for_minutes,
    resolve_schedule,
    save_config,
    settings_help,
)
from workbench.errors import WorkbenchError


def test_auto_preset_follows_the_amount_of_data():
    assert preset_for_minutes(10) == "10min"
    assert preset_for_minutes(90) == "1h"
    assert preset_for_minutes(900) == "10h"
    assert build_config(train_minutes=12).preset == "10min"


def test_overrides_win_over_the_preset_and_are_typed():
    config = build_config(preset="1h", overrides=["learning_rate=3e-4", "data.max_batch_seconds=60",
                                                  "model.freeze_feature_encoder=false"])
    assert config.optim.learning_rate == pytest.approx(3e-4)
    assert config.data.max_batch_seconds == 60.0
    assert config.model.freeze_feature_encoder is False


@pytest.mark.parametrize("bad", ["nosuchkey=1", "optim.nope=2", "learning_rate=fast", "novalue"])
def test_bad_overrides_are_readable_errors(bad):
    with pytest.raises(WorkbenchError):
        build_config(preset="10min", overrides=[bad])


def test_yaml_round_trip(tmp_path):
    config = build_config(preset="10h", overrides=["model.name=tiny", "run.seed=7"])
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config


def test_ten_minutes_of_data_still_gets_a_real_schedule():
    config = build_config(preset="10min")
    schedule = resolve_schedule(config, steps_per_epoch=6)  # 10 minutes, 80 s batches
    assert schedule.max_steps >= config.optim.min_steps
    assert 0 < schedule.warmup_steps < schedule.max_steps
    assert schedule.eval_every < schedule.max_steps


def test_tiny_model_gets_from_scratch_settings_unless_overridden():
    config = build_config(preset="10min", overrides=["model.name=tiny"])
    assert config.model.freeze_feature_encoder is False
    config = build_config(preset="10min", overrides=["model.name=tiny", "learning_rate=1e-4"])
    assert config.optim.learning_rate == pytest.approx(1e-4)


def test_every_setting_has_help():
    text = settings_help()
    assert "optim.learning_rate" in text and "model.mask_time_prob" in text
