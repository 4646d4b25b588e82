"""Speech detectors (energy, Silero VAD) on signals whose speech regions are known."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.errors import WorkbenchError
from workbench.vad import (
    HIGH_PASS,
    SpeechTrack,
    _high_passed,
    cut_segments,
    detect_segments,
    energy_track,
    hysteresis_regions,
    segment_regions,
    silero_track,
    split_long,
)

SR = 16_000
TRUTH = [(1.0, 2.5), (3.2, 4.0), (5.5, 8.0)]  # seconds of "speech" in a 9 s signal


def voiced(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Speech-like sound: a 140 Hz harmonic complex with a wandering pitch, loudness rising
    and falling four times a second (syllables) but never below half."""
    t = np.arange(int(seconds * SR)) / SR
    pitch = 140 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(pitch) / SR
    tone = sum(np.sin(k * phase) / k for k in range(1, 12))
    syllables = 0.75 + 0.25 * np.sin(2 * np.pi * 4 * t)
    return (0.2 * tone * syllables).astype(np.float32)


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """Noise with power falling as 1/f from 20 Hz (none below, as after a recorder's own
    high-pass)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    spectrum[freqs < 20] = 0
    spectrum[freqs >= 20] /= np.sqrt(freqs[freqs >= 20])
    noise = np.fft.irfft(spectrum, n)
    return (noise / noise.std()).astype(np.float32)


def recording(truth: list[tuple[float, float]], seconds: float, snr_db: float | None,
              seed: int = 0) -> np.ndarray:
    """Speech-like sound at the ``truth`` times; pink noise at ``snr_db`` (None: digital
    silence between them)."""
    rng = np.random.default_rng(seed)
    audio = np.zeros(int(seconds * SR), np.float32)
    for start, end in truth:
        first, last = int(round(start * SR)), int(round(end * SR))
        audio[first:last] = voiced((last - first) / SR, rng)[:last - first]
    if snr_db is not None:
        speech = np.concatenate([audio[int(s * SR):int(e * SR)] for s, e in truth])
        level = np.sqrt(np.mean(speech ** 2) / 10 ** (snr_db / 10))
        audio = audio + level * pink(len(audio), rng)
    return audio


def blocks(audio: np.ndarray, size: int = 7_777) -> list[np.ndarray]:
    return [audio[i:i + size] for i in range(0, len(audio), size)]


def assert_regions(found, truth, tolerance):
    assert len(found) == len(truth), found
    for (start, end), (true_start, true_end) in zip(found, truth, strict=True):
        assert start == pytest.approx(true_start, abs=tolerance), found
        assert end == pytest.approx(true_end, abs=tolerance), found


def test_hysteresis_keeps_runs_that_reach_the_upper_threshold():
    score = np.zeros(100)
    score[10:30] = 0.6  # a region, its edges only above the lower threshold
    score[15:25] = 0.9
    score[40:60] = 0.6  # never reaches the upper threshold: not speech
    score[70:75] = score[77:90] = 0.9  # a 2-frame gap, closed
    score[95:97] = 0.9  # 2 frames alone: too short
    regions = hysteresis_regions(score, 0.8, 0.5, 0.01, min_speech_s=0.05, bridge_s=0.05)
    assert regions == [(0.1, 0.3), (0.7, 0.9)]
    assert hysteresis_regions(np.zeros(10), 0.8, 0.5, 0.01) == []


@pytest.mark.parametrize("snr_db", [None, 20.0, 10.0])
def test_energy_finds_the_speech(snr_db):
    track = energy_track(blocks(recording(TRUTH, 9.0, snr_db)))
    assert track.samples == 9 * SR and track.frame_s == pytest.approx(0.01)
    assert_regions(track.regions(), TRUTH, 0.05 if snr_db else 0.03)


def test_energy_hears_no_speech_in_steady_noise():
    rng = np.random.default_rng(1)
    assert energy_track([0.05 * pink(10 * SR, rng)]).regions() == []
    assert energy_track([np.zeros(SR, np.float32)]).regions() == []


def test_energy_is_the_same_streamed_in_any_blocks():
    audio = recording(TRUTH, 9.0, 20.0)
    whole = energy_track([audio])
    streamed = energy_track(blocks(audio, 1_001))
    assert np.array_equal(whole.score, streamed.score)
    assert np.array_equal(whole.on, streamed.on) and np.array_equal(whole.off, streamed.off)


def test_the_high_pass_streams_exactly_and_takes_out_rumble_not_speech():
    rng = np.random.default_rng(4)
    audio = rng.standard_normal(5_000).astype(np.float32)
    whole = np.concatenate(list(_high_passed([audio])))
    streamed = np.concatenate(list(_high_passed(blocks(audio, 37))))
    assert len(whole) == len(audio) and np.array_equal(whole, streamed)
    padded = np.concatenate([np.zeros(HIGH_PASS), audio, np.zeros(HIGH_PASS)]).astype(float)
    n = 1_234  # the sample less the mean of the HIGH_PASS samples centred on it
    window = padded[HIGH_PASS + n - HIGH_PASS // 2 + 1:HIGH_PASS + n + HIGH_PASS // 2 + 1]
    assert whole[n] == pytest.approx(audio[n] - window.mean(), abs=1e-5)
    t = np.arange(SR) / SR
    for hz, gain in [(20, 0.1), (1_000, 1.0)]:  # -20 dB at 20 Hz, untouched at 1 kHz
        tone = np.sin(2 * np.pi * hz * t)
        out = np.concatenate(list(_high_passed([tone])))[2_000:-2_000]
        assert out.std() / tone[2_000:-2_000].std() == pytest.approx(gain, abs=0.05)
    assert len(np.concatenate(list(_high_passed([audio[:50]])))) == 50


def test_energy_finds_the_speech_under_rumble():
    rng = np.random.default_rng(5)
    audio = recording(TRUTH, 9.0, None)
    rumble = np.cumsum(rng.standard_normal(len(audio)))  # brown noise: 1/f^2, below 100 Hz
    rumble -= np.convolve(rumble, np.ones(1_600) / 1_600, mode="same")  # no drift below 10 Hz
    speech = np.concatenate([audio[int(s * SR):int(e * SR)] for s, e in TRUTH])
    audio = audio + rumble * np.sqrt(np.mean(speech ** 2) / np.mean(rumble ** 2))  # 0 dB
    assert_regions(energy_track([audio.astype(np.float32)]).regions(), TRUTH, 0.05)


def test_energy_follows_a_noise_that_comes_and_goes():
    truth = [(2.0 + 4 * k, 4.5 + 4 * k) for k in range(30)]  # 120 s, noise from 40 to 80 s
    audio = recording(truth, 121.0, None)
    rng = np.random.default_rng(6)
    audio[40 * SR:80 * SR] += 0.1 * pink(40 * SR, rng) * audio[2 * SR:4 * SR].std()  # -20 dB
    assert_regions(energy_track(blocks(audio, 50_000)).regions(), truth, 0.05)


def test_regions_group_into_utterances_by_the_ctc_rules():
    regions = [(1.0, 1.6), (1.7, 2.5), (3.2, 4.0), (7.0, 9.0)]
    segments = segment_regions(regions, 10.0)
    # 0.1 s gap: one utterance; 3.2-4.0 is under 1 s, joined across its 0.7 s gap; margins 0.1
    assert [(s.start, s.end) for s in segments] == [(0.9, 4.1), (6.9, 9.1)]
    assert all(s.text == "" and s.words == [] for s in segments)


def test_a_region_longer_than_the_limit_is_cut_at_its_quietest_moments():
    score = np.full(4500, 0.9, np.float32)  # 45 s at 10 ms frames, no pause at all
    score[1700:1705] = 0.55  # a dip at 17 s and one at 33 s, both still "speech"
    score[3300:3305] = 0.6
    track = SpeechTrack(score, 0.01, 0.8, 0.5, 45 * SR)
    parts = split_long(track.regions(), track, max_s=20.0)
    assert [round(a) for a, _ in parts] == [0, 17, 33]
    assert all(b - a <= 20.0 for a, b in parts) and parts[-1][1] == 45.0
    segments = segment_regions(parts, 45.0)
    assert len(segments) == 3 and all(s.end - s.start <= 20.2 for s in segments)


def test_cut_segments_streams_exactly_the_samples_of_each_segment():
    audio = np.random.default_rng(2).standard_normal(10 * SR).astype(np.float32)
    segments = segment_regions([(0.5, 2.0), (2.6, 4.5), (6.0, 9.99)], 10.0)
    cuts = list(cut_segments(blocks(audio, 3_333), segments))
    assert [s for s, _ in cuts] == segments
    for segment, samples in cuts:
        expected = audio[int(round(segment.start * SR)):int(round(segment.end * SR))]
        assert np.array_equal(samples, expected)


def test_detect_segments_on_a_noisy_recording():
    truth = [(1.0, 3.0), (4.0, 6.5), (8.0, 10.0)]
    segments, samples = detect_segments(blocks(recording(truth, 11.0, 10.0)), "energy")
    assert samples == 11 * SR
    assert_regions([(s.start, s.end) for s in segments],
                   [(a - 0.1, b + 0.1) for a, b in truth], 0.06)
    with pytest.raises(WorkbenchError, match="Unknown speech detector"):
        detect_segments([np.zeros(SR, np.float32)], "loudness")


# --- Silero VAD (the ONNX model inside the silero-vad wheel) ---------------------------------


@pytest.fixture(scope="module")
def speech_clips(demo_corpus):
    """Three real (espeak-ng) clips of the bundled demo corpus."""
    from workbench.audio import load_audio

    return [load_audio(p) for p in sorted((demo_corpus / "clips").iterdir())[:3]]


def speech_recording(clips, snr_db, seed=0):
    """The clips with 1.5 s between them (and around them), pink noise at ``snr_db``;
    truth: where each clip's sound is louder than 40 dB under its peak."""
    from bench.long_audio import speech_span

    rng = np.random.default_rng(seed)
    parts, truth, at = [np.zeros(int(1.5 * SR), np.float32)], [], int(1.5 * SR)
    for clip in clips:
        first, last = speech_span(clip)
        parts += [clip[first:last], np.zeros(int(1.5 * SR), np.float32)]
        truth.append((at / SR, (at + last - first) / SR))
        at += last - first + int(1.5 * SR)
    audio = np.concatenate(parts)
    speech = np.concatenate([audio[int(s * SR):int(e * SR)] for s, e in truth])
    level = np.sqrt(np.mean(speech ** 2) / 10 ** (snr_db / 10))
    return audio + level * pink(len(audio), rng), truth


@pytest.mark.parametrize("snr_db", [30.0, 10.0])
def test_silero_finds_real_speech_in_noise(speech_clips, snr_db):
    audio, truth = speech_recording(speech_clips, snr_db)
    track = silero_track(blocks(audio))
    assert track.frame_s == pytest.approx(0.032) and len(track.score) == -(-len(audio) // 512)
    assert_regions(track.regions(), truth, 0.15)


def test_silero_hears_no_speech_in_noise_or_tones():
    rng = np.random.default_rng(3)
    assert silero_track([0.1 * pink(8 * SR, rng)]).regions() == []
    t = np.arange(5 * SR) / SR
    assert silero_track([0.3 * np.sin(2 * np.pi * 1000 * t).astype(np.float32)]).regions() == []


def test_silero_streamed_equals_the_packages_own_model(speech_clips):
    import torch

    threads = torch.get_num_threads()  # importing silero_vad sets torch to one thread
    try:
        from silero_vad.sequence_vad import SileroVADSequence
    finally:
        torch.set_num_threads(threads)
    from workbench.vad import silero_model_path

    audio, _ = speech_recording(speech_clips, 20.0)
    audio = np.concatenate([audio, audio, audio])  # longer than one 512-frame ONNX call
    reference = SileroVADSequence(str(silero_model_path())).audio_forward(audio)
    assert np.allclose(silero_track(blocks(audio, 5_000)).score, reference, atol=1e-6)


# --- segment_file with a detector: cut, then a second pass over each utterance ---------------


def test_segment_file_with_a_detector_times_words_inside_its_utterances(tmp_path):
    import soundfile as sf

    from tests.workbench.ctc_fixtures import save_tiny_model
    from workbench.recognizer import load_recognizer
    from workbench.segments import segment_file

    truth = [(1.0, 3.0), (4.0, 6.5), (8.0, 10.0)]
    path = tmp_path / "long.wav"
    sf.write(path, recording(truth, 11.0, 20.0), SR)
    recognizer = load_recognizer(save_tiny_model(tmp_path / "m"))
    timed = segment_file(recognizer, path, segmenter="energy", model_name="tiny")
    assert timed.duration == pytest.approx(11.0) and timed.model == "tiny"
    assert_regions([(s.start, s.end) for s in timed.segments],
                   [(a - 0.1, b + 0.1) for a, b in truth], 0.06)
    for segment in timed.segments:
        assert segment.text == " ".join(w.text for w in segment.words)
        assert all(segment.start <= w.start < w.end <= segment.end for w in segment.words)
    assert any(s.words for s in timed.segments)  # the random model writes something
    with pytest.raises(WorkbenchError, match="Unknown segmenter"):
        segment_file(recognizer, path, segmenter="loudness")
