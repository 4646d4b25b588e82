"""Speaker-disjoint train/dev/test split, deterministic for a seed."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

from workbench.manifest import Utterance

MIN_SPEAKERS_TO_HOLD_OUT = 3  # one for dev, one for test, at least one left to train on


@dataclass(frozen=True)
class SplitResult:
    """Utterances with their split set, and warnings the user should read."""

    utterances: list[Utterance]
    speaker_disjoint: bool
    warnings: list[str]


def split_utterances(
    utterances: list[Utterance],
    *,
    dev_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> SplitResult:
    """Assign each utterance to train, dev or test.

    When speakers are known and there are enough of them, whole speakers are held out
    (so the scores measure how the model does on voices it never heard). Otherwise the split
    is by utterance, with a warning.

    Args:
        utterances: Utterances to split (their ``split`` field is ignored).
        dev_fraction: Target share of audio duration for dev.
        test_fraction: Target share of audio duration for test.
        seed: Seed for the deterministic shuffle.

    Returns:
        The split result.
    """
    speakers = sorted({u.speaker for u in utterances if u.speaker})
    all_known = all(u.speaker for u in utterances)
    if all_known and len(speakers) >= MIN_SPEAKERS_TO_HOLD_OUT:
        assigned = _split_by_speaker(utterances, speakers, dev_fraction, test_fraction, seed)
        return SplitResult(assigned, True, [])
    if not all_known or not speakers:
        warning = (
            "Speakers are not known for every utterance, so the split is by utterance: the same "
            "voice may be in train and test, and the scores will look better than they are on "
            "new speakers. Name every utterance's speaker to hold whole speakers out: a "
            "table's speaker column (--speaker-column); for TextGrid files --speaker or "
            "--speaker-from-tier; for ELAN files the tiers' participants."
        )
    else:
        warning = (
            f"Only {len(speakers)} speaker(s): too few to hold any out for dev and test "
            f"(at least {MIN_SPEAKERS_TO_HOLD_OUT} are needed), so the split is by utterance. "
            "Test scores will not tell how the model does on a new voice."
        )
    return SplitResult(_split_by_utterance(utterances, dev_fraction, test_fraction, seed),
                       False, [warning])


def _split_by_speaker(utterances, speakers, dev_fraction, test_fraction, seed):
    seconds = defaultdict(float)
    for u in utterances:
        seconds[u.speaker] += u.duration
    total = sum(seconds.values()) or 1.0
    order = list(speakers)
    random.Random(seed).shuffle(order)
    chosen: dict[str, str] = {}
    for split, fraction in (("test", test_fraction), ("dev", dev_fraction)):
        held = 0.0
        # Always hold out at least one speaker; stop once the target share is reached.
        while order[1:] and (held == 0.0 or held / total < fraction):
            speaker = order.pop()
            chosen[speaker] = split
            held += seconds[speaker]
    return [u.with_split(chosen.get(u.speaker, "train")) for u in utterances]


def _split_by_utterance(utterances, dev_fraction, test_fraction, seed):
    order = sorted(range(len(utterances)), key=lambda i: utterances[i].id)
    random.Random(seed).shuffle(order)
    count = len(order)
    n_test = round(count * test_fraction) if count >= 3 else 0
    n_dev = round(count * dev_fraction) if count >= 3 else 0
    split_of = {}
    for rank, index in enumerate(order):
        split_of[index] = "test" if rank < n_test else "dev" if rank < n_test + n_dev else "train"
    return [u.with_split(split_of[i]) for i, u in enumerate(utterances)]
