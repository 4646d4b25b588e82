"""Timed words and utterances from a frame track whose truth is known frame by frame."""

from __future__ import annotations

import numpy as np
import pytest

from tests.workbench.ctc_fixtures import VOCAB, save_tiny_model, tiny_processor
from workbench.segments import Word, segment_track, segment_words, timed_words
from workbench.transcribe import FrameTrack

FRAME_S = 0.02


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return tiny_processor(tmp_path_factory.mktemp("tok")).tokenizer


def track(spans: list[tuple[int, str]], frames: int, confidence: float = 0.9) -> FrameTrack:
    """Frames of blank with letters placed at ``(first frame, letters)``, one frame each
    letter held twice (a_a), ``|`` for a word delimiter."""
    ids = np.zeros(frames, np.int32)
    conf = np.full(frames, 0.99, np.float32)
    for first, letters in spans:
        for k, letter in enumerate(letters):
            ids[first + 2 * k: first + 2 * k + 2] = VOCAB[letter]
            conf[first + 2 * k: first + 2 * k + 2] = confidence
    blank = np.where(ids == 0, 0.99, 0.01).astype(np.float32)
    return FrameTrack(ids, conf, blank, FRAME_S, int(frames * FRAME_S * 16_000))


def test_words_get_the_frames_of_their_letters(tokenizer):
    t = track([(10, "cat"), (16, "|"), (20, "mad"), (100, "tom")], 150)
    words = timed_words(t, tokenizer)
    assert [(w.text, w.start, w.end) for w in words] == [
        ("cat", 0.2, 0.32), ("mad", 0.4, 0.52), ("tom", 2.0, 2.12)]
    assert all(w.confidence == pytest.approx(0.9) for w in words)


def test_a_long_pause_ends_a_word_even_without_a_delimiter(tokenizer):
    # "mad" ... 0.8 s of blank ... "cat": a model trained on single utterances writes no "|"
    t = track([(10, "mad"), (56, "cat")], 100)
    assert [w.text for w in timed_words(t, tokenizer)] == ["mad", "cat"]
    assert [w.text for w in timed_words(t, tokenizer, min_pause_s=1.0)] == ["madcat"]


def test_utterances_break_at_pauses_and_keep_a_margin(tokenizer):
    t = track([(10, "cat"), (16, "|"), (20, "mad"), (100, "tom"), (106, "|"), (110, "cut")],
              200)
    segments = segment_track(t, tokenizer, min_s=0.0)
    assert [s.text for s in segments] == ["cat mad", "tom cut"]
    assert (segments[0].start, segments[0].end) == (0.1, 0.62)  # 0.2-0.52 plus 0.1
    assert (segments[1].start, segments[1].end) == (1.9, 2.42)
    assert [w.text for w in segments[1].words] == ["tom", "cut"]
    assert segments[0].confidence == pytest.approx(0.9)


def test_short_utterances_join_their_nearer_neighbour(tokenizer):
    t = track([(10, "cat"), (40, "mad"), (200, "tom")], 300)  # gaps 0.48 s and 3.08 s
    # "cat" joins "mad" (0.48 s away); "tom", 3 s from both, stays alone though short
    assert [s.text for s in segment_track(t, tokenizer)] == ["cat mad", "tom"]


def test_a_long_utterance_is_split_at_its_longest_gap():
    words = [Word(f"w{i}", i * 1.0, i * 1.0 + 0.8, 0.9) for i in range(30)]
    words[12] = Word("w12", 12.5, 13.3, 0.9)  # the longest gap: 0.7 s before w12
    segments = segment_words(words, 40.0, min_pause_s=1.0, max_s=20.0)
    assert [len(s.words) for s in segments] == [12, 18]
    assert all(s.end - s.start <= 20.0 + 0.2 for s in segments)


def test_margins_never_cross_half_the_gap_or_the_file():
    words = [Word("a", 0.05, 0.5, 0.9), Word("b", 0.62, 1.6, 0.9), Word("c", 1.9, 2.95, 0.9)]
    segments = segment_words(words, 3.0, min_pause_s=0.1, min_s=0.0, pad_s=0.2)
    assert [(s.start, s.end) for s in segments] == [(0.0, 0.56), (0.56, 1.75), (1.75, 3.0)]


def test_stream_frames_agree_with_the_text_path(tmp_path):
    from tests.workbench.ctc_fixtures import noise
    from workbench.decode import decode_best_path
    from workbench.recognizer import load_recognizer
    from workbench.transcribe import stream_frames, stream_ids

    recognizer = load_recognizer(save_tiny_model(tmp_path / "m"))
    audio = noise(45.0, seed=3)
    blocks = [audio[i:i + 16_000] for i in range(0, len(audio), 16_000)]
    frames = stream_frames(recognizer, iter(blocks))
    ids, total = stream_ids(recognizer, iter(blocks))
    assert np.array_equal(frames.ids, ids) and frames.samples == total == len(audio)
    assert frames.frame_s == pytest.approx(0.02)
    assert ((frames.confidence > 0) & (frames.confidence <= 1)).all()
    assert ((frames.blank >= 0) & (frames.blank <= frames.confidence + 1e-6)).all()
    words = timed_words(frames, recognizer.tokenizer, min_pause_s=1e9)
    text = decode_best_path(ids, recognizer.tokenizer)
    assert " ".join(w.text for w in words) == " ".join(text.split())
