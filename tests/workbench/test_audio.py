import subprocess
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

import workbench.audio as audio
from workbench.audio import (
    SAMPLE_RATE,
    AudioDecodeError,
    content_hash,
    ctc_output_frames,
    decode_audio,
    open_audio,
    signal_stats,
)


def tone(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.3 * np.sin(2 * np.pi * 220 * t).astype(np.float32)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


@pytest.mark.parametrize("rate,channels", [(44_100, 2), (8_000, 1), (48_000, 1), (22_050, 2)])
def test_any_rate_and_channel_count_becomes_16k_mono(tmp_path, rate, channels):
    path = tmp_path / "clip.wav"
    sf.write(path, tone(1.5, rate, channels), rate)
    decoded = decode_audio(path)
    assert decoded.samples.ndim == 1 and decoded.samples.dtype == np.float32
    assert abs(decoded.duration - 1.5) < 0.01
    assert (decoded.orig_sample_rate, decoded.orig_channels) == (rate, channels)
    assert 0.25 < np.abs(decoded.samples).max() < 0.35


def test_mp3_is_decoded(tmp_path):
    path = tmp_path / "clip.mp3"
    sf.write(path, tone(1.0, 44_100), 44_100, format="MP3")
    decoded = decode_audio(path)
    assert abs(decoded.duration - 1.0) < 0.1
    assert decoded.orig_sample_rate == 44_100


@pytest.mark.needs_tool("ffmpeg")  # skipped without it on a dev machine, failed in CI
def test_m4a_goes_through_ffmpeg(tmp_path):
    wav, m4a = tmp_path / "clip.wav", tmp_path / "clip.m4a"
    sf.write(wav, tone(1.0, 44_100, 2), 44_100)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "aac", str(m4a)],
                   check=True)
    decoded = decode_audio(m4a)
    assert abs(decoded.duration - 1.0) < 0.1
    assert decoded.orig_channels == 2


def test_zero_byte_file_is_refused_with_its_name(tmp_path):
    path = tmp_path / "empty.wav"
    path.touch()
    with pytest.raises(AudioDecodeError, match="empty.wav.*empty"):
        decode_audio(path)


def test_text_named_wav_is_refused(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio at all\n" * 20)
    with pytest.raises(AudioDecodeError, match="notes.wav"):
        decode_audio(path)


def test_truncated_wav_is_flagged(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, tone(2.0, SAMPLE_RATE), SAMPLE_RATE, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert decode_audio(path).truncated
    sf.write(path, tone(2.0, SAMPLE_RATE), SAMPLE_RATE, subtype="PCM_16")
    assert not decode_audio(path).truncated


def test_nan_samples_are_counted_and_zeroed(tmp_path):
    samples = tone(1.0, SAMPLE_RATE)
    samples[100:110] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, samples, SAMPLE_RATE, subtype="FLOAT")
    decoded = decode_audio(path)
    assert decoded.nan_count == 10
    assert np.isfinite(decoded.samples).all()


def test_signal_stats_see_silence_and_clipping():
    silent = signal_stats(np.zeros(16000, dtype=np.float32))
    assert silent["peak"] == 0.0 and silent["rms_db"] <= -100
    clipped = signal_stats(np.clip(tone(1.0, SAMPLE_RATE) * 10, -1, 1))
    assert clipped["clipped_fraction"] > 0.5


def test_ctc_frames_are_about_50_per_second():
    assert ctc_output_frames(SAMPLE_RATE) == 49
    assert ctc_output_frames(10 * SAMPLE_RATE) == 499
    assert ctc_output_frames(100) == 0


def test_content_hash_ignores_file_format(tmp_path):
    samples = (tone(1.0, SAMPLE_RATE) * 32767).astype(np.int16)  # the same 16-bit samples
    sf.write(tmp_path / "a.wav", samples, SAMPLE_RATE, subtype="PCM_16")
    sf.write(tmp_path / "b.flac", samples, SAMPLE_RATE, subtype="PCM_16")
    a, b = (decode_audio(tmp_path / n).samples for n in ("a.wav", "b.flac"))
    assert content_hash(a) == content_hash(b)


# --- ffmpeg: streamed, and confined to the file it is given -----------------------------------


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, timeout=120)


def ffmpeg_f32(path) -> np.ndarray:
    """What an unrestricted ffmpeg makes of ``path`` at 16 kHz mono, all at once."""
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-ac", "1",
               "-rematrix_maxval", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "-"]
    return np.frombuffer(subprocess.run(command, capture_output=True, timeout=120).stdout, "<f4")


@pytest.mark.needs_tool("ffmpeg")
def test_ffmpeg_output_is_read_in_blocks_and_never_held_whole(tmp_path, monkeypatch):
    m4a = tmp_path / "long.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=330:duration=180:sample_rate=44100", "-ac", "2",
           "-c:a", "aac", str(m4a))
    expected = ffmpeg_f32(m4a)
    monkeypatch.setattr(audio, "FFMPEG_BLOCK_BYTES", 1 << 16)
    tracemalloc.start()
    try:
        with open_audio(m4a) as stream:
            count, total = 0, 0.0
            for block in stream:
                count += len(block)
                total += float(np.sum(block, dtype=np.float64))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (stream.orig_sample_rate, stream.orig_channels) == (44_100, 2)
    assert count == len(expected) > 170 * SAMPLE_RATE
    assert total == pytest.approx(float(np.sum(expected, dtype=np.float64)), abs=1e-6)
    assert peak < expected.nbytes / 10  # 3 minutes at 16 kHz as float32: 11.5 MB
    # Joined again, the blocks are exactly ffmpeg's samples (no sample split between reads).
    monkeypatch.setattr(audio, "FFMPEG_BLOCK_BYTES", 4 * 1000 + 2)
    assert np.array_equal(decode_audio(m4a).samples, expected)


@pytest.mark.needs_tool("ffmpeg")
@pytest.mark.parametrize("name,args,rate", [
    ("moov_at_start.m4a", ["-c:a", "aac", "-movflags", "+faststart"], 44_100),
    ("moov_at_end.m4a", ["-c:a", "aac", "-movflags", "-faststart"], 44_100),  # phone-style
    ("voice.webm", ["-c:a", "libopus"], 48_000),
    ("voice.wma", ["-c:a", "wmav2"], 44_100),
])
def test_single_file_containers_still_decode(tmp_path, name, args, rate):
    wav = tmp_path / "source.wav"
    sf.write(wav, tone(2.0, 44_100, 2), 44_100)
    ffmpeg("-i", str(wav), *args, str(tmp_path / name))
    decoded = decode_audio(tmp_path / name)
    assert decoded.duration == pytest.approx(2.0, abs=0.1)
    assert (decoded.orig_sample_rate, decoded.orig_channels) == (rate, 2)
    # The level libsndfile gives the wav (channel mean), not ffmpeg's default 3 dB louder mix.
    middle = decoded.samples[SAMPLE_RATE // 4:-SAMPLE_RATE // 4]  # past codec start/end effects
    assert np.sqrt(np.mean(np.square(middle))) == pytest.approx(0.3 / np.sqrt(2), rel=0.05)


@pytest.mark.needs_tool("ffmpeg")
def test_ffmpeg_downmix_is_the_channel_mean_as_for_libsndfile_files(tmp_path):
    rng = np.random.default_rng(4)
    stereo = (0.6 * rng.standard_normal((SAMPLE_RATE, 2))).clip(-1, 1).astype(np.float32)
    stereo[:, 1] = stereo[:, 0]  # loud and correlated: a 0.707 (L + R) mix would pass 1.0
    sf.write(tmp_path / "loud.wav", stereo, SAMPLE_RATE, subtype="FLOAT")
    ffmpeg("-i", str(tmp_path / "loud.wav"), "-c:a", "pcm_f32le", "-f", "caf",
           str(tmp_path / "loud.caf"))  # a container libsndfile reads too, given to ffmpeg below
    via_ffmpeg = audio._open_ffmpeg(tmp_path / "loud.caf", RuntimeError("test"))
    samples = np.concatenate(list(via_ffmpeg))
    np.testing.assert_allclose(samples, decode_audio(tmp_path / "loud.wav").samples, atol=1e-6)
    assert np.abs(samples).max() <= 1.0


def crafted_upload(tmp_path, kind: str):
    """uploads/recording.m4a pointing at a real recording in another folder."""
    other = tmp_path / "elsewhere"
    other.mkdir()
    sf.write(other / "private.wav", tone(2.0, 44_100), 44_100)
    ffmpeg("-i", str(other / "private.wav"), str(other / "private.mp3"))
    (tmp_path / "uploads").mkdir()
    upload = tmp_path / "uploads" / "recording.m4a"
    if kind == "ffconcat":
        upload.write_text("ffconcat version 1.0\nfile ../elsewhere/private.wav\n")
    else:
        target = (f"file://{other / 'private.mp3'}" if kind == "hls_url"
                  else "../elsewhere/private.mp3")
        upload.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n"
                          f"{target}\n#EXT-X-ENDLIST\n")
    return upload


@pytest.mark.needs_tool("ffmpeg")
@pytest.mark.parametrize("kind", ["hls_url", "hls_relative", "ffconcat"])
def test_playlists_and_file_lists_are_refused(tmp_path, kind):
    upload = crafted_upload(tmp_path, kind)
    if kind != "ffconcat":  # the attack is real: an unrestricted ffmpeg plays the other file
        assert len(ffmpeg_f32(upload)) > SAMPLE_RATE
    with pytest.raises(AudioDecodeError, match=r"recording\.m4a: refused: .*'(hls|concat)'"):
        decode_audio(upload)
    assert audio._ffprobe_format(upload) == (0, 0)  # ffprobe does not open it either
