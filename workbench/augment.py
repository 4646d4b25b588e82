"""Waveform augmentation for training: speed, noise, reverberation and band-limiting.

A model trained on few voices, or on synthetic ones, learns their exact sound. Perturbing each
training clip a little (Ko et al. 2015's speed perturbation, additive noise, a room's echo, a
telephone's narrow band) makes it hear the words rather than the recording. Each effect is
applied to a clip independently with probability ``probability``, with its strength drawn from
the ranges below; a clip's draws come from a generator seeded by (run seed, clip, epoch), so a
resumed run perturbs exactly as the uninterrupted one would.

Written here rather than taken from a library: torchaudio's effects and audiomentations would
add a dependency (and, for torchaudio, a build matched to torch) for four short numpy/soxr
functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr

RATE = 16_000
SPEED_RANGE = (0.9, 1.1)  # tempo and pitch together, as Kaldi's speed perturbation
SNR_DB_RANGE = (5.0, 30.0)  # white to brown noise under the speech
RT60_RANGE_S = (0.15, 0.7)  # small room to hall
CUTOFF_RANGE_HZ = (2_500.0, 6_000.0)  # narrow band (telephone) to a cheap microphone
NOISE_COLOURS = (0.0, 1.0, 2.0)  # spectral slope: white, pink, brown


@dataclass(frozen=True)
class Augmenter:
    """Perturbs 16 kHz mono float32 clips; each effect applies with ``probability``."""

    probability: float
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"augmentation probability must be in [0, 1], got "
                             f"{self.probability}.")

    def generator(self, index: int, epoch: int) -> np.random.Generator:
        """The draws for clip ``index`` in ``epoch`` (the same on every rank and resume)."""
        return np.random.default_rng([self.seed, index, epoch])

    def __call__(self, samples: np.ndarray, index: int, epoch: int) -> np.ndarray:
        rng = self.generator(index, epoch)
        applies = rng.random(4) < self.probability
        out = samples.astype(np.float32, copy=False)
        if applies[0]:
            out = change_speed(out, rng.uniform(*SPEED_RANGE))
        if applies[1]:
            out = reverberate(out, rng.uniform(*RT60_RANGE_S), rng)
        if applies[2]:
            out = band_limit(out, rng.uniform(*CUTOFF_RANGE_HZ))
        if applies[3]:
            out = add_noise(out, rng.uniform(*SNR_DB_RANGE), rng.choice(NOISE_COLOURS), rng)
        return out.astype(np.float32, copy=False)


def change_speed(samples: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (shorter and higher for ``factor`` > 1)."""
    return soxr.resample(samples, RATE * factor, RATE).astype(np.float32)


def band_limit(samples: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """Keep frequencies below ``cutoff_hz``: down to twice the cutoff and back, same length."""
    low = soxr.resample(samples, RATE, 2 * cutoff_hz)
    back = soxr.resample(low, 2 * cutoff_hz, RATE).astype(np.float32)
    return _fit_length(back, len(samples))


def reverberate(samples: np.ndarray, rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """Convolve with a synthetic room: a direct path and exponentially decaying echoes."""
    length = max(2, int(rt60_s * RATE))
    decay = np.exp(-6.9 * np.arange(length) / length)  # -60 dB at rt60
    response = rng.standard_normal(length) * decay * 0.3
    response[0] = 1.0
    size = len(samples) + length - 1
    spectrum = np.fft.rfft(samples, size) * np.fft.rfft(response, size)
    wet = np.fft.irfft(spectrum, size)[: len(samples)]
    return _match_rms(wet, samples)


def add_noise(samples: np.ndarray, snr_db: float, colour: float,
              rng: np.random.Generator) -> np.ndarray:
    """Add noise of spectral slope ``1/f**colour`` at ``snr_db`` below the clip's power."""
    noise = coloured_noise(len(samples), colour, rng)
    signal_power = float(np.mean(samples.astype(np.float64) ** 2))
    if signal_power == 0.0:
        return samples
    scale = np.sqrt(signal_power / (10 ** (snr_db / 10)) / max(np.mean(noise**2), 1e-12))
    return (samples + scale * noise).astype(np.float32)


def coloured_noise(length: int, colour: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise whose power falls as ``1/f**colour`` (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    frequencies = np.arange(len(spectrum), dtype=np.float64)
    frequencies[0] = 1.0
    return np.fft.irfft(spectrum / frequencies ** (colour / 2), length)


def _match_rms(samples: np.ndarray, reference: np.ndarray) -> np.ndarray:
    power = float(np.sqrt(np.mean(samples**2)))
    target = float(np.sqrt(np.mean(reference.astype(np.float64) ** 2)))
    return (samples * (target / power if power > 0 else 0.0)).astype(np.float32)


def _fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    if len(samples) >= length:
        return samples[:length]
    return np.pad(samples, (0, length - len(samples)))
