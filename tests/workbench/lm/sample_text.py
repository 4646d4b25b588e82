"""The sample text the reference ARPA files in tests/data/lm were estimated from (stdout).

Sentences of Quechua-like words with a Zipf-like word distribution and some fixed phrases, so
that every order has n-grams seen once, twice, three and four times (the discounts are then
estimated, not the fallback), plus short sentences and repeated lines.
"""

import random

SYLLABLES = "ka ta pa ma na ri su wa yu lla chi qa ku mi hu".split()
PHRASES = ["allin p'unchay", "imaynalla kashanki", "sumaq tuta", "wasi ukhupi"]


def sample_sentences(count: int = 700, seed: int = 13) -> list[str]:
    rng = random.Random(seed)
    words = sorted({"".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3)))
                    for _ in range(400)})
    weights = [1 / (rank + 1) for rank in range(len(words))]
    sentences = []
    for _ in range(count):
        n = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9])
        sentence = rng.choices(words, weights, k=n)
        if rng.random() < 0.3:
            sentence.insert(rng.randint(0, n), rng.choice(PHRASES))
        sentences.append(" ".join(sentence))
    return sentences


if __name__ == "__main__":
    print("\n".join(sample_sentences()))
