"""Inference on tiny random wav2vec2 CTC models: loading, batching, long audio, files."""

from __future__ import annotations

import json
import shutil
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
import torch

import workbench.audio as audio
import workbench.transcribe as transcribe
from tests.workbench.ctc_fixtures import noise, save_tiny_model
from workbench.audio import (
    SAMPLE_RATE,
    AudioDecodeError,
    AudioStream,
    ctc_output_frames,
    load_audio,
    open_audio,
    write_clip,
)
from workbench.errors import WorkbenchError
from workbench.transcribe import (
    clip_logits,
    load_recognizer,
    long_logits,
    plan_batches,
    plan_chunks,
    stitch_logits,
    stream_ids,
    stream_windows,
    transcribe_arrays,
    transcribe_files,
    transcribe_long,
    transcribe_stream,
)

HOP = 320


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread: on a busy shared machine two spin against each other (20x
    slower); the results are the same."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def recognizer(model_dir):
    return load_recognizer(model_dir, device="cpu")


@pytest.fixture(scope="module")
def group_recognizer(tmp_path_factory):
    directory = save_tiny_model(tmp_path_factory.mktemp("tiny-group") / "model", norm="group")
    return load_recognizer(directory, device="cpu")


def clips() -> list[np.ndarray]:
    """Clips of varied length, one of them too short for a single output frame."""
    seconds = [1.0, 2.3, 0.7, 1.55, 0.01, 3.0, 1.0]
    return [noise(s, seed) for seed, s in enumerate(seconds)]


# ---------------------------------------------------------------------------------------------
# Loading


def test_loads_model_dir_and_run_dir(model_dir, tmp_path):
    recognizer = load_recognizer(model_dir, device="cpu")
    assert not recognizer.model.training
    assert recognizer.pads_safely and recognizer.hop == HOP
    run = tmp_path / "runs" / "20240101-120000"
    shutil.copytree(model_dir, run / "model")
    (run / "config.yaml").write_text("model: tiny\n")
    assert load_recognizer(run, device="cpu").model_dir == run / "model"


def test_load_errors_are_actionable(model_dir, tmp_path):
    with pytest.raises(WorkbenchError, match="not a folder"):
        load_recognizer(tmp_path / "nowhere")
    unfinished = tmp_path / "run"
    unfinished.mkdir()
    (unfinished / "config.yaml").write_text("model: tiny\n")
    with pytest.raises(WorkbenchError, match="The run run has no model yet: it is saved at the "
                                             "run.s first dev evaluation"):
        load_recognizer(unfinished)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    shutil.copy(model_dir / "config.json", pickled)
    (pickled / "pytorch_model.bin").write_bytes(b"\0")
    with pytest.raises(WorkbenchError, match=r"no model.safetensors.*safe_serialization"):
        load_recognizer(pickled)
    not_ctc = tmp_path / "bert"
    shutil.copytree(model_dir, not_ctc)
    (not_ctc / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(WorkbenchError, match="not a CTC speech recogniser"):
        load_recognizer(not_ctc)


# ---------------------------------------------------------------------------------------------
# Batching


def test_batched_equals_one_by_one(recognizer):
    arrays = clips()
    one_by_one = [transcribe_arrays(recognizer, [a])[0] for a in arrays]
    assert transcribe_arrays(recognizer, arrays) == one_by_one
    assert transcribe_arrays(recognizer, arrays, batch_seconds=5.0) == one_by_one
    assert one_by_one[4] == ""  # 160 samples: shorter than the 400-sample receptive field
    assert len(set(one_by_one)) > 3  # the random model does not say the same thing everywhere
    batched = clip_logits(recognizer, arrays)
    for array, logits in zip(arrays, batched, strict=True):
        alone = clip_logits(recognizer, [array])[0]
        assert logits.shape == alone.shape == (ctc_output_frames(len(array)), 15)
        np.testing.assert_allclose(logits, alone, atol=1e-4)


def test_inference_on_a_cpu_runs_without_onednn_which_is_restored_after(recognizer):
    """oneDNN keeps a kernel per batch shape, and clips come in many lengths."""
    seen = []
    layer = recognizer.model.base_model.encoder.layers[0]
    handle = layer.register_forward_pre_hook(
        lambda *_: seen.append(torch._C._get_mkldnn_enabled()))
    before = torch._C._get_mkldnn_enabled()
    try:
        clip_logits(recognizer, clips()[:3])
    finally:
        handle.remove()
    assert seen and not any(seen) and torch._C._get_mkldnn_enabled() == before


def test_group_norm_model_batches_equal_lengths_only(group_recognizer):
    assert not group_recognizer.pads_safely
    arrays = clips()
    one_by_one = [transcribe_arrays(group_recognizer, [a])[0] for a in arrays]
    assert transcribe_arrays(group_recognizer, arrays) == one_by_one
    for array, logits in zip(arrays, clip_logits(group_recognizer, arrays), strict=True):
        np.testing.assert_allclose(logits, clip_logits(group_recognizer, [array])[0], atol=1e-4)


def test_plan_batches_covers_every_clip_once():
    lengths = [16_000, 48_000, 0, 16_000, 32_000, 16_000, 200_000]
    batches = plan_batches(lengths, 64_000, pad=True)
    flat = sorted(i for batch in batches for i in batch)
    assert flat == [0, 1, 3, 4, 5, 6]  # the empty clip is not run
    assert batches[0] == [6]  # longest first; too long for the budget, so alone
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 64_000
    for batch in plan_batches(lengths, 64_000, pad=False):
        assert len({lengths[i] for i in batch}) == 1


# ---------------------------------------------------------------------------------------------
# Long recordings


@pytest.mark.parametrize("num_samples", [400, 6_399, 6_400, 6_401, 10_000, 10_240, 10_241,
                                         16_000, 33_333, 100_000, 160_320])
@pytest.mark.parametrize("stride", [(640, 640), (1_280, 640), (320, 320), (0, 640)])
def test_chunk_plan_tiles_the_full_length_frames(num_samples, stride):
    chunks = plan_chunks(num_samples, 6_400, stride, HOP)
    assert chunks[0].start == 0 and chunks[0].first_frame == 0
    assert chunks[-1].end == num_samples
    assert chunks[-1].last_frame == ctc_output_frames(num_samples)
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert before.last_frame == after.first_frame  # no gap, no frame twice
        assert after.start - before.start == 6_400 - sum(stride)
        assert after.first_frame == (after.start + stride[0]) // HOP
    for chunk in chunks:
        assert chunk.start % HOP == 0
        window_frames = ctc_output_frames(chunk.end - chunk.start)
        assert 0 <= chunk.keep.start <= chunk.keep.stop <= window_frames


def local_logits(samples: np.ndarray) -> np.ndarray:
    """A 'model' whose frame i sees only samples [320 i, 320 i + 400), like the conv encoder."""
    frames = ctc_output_frames(len(samples))
    windows = np.stack([samples[i * HOP : i * HOP + 400] for i in range(frames)])
    return np.stack([windows.mean(1), windows.std(1), windows.max(1), windows[:, 0]], axis=1)


@pytest.mark.parametrize("num_samples", [6_400, 20_000, 44_480, 100_001])
def test_stitching_a_local_model_reproduces_the_whole_recording(num_samples):
    samples = noise(num_samples / SAMPLE_RATE, seed=num_samples)
    chunks = plan_chunks(len(samples), 6_400, (1_280, 640), HOP)
    stitched = stitch_logits([local_logits(samples[c.start : c.end]) for c in chunks], chunks)
    np.testing.assert_array_equal(stitched, local_logits(samples))


def test_right_context_shorter_than_receptive_field_is_refused():
    with pytest.raises(WorkbenchError, match="too short"):
        plan_chunks(20_000, 6_400, (640, 0), HOP)
    with pytest.raises(WorkbenchError, match="longer than its left and right context"):
        plan_chunks(20_000, 6_400, (3_200, 3_200), HOP)
    with pytest.raises(WorkbenchError, match="multiples of 320"):
        plan_chunks(20_000, 6_400, (100, 640), HOP)


def test_long_logits_have_the_full_recording_frame_count(recognizer):
    samples = noise(7.3, seed=9)
    stitched = long_logits(recognizer, samples, chunk_s=2.0, stride_s=(0.4, 0.2))
    with torch.inference_mode():
        inputs = recognizer.feature_extractor(samples, sampling_rate=SAMPLE_RATE,
                                              return_tensors="pt")
        full = recognizer.model(**inputs).logits[0]
    assert stitched.shape == tuple(full.shape)


def test_long_audio_matches_the_transformers_chunked_pipeline(recognizer, model_dir):
    from transformers import pipeline

    samples = noise(7.3, seed=9)
    asr = pipeline("automatic-speech-recognition", model=str(model_dir), device="cpu")
    expected = asr({"raw": samples, "sampling_rate": SAMPLE_RATE}, chunk_length_s=2.0,
                   stride_length_s=(0.4, 0.2))["text"]
    assert transcribe_long(recognizer, samples, 2.0, (0.4, 0.2)) == expected
    # transcribe_arrays switches to windows by itself for clips longer than chunk_s
    assert transcribe_arrays(recognizer, [samples], chunk_s=2.0, stride_s=(0.4, 0.2)) == [expected]


# ---------------------------------------------------------------------------------------------
# Files


def test_files_keep_going_past_an_unreadable_one(recognizer, tmp_path):
    good = [tmp_path / "one.wav", tmp_path / "two.flac"]
    write_clip(good[0], noise(1.2, seed=1))
    write_clip(good[1], noise(0.8, seed=2))  # written as WAV bytes; soundfile reads it anyway
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio")
    missing = tmp_path / "missing.wav"
    paths = [good[0], broken, good[1], missing]
    results = transcribe_files(paths, recognizer, progress=False)
    assert [r.path for r in results] == paths
    assert results[1].error and "broken.wav" in results[1].error
    assert results[3].error and "missing.wav" in results[3].error
    assert results[1].text == "" and results[1].duration == 0.0
    assert json.loads(json.dumps(results[1].to_dict()))["path"] == str(broken)
    for result, path in zip((results[0], results[2]), good, strict=True):
        assert result.ok
        assert result.duration == pytest.approx(len(load_audio(path)) / SAMPLE_RATE)
        assert result.text == transcribe_arrays(recognizer, [load_audio(path)])[0]


def test_files_match_the_transformers_pipeline(model_dir, tmp_path):
    from transformers import pipeline

    clip = tmp_path / "clip.wav"
    write_clip(clip, noise(2.5, seed=5))
    asr = pipeline("automatic-speech-recognition", model=str(model_dir), device="cpu")
    expected = asr({"raw": load_audio(clip), "sampling_rate": SAMPLE_RATE})["text"]
    [result] = transcribe_files([clip], model_dir, progress=False)
    assert result.ok and result.text == expected and expected


def test_data2vec_audio_is_not_padded(tmp_path):
    """Its stacked positional convs leak padding into real frames, so it runs unpadded."""
    from transformers import Data2VecAudioConfig, Data2VecAudioForCTC

    from workbench.transcribe import Recognizer

    config = Data2VecAudioConfig(
        vocab_size=15, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, conv_dim=(32,) * 7, num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, conv_pos_kernel_size=5, pad_token_id=0,
    )
    torch.manual_seed(0)
    model = Data2VecAudioForCTC(config).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(20.0)
    processor = load_recognizer(save_tiny_model(tmp_path / "m"), device="cpu").processor
    recognizer = Recognizer(model, processor, torch.device("cpu"))
    assert not recognizer.pads_safely
    arrays = clips()
    one_by_one = [transcribe_arrays(recognizer, [a])[0] for a in arrays]
    assert transcribe_arrays(recognizer, arrays) == one_by_one


# ---------------------------------------------------------------------------------------------
# Long files, streamed


def blocks_of(samples: np.ndarray, size: int) -> list[np.ndarray]:
    return [samples[i : i + size] for i in range(0, len(samples), size)]


def exact_noise(num_samples: int, seed: int) -> np.ndarray:
    """noise() of exactly ``num_samples`` (seconds * 16000 can round one sample short)."""
    return noise(num_samples / SAMPLE_RATE + 0.01, seed)[:num_samples]


@pytest.mark.parametrize("num_samples", [0, 399, 6_399, 6_400, 6_401, 10_880, 10_881, 27_200,
                                         33_333, 100_001])
@pytest.mark.parametrize("block", [1_000, 6_400, 50_000])
def test_streamed_windows_are_the_plan_of_the_whole_length(num_samples, block):
    samples = exact_noise(num_samples, seed=1)
    windows = list(stream_windows(blocks_of(samples, block), 6_400, (1_280, 640), HOP))
    assert [chunk for chunk, _ in windows] == plan_chunks(num_samples, 6_400, (1_280, 640), HOP)
    for chunk, window in windows:
        assert np.array_equal(window, samples[chunk.start : chunk.end])


# Lengths around the last window's edge: 2 s windows with (0.4, 0.2) s context step 22,400
# samples, so 3 * 22,400 + 32,000 = 99,200 samples end exactly on a full window.
@pytest.mark.parametrize("num_samples", [32_001, 99_199, 99_200, 99_201, 116_777])
def test_streamed_transcription_equals_transcribe_long(recognizer, group_recognizer, num_samples):
    samples = exact_noise(num_samples, seed=num_samples)
    for model in (recognizer, group_recognizer):
        for batch_seconds in (20.0, 5.0):  # one window per batch, and several
            expected = long_logits(model, samples, 2.0, (0.4, 0.2), batch_seconds=batch_seconds)
            ids, total = stream_ids(model, blocks_of(samples, 7_919), 2.0, (0.4, 0.2),
                                    batch_seconds=batch_seconds)
            assert total == num_samples
            assert np.array_equal(ids, expected.argmax(axis=-1))
            text, _ = transcribe_stream(model, blocks_of(samples, 7_919), 2.0, (0.4, 0.2),
                                        batch_seconds=batch_seconds)
            assert text == transcribe_long(model, samples, 2.0, (0.4, 0.2),
                                           batch_seconds=batch_seconds)
    assert len(set(text)) > 3  # the random model says varied things


def test_long_file_is_streamed_with_the_text_of_the_whole_array(recognizer, tmp_path,
                                                                monkeypatch):
    path = tmp_path / "field.flac"
    rng = np.random.default_rng(3)
    sf.write(path, (0.2 * rng.standard_normal((int(21.3 * 44_100), 2))).astype(np.float32),
             44_100)
    short = tmp_path / "short.wav"
    write_clip(short, noise(1.5, seed=4))
    monkeypatch.setattr(audio, "WHOLE_FILE_FRAMES", 10_000)
    monkeypatch.setattr(audio, "BLOCK_FRAMES", 22_050)
    results = transcribe_files([short, path, short], recognizer, progress=False, chunk_s=2.0,
                               stride_s=(0.4, 0.2))
    whole = load_audio(path)
    assert results[1].ok and results[1].duration == len(whole) / SAMPLE_RATE
    assert results[1].text == transcribe_long(recognizer, whole, 2.0, (0.4, 0.2))
    assert results[0].text == results[2].text == transcribe_arrays(recognizer,
                                                                   [load_audio(short)])[0]


def test_long_file_memory_does_not_grow_with_its_length(recognizer, tmp_path, monkeypatch):
    """Peak traced (numpy) memory of transcribing 45 s and 180 s: one window's worth each."""
    monkeypatch.setattr(audio, "WHOLE_FILE_FRAMES", 1 << 16)
    monkeypatch.setattr(audio, "BLOCK_FRAMES", 1 << 15)
    peaks = {}
    for seconds in (45, 180):
        path = tmp_path / f"{seconds}.wav"
        with sf.SoundFile(path, "w", SAMPLE_RATE, 1, "PCM_16") as out:
            for index in range(seconds // 15):
                out.write(noise(15.0, seed=index))
        tracemalloc.start()
        try:
            [result] = transcribe_files([path], recognizer, progress=False, chunk_s=4.0,
                                        stride_s=(0.8, 0.4), batch_seconds=4.0)
            peaks[seconds] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert result.ok and result.duration == seconds and result.text
    whole_bytes = 180 * SAMPLE_RATE * 4  # 11.5 MB
    assert peaks[180] < whole_bytes / 4  # about 2 MB
    assert peaks[180] < 1.3 * peaks[45]  # 4 times the audio, not more memory


def test_file_failing_part_way_gets_an_error_entry(recognizer, tmp_path, monkeypatch):
    broken, good = tmp_path / "broken.m4a", tmp_path / "good.wav"
    broken.write_bytes(b"stands in for a long file that fails after 30 s")
    write_clip(good, noise(1.2, seed=1))

    def failing_stream(path):
        if path != broken:
            return open_audio(path)

        def blocks():
            for index in range(3):
                yield noise(10.0, seed=index), 0
            raise AudioDecodeError(f"{broken}: decoding stopped at 30.0 s (damaged)")

        return AudioStream(broken, 48_000, 2, False, blocks())

    monkeypatch.setattr(transcribe, "open_audio", failing_stream)
    results = transcribe_files([broken, good], recognizer, progress=False)
    assert results[0].error == f"{broken}: decoding stopped at 30.0 s (damaged)"
    assert (results[0].text, results[0].duration) == ("", 0.0)
    assert results[1].ok and results[1].text == transcribe_arrays(recognizer,
                                                                  [load_audio(good)])[0]
