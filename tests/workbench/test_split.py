from workbench.manifest import Utterance
from workbench.split import split_utterances


def utterances(speakers: int, per_speaker: int = 10) -> list[Utterance]:
    return [Utterance(id=f"s{s}-{i}", audio="", text="a", speaker=f"s{s}", duration=2.0)
            for s in range(speakers) for i in range(per_speaker)]


def test_speakers_are_held_out_whole():
    result = split_utterances(utterances(10), seed=1)
    assert result.speaker_disjoint and not result.warnings
    speakers = {split: {u.speaker for u in result.utterances if u.split == split}
                for split in ("train", "dev", "test")}
    assert speakers["dev"] and speakers["test"] and speakers["train"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["train"] & speakers["dev"]
    assert not speakers["dev"] & speakers["test"]
    assert len(result.utterances) == 100


def test_split_is_deterministic_for_a_seed():
    a = split_utterances(utterances(10), seed=3).utterances
    b = split_utterances(utterances(10), seed=3).utterances
    c = split_utterances(utterances(10), seed=4).utterances
    assert [u.split for u in a] == [u.split for u in b]
    assert [u.split for u in a] != [u.split for u in c]


def test_too_few_speakers_warns_and_splits_by_utterance():
    result = split_utterances(utterances(2, 20))
    assert not result.speaker_disjoint
    assert "too few" in result.warnings[0]
    counts = {s: sum(u.split == s for u in result.utterances) for s in ("train", "dev", "test")}
    assert counts == {"train": 32, "dev": 4, "test": 4}


def test_unknown_speakers_warn():
    items = [Utterance(id=str(i), audio="", text="a", duration=1.0) for i in range(20)]
    result = split_utterances(items)
    assert "not known" in result.warnings[0]
