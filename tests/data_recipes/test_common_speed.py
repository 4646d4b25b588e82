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

import data_recipes.common as common
import workbench.audio as audio
from data_recipes.common import SourceRow, decode_workers, import_rows
from workbench.audio import (
    SAMPLE_RATE,
    AudioDecodeError,
    AudioStream,
    content_hash,
    decode_audio,
    downmix,
    signal_stats,
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


# --- long recordings: decoded as a stream, clips cut and written as it passes -----------------

# (start, end) in seconds: overlapping, out of order, across blocks, open-ended, running past
# the end (of a 12.3 s file), starting past it, empty, shorter than a sample.
SEGMENTS = [(5.0, 9.5), (0.0, 2.0), (1.5, 7.25), (8.0, None), (11.9, 30.0), (13.0, 14.0),
            (3.0, 3.0), (4.0, 2.0), (6.00001, 6.00002), (0.0, None), (2.7183, 11.3)]


def segment_rows(path) -> list[SourceRow]:
    """The SEGMENTS of ``path``, and a row for the whole file."""
    rows = [SourceRow(path, f"segment {i}", speaker="s1", item=f"long.eaf: {i}", start=start,
                      end=end, utterance_id=f"seg_{i}")
            for i, (start, end) in enumerate(SEGMENTS)]
    return rows + [SourceRow(path, "all of it", speaker="s2", item="metadata.csv:2",
                             utterance_id="whole")]


def cut_like_the_whole_array(samples: np.ndarray, row: SourceRow) -> np.ndarray:
    """The clip the import made when it decoded the whole recording first."""
    if not row.is_segment:
        return samples
    end = len(samples) / SAMPLE_RATE if row.end is None else row.end
    return samples[int(row.start * SAMPLE_RATE):int(end * SAMPLE_RATE)]


@pytest.mark.parametrize("rate,channels", [(44_100, 2), (16_000, 1)])
def test_segments_cut_from_a_stream_are_the_clips_of_the_whole_array(tmp_path, monkeypatch, rate,
                                                                     channels):
    path = tmp_path / "long.flac"
    sf.write(path, noise(12.3, rate, channels, 21), rate)
    whole = decode_audio(path).samples
    monkeypatch.setattr(audio, "WHOLE_FILE_FRAMES", 1000)  # read as a stream ...
    monkeypatch.setattr(audio, "BLOCK_FRAMES", 7919)  # ... of many blocks (prime: odd edges)
    rows = segment_rows(path)
    ws = Workspace.at(tmp_path / "ws")
    result = import_rows(rows, ws, progress=False)
    by_id = {u.id: u for u in result.utterances}
    assert [(i.item, i.check) for i in result.issues] == [
        ("long.eaf: 5", "segment_past_end"), ("long.eaf: 6", "empty_segment"),
        ("long.eaf: 7", "empty_segment")]
    for row in rows:
        utterance_id = row.utterance_id
        if utterance_id not in by_id:
            assert not (ws.root / "audio" / f"{utterance_id}.wav").exists()
            continue
        expected = cut_like_the_whole_array(whole, row)
        write_clip(tmp_path / "expected.wav", expected)
        utt = by_id[utterance_id]
        assert (ws.root / utt.audio).read_bytes() == (tmp_path / "expected.wav").read_bytes()
        assert utt.sha1 == content_hash(expected)
        assert utt.duration == round(len(expected) / SAMPLE_RATE, 4)
        stats = signal_stats(expected)
        assert (utt.peak, utt.clipped_fraction) == (stats["peak"], stats["clipped_fraction"])
        assert utt.rms_db == pytest.approx(stats["rms_db"], abs=1e-9)
        assert (utt.orig_sample_rate, utt.orig_channels) == (rate, channels)
    assert by_id["whole"].duration == round(len(whole) / SAMPLE_RATE, 4)


def test_open_ended_segment_ends_where_the_whole_array_would_cut_it(tmp_path, monkeypatch):
    # int(duration * 16000) is one short of the length for many lengths (1001 samples: 1000).
    path = tmp_path / "short_by_one.wav"
    sf.write(path, noise(1001 / SAMPLE_RATE, SAMPLE_RATE, 1, 2), SAMPLE_RATE, subtype="FLOAT")
    monkeypatch.setattr(audio, "WHOLE_FILE_FRAMES", 100)
    monkeypatch.setattr(audio, "BLOCK_FRAMES", 100)
    row = SourceRow(path, "tail", start=0.0, end=None, utterance_id="tail")
    [utt] = import_rows([row], Workspace.at(tmp_path / "ws"), progress=False).utterances
    assert utt.duration == round(int(1001 / SAMPLE_RATE * SAMPLE_RATE) / SAMPLE_RATE, 4)
    assert utt.sha1 == content_hash(decode_audio(path).samples[:1000])


def write_long_wav(path, seconds: float) -> int:
    """A long 16 kHz recording, written in pieces; its length in samples."""
    with sf.SoundFile(path, "w", SAMPLE_RATE, 1, "PCM_16") as out:
        for index in range(int(seconds // 10)):
            out.write(noise(10.0, SAMPLE_RATE, 1, index))
    return int(seconds // 10) * 10 * SAMPLE_RATE


def test_importing_a_long_recording_holds_a_block_not_the_recording(tmp_path, monkeypatch):
    path = tmp_path / "field.wav"
    whole_bytes = 4 * write_long_wav(path, 240)  # 4 minutes as 16 kHz float32: 15.4 MB
    rows = segment_rows(path) + [
        SourceRow(path, f"utterance {i}", item=f"long.eaf: {100 + i}", start=7.0 * i,
                  end=7.0 * i + 6.5, utterance_id=f"utt_{i}") for i in range(34)]
    monkeypatch.setattr(audio, "WHOLE_FILE_FRAMES", 1 << 16)
    monkeypatch.setattr(audio, "BLOCK_FRAMES", 1 << 15)
    tracemalloc.start()
    try:
        result = import_rows(rows, Workspace.at(tmp_path / "ws"), progress=False, workers=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(result.utterances) == len(rows) - 2  # 2 of SEGMENTS have no length
    assert max(u.duration for u in result.utterances) == 240.0  # the whole-file clip
    assert peak < whole_bytes / 6  # about 1.3 MB


def test_a_recording_failing_part_way_leaves_no_clip_and_names_the_file(tmp_path, monkeypatch):
    good = tmp_path / "good.wav"
    sf.write(good, noise(1.0, SAMPLE_RATE, 1, 1), SAMPLE_RATE)
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"stands in for a file that fails after 2 blocks")

    def failing_stream(path):
        if path != broken:
            return common_open_audio(path)

        def blocks():
            yield noise(3.0, SAMPLE_RATE, 1, 3)[:, 0], 0
            yield noise(3.0, SAMPLE_RATE, 1, 4)[:, 0], 0
            raise AudioDecodeError(f"{broken}: decoding stopped at 6.0 s (damaged)")

        return AudioStream(broken, 48_000, 2, False, blocks())

    common_open_audio = common.open_audio
    monkeypatch.setattr(common, "open_audio", failing_stream)
    rows = [SourceRow(broken, "a", start=0.5, end=1.5, utterance_id="b_0"),
            SourceRow(broken, "b", start=2.0, end=5.0, utterance_id="b_1"),
            SourceRow(broken, "c", utterance_id="b_all"),
            SourceRow(good, "d", utterance_id="good")]
    ws = Workspace.at(tmp_path / "ws")
    result = import_rows(rows, ws, progress=False)
    assert [u.id for u in result.utterances] == ["good"]
    assert [i.check for i in result.issues] == ["unreadable_audio"] * 3
    assert all("broken.flac: decoding stopped" in i.detail for i in result.issues)
    assert sorted(p.name for p in (ws.root / "audio").iterdir()) == ["good.wav"]
