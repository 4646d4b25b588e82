"""Grapheme error rate as an ``evaluate`` metric, computed with jiwer (corpus-level).

Load it without the Hub (works offline)::

    from workbench.evaluate import load_metric
    ger = load_metric("ger")
    ger.compute(predictions=["क्ष"], references=["क्षि"])  # 1.0 (the CER is 0.25)

or ``evaluate.load("/path/to/workbench/metrics/ger.py")``. The rate is edits / reference
grapheme clusters over all pairs together: extended grapheme clusters (Unicode UAX #29) of the
NFC text, what a reader perceives as one character (Hindi क्षि is one cluster of 4 code
points). Spaces between words count as one cluster each, runs of whitespace count as one
space, and an empty reference adds its hypothesis clusters as insertions. Text without
combining sequences has the same GER as CER.
It calls ``workbench.evaluate.error_rates``, the workbench's one scoring function (the
workbench must be installed where it runs).
"""

import evaluate

from workbench import rate_metric

_DESCRIPTION = """\
Grapheme error rate (GER) of speech recognition hypotheses against reference transcripts:
(S + D + I) / N over the whole corpus, where N is the number of reference grapheme clusters
(extended grapheme clusters of the NFC text, the characters a reader perceives).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of hypothesis transcripts.
    references: list of reference transcripts (same length).
Returns:
    float: corpus grapheme error rate (0 is perfect; it can exceed 1 with many insertions).
Examples:
    >>> ger = evaluate.load("workbench/metrics/ger.py")
    >>> ger.compute(predictions=["क्ष"], references=["क्षि"])
    1.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class GER(rate_metric.RateMetric):
    """Corpus grapheme error rate with jiwer."""

    rate = "ger"
    description = _DESCRIPTION
    inputs_description = _KWARGS_DESCRIPTION
