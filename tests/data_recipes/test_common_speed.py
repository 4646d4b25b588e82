"""The fast import path keeps every result of the plain one.

Parallel decoding, the one-call WAV writer, the channel downmix and block-wise decoding of long
recordings are each checked against what they replace (soundfile.write, numpy's mean, one
whole-file read, one worker).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import soundfile as sf
import soxr

import workbench.audio as audio
from data_recipes.common import SourceRow, decode_workers, import_rows
from workbench.audio import (
    SAMPLE_RATE,
    AudioDecodeError,
    content_hash,
    decode_audio,
    downmix,
    wav_header,
    write_clip,
)
from workbench.workspace import Workspace

# (file name, sample rate, channels): every kind of source the mixed benchmark corpus holds.
SOURCES = [("a.wav", 44_100, 2), ("b.flac", 8_000, 1), ("c.mp3", 48_000, 2),
           ("d.wav", 22_050, 1), ("e.flac", 48_000, 2), ("f.wav", 16_000, 1)]


def noise(seconds: float, rate: int, channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal((int(seconds * rate), channels))).astype(np.float32)


def write_sources(folder) -> list[SourceRow]:
    """Mixed files, a recording cut into segments, a missing and an unreadable file."""
    folder.mkdir()
    rows = []
    for index, (name, rate, channels) in enumerate(SOURCES):
        sf.write(folder / name, noise(0.5 + 0.3 * index, rate, channels, index), rate)
        rows.append(SourceRow(folder / name, f"clip {index}", speaker=f"s{index % 3}",
                              item=f"metadata.csv:{index + 2}", line=index + 2))
    sf.write(folder / "long.flac", noise(6.0, 44_100, 2, 99), 44_100)
    for start in range(3):
        rows.append(SourceRow(folder / "long.flac", f"segment {start}", speaker="s9",
                              item=f"long.eaf: {start}", start=start * 2.0,
                              end=start * 2.0 + 1.5, utterance_id=f"long_{start}"))
    (folder / "broken.wav").write_bytes(b"RIFF not really audio")
    rows.append(SourceRow(folder / "broken.wav", "broken", item="metadata.csv:20"))
    rows.append(SourceRow(folder / "missing.wav", "missing", item="metadata.csv:21"))
    return rows


def workspace_bytes(ws: Workspace) -> dict[str, bytes]:
    """Every file the import wrote (manifests, import report, cached clips), by path."""
    return {str(p.relative_to(ws.root)): p.read_bytes()
            for p in sorted(ws.root.rglob("*")) if p.is_file()}


def test_parallel_import_writes_exactly_what_one_worker_writes(tmp_path):
    rows = write_sources(tmp_path / "src")
    written = {}
    for workers in (1, 3):
        ws = Workspace.at(tmp_path / f"ws{workers}")
        result = import_rows(rows, ws, id_root=tmp_path / "src", progress=False,
                             workers=workers)
        assert len(result.utterances) == len(SOURCES) + 3
        assert sorted(i.check for i in result.issues) == ["row_without_audio", "unreadable_audio"]
        written[workers] = workspace_bytes(ws)
    assert written[1] == written[3]
    assert sum(name.startswith("audio/") for name in written[1]) == len(SOURCES) + 3


def test_decode_workers_follow_the_usable_cpus():
    assert 1 <= decode_workers() <= 8


def test_cached_clip_has_the_bytes_soundfile_writes(tmp_path):
    samples = noise(1.3, SAMPLE_RATE, 1, 5)[:, 0]
    samples[:4] = [1.0, -1.0, 1.7, -3.0]  # full scale and beyond: clipped alike
    sf.write(tmp_path / "ref.wav", np.clip(samples, -1, 1), SAMPLE_RATE, subtype="PCM_16")
    write_clip(tmp_path / "fast.wav", samples)
    assert (tmp_path / "fast.wav").read_bytes() == (tmp_path / "ref.wav").read_bytes()
    assert content_hash(decode_audio(tmp_path / "fast.wav").samples) == content_hash(samples)


def test_empty_clip_is_a_valid_wav(tmp_path):
    write_clip(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32))
    assert sf.info(tmp_path / "empty.wav").frames == 0


def test_clip_too_long_for_a_wav_file_is_refused_with_advice():
    with pytest.raises(AudioDecodeError, match="too long for a WAV file; cut the recording"):
        wav_header(2**31)


@pytest.mark.parametrize("channels", [2, 3, 6])
def test_downmix_equals_the_channel_mean(channels):
    data = noise(0.7, 44_100, channels, channels)
    np.testing.assert_allclose(downmix(data), data.mean(axis=1), rtol=0, atol=1e-7)
    if channels == 2:
        assert np.array_equal(downmix(data), data.mean(axis=1))


@pytest.mark.parametrize("name,rate,channels", [("long.flac", 48_000, 2), ("long.wav", 16_000, 1),
                                                ("long.wav", 22_050, 3)])
def test_long_recording_decoded_in_blocks_equals_one_read(tmp_path, monkeypatch, name, rate,
                                                          channels):
    data = noise(4.0, rate, channels, 7)
    subtype = "FLOAT" if name.endswith(".wav") else None
    if subtype:
        data[100, 0] = np.nan  # counted and zeroed the same way block by block
    sf.write(tmp_path / name, data, rate, subtype=subtype)
    whole = decode_audio(tmp_path / name)
    monkeypatch.setattr(audio, "WHOLE_FILE_FRAMES", 1000)
    monkeypatch.setattr(audio, "BLOCK_FRAMES", 4096)
    blocks = decode_audio(tmp_path / name)
    assert np.array_equal(whole.samples, blocks.samples)
    assert whole.nan_count == blocks.nan_count == (1 if subtype else 0)
    assert (blocks.orig_sample_rate, blocks.orig_channels) == (rate, channels)


def test_long_recording_never_held_whole_at_its_source_rate(tmp_path, monkeypatch):
    rate, seconds = 48_000, 40
    sf.write(tmp_path / "field.flac", noise(seconds, rate, 2, 3), rate)
    source_bytes = rate * seconds * 2 * 4  # float32 stereo at 48 kHz: 15 MB
    output_bytes = SAMPLE_RATE * seconds * 4  # the 16 kHz mono result: 2.6 MB
    monkeypatch.setattr(audio, "WHOLE_FILE_FRAMES", 1 << 16)
    monkeypatch.setattr(audio, "BLOCK_FRAMES", 1 << 16)
    tracemalloc.start()
    try:
        decoded = decode_audio(tmp_path / "field.flac")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(decoded.samples) == pytest.approx(SAMPLE_RATE * seconds, abs=2)
    assert peak < 2.5 * output_bytes < source_bytes / 2


def test_streaming_resampler_matches_one_call():
    # What block-wise decoding relies on: soxr streams give the samples of one call.
    x = noise(3.0, 44_100, 1, 11)[:, 0]
    stream = soxr.ResampleStream(44_100, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
    parts = [stream.resample_chunk(x[i:i + 5000]) for i in range(0, len(x), 5000)]
    parts.append(stream.resample_chunk(np.empty(0, dtype=np.float32), last=True))
    assert np.array_equal(np.concatenate(parts), soxr.resample(x, 44_100, SAMPLE_RATE, "HQ"))
