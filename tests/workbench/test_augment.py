"""Waveform augmentation: each effect does what it says, draws are reproducible per epoch."""

import numpy as np
import pytest

from workbench.augment import (
    RATE,
    Augmenter,
    add_noise,
    band_limit,
    change_speed,
    coloured_noise,
    reverberate,
)


def _tone(hz: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _power_near(samples: np.ndarray, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / RATE)
    return float(spectrum[np.abs(freqs - hz) < 50].sum())


def _dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / RATE)[spectrum.argmax()])


def test_faster_speech_is_shorter_and_higher():
    tone = _tone(440)
    fast = change_speed(tone, 1.1)
    assert len(fast) == pytest.approx(len(tone) / 1.1, abs=2)
    assert _dominant_hz(fast) == pytest.approx(484, abs=3)
    assert len(change_speed(tone, 0.9)) == pytest.approx(len(tone) / 0.9, abs=2)


def test_band_limiting_removes_what_lies_above_the_cutoff_and_keeps_the_length():
    mix = _tone(500) + _tone(5000)
    narrow = band_limit(mix, 3000)
    assert len(narrow) == len(mix) and narrow.dtype == np.float32
    assert _power_near(narrow, 5000) < 1e-4 * _power_near(mix, 5000)
    assert _power_near(narrow, 500) == pytest.approx(_power_near(mix, 500), rel=0.05)


def test_reverberation_smears_in_time_and_keeps_length_and_loudness():
    click = np.zeros(RATE, dtype=np.float32)
    click[100] = 1.0
    wet = reverberate(click, 0.5, np.random.default_rng(0))
    assert len(wet) == len(click)
    assert np.sqrt(np.mean(wet**2)) == pytest.approx(np.sqrt(np.mean(click**2)), rel=1e-3)
    tail = wet[100 + RATE // 10: 100 + RATE // 5]  # 100-200 ms after the click
    assert np.abs(tail).max() > 0.0
    assert np.count_nonzero(np.abs(wet) > 1e-4) > RATE // 10


@pytest.mark.parametrize("snr_db", [5.0, 20.0])
def test_noise_is_added_at_the_asked_signal_to_noise_ratio(snr_db):
    tone = _tone(300)
    noisy = add_noise(tone, snr_db, 1.0, np.random.default_rng(1))
    noise = noisy - tone
    measured = 10 * np.log10(np.mean(tone**2) / np.mean(noise**2))
    assert measured == pytest.approx(snr_db, abs=0.1)


def test_silence_gets_no_noise():
    silence = np.zeros(800, dtype=np.float32)
    assert not add_noise(silence, 10.0, 0.0, np.random.default_rng(0)).any()


def test_brown_noise_is_darker_than_white():
    rng = np.random.default_rng(2)
    white, brown = coloured_noise(RATE, 0.0, rng), coloured_noise(RATE, 2.0, rng)

    def low_share(x):
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        return spectrum[: len(spectrum) // 8].sum() / spectrum.sum()

    assert low_share(brown) > 0.9 > 0.3 > low_share(white)


def test_draws_repeat_for_the_same_clip_and_epoch_and_change_between_epochs():
    augment = Augmenter(1.0, seed=3)
    tone = _tone(200, 0.5)
    first = augment(tone, index=7, epoch=2)
    assert np.array_equal(first, augment(tone, index=7, epoch=2))
    assert not np.array_equal(first[:1000], augment(tone, index=7, epoch=3)[:1000])
    assert not np.array_equal(first[:1000], Augmenter(1.0, seed=4)(tone, 7, 2)[:1000])


def test_probability_zero_leaves_the_audio_alone_and_one_changes_it():
    tone = _tone(200, 0.5)
    assert np.array_equal(Augmenter(0.0)(tone, 0, 0), tone)
    assert not np.array_equal(Augmenter(1.0)(tone, 0, 0)[:1000], tone[:1000])


def test_probability_is_checked():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Augmenter(1.5)


def test_a_mixture_of_probabilities_perturbs_about_that_share_of_clips():
    augment = Augmenter(0.3)
    tone = _tone(200, 0.2)
    clean = sum(np.array_equal(augment(tone, i, 0), tone) for i in range(400))
    assert clean / 400 == pytest.approx(0.7**4, abs=0.06)
