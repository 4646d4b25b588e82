"""Character error rate as an ``evaluate`` metric, computed with jiwer (corpus-level).

Load it without the Hub (works offline)::

    from workbench.evaluate import load_metric
    cer = load_metric("cer")
    cer.compute(predictions=["abd"], references=["abc"])  # 0.333...

or ``evaluate.load("/path/to/workbench/metrics/cer.py")``. The rate is character edits /
reference characters over all pairs together, counted in code points of the NFC text (both
sides are put in NFC first); spaces between words count as characters, runs of whitespace
count as one space, and an empty reference adds its hypothesis characters as insertions.
It calls ``workbench.evaluate.error_rates``, the workbench's one scoring function (the
workbench must be installed where it runs).
"""

import evaluate

from workbench import rate_metric

_DESCRIPTION = """\
Character error rate (CER) of speech recognition hypotheses against reference transcripts:
(S + D + I) / N over the whole corpus, where N is the number of reference characters
(Unicode code points of the NFC text).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of hypothesis transcripts.
    references: list of reference transcripts (same length).
Returns:
    float: corpus character error rate (0 is perfect; it can exceed 1 with many insertions).
Examples:
    >>> cer = evaluate.load("workbench/metrics/cer.py")
    >>> cer.compute(predictions=["abd"], references=["abc"])
    0.3333333333333333
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CER(rate_metric.RateMetric):
    """Corpus character error rate with jiwer."""

    rate = "cer"
    description = _DESCRIPTION
    inputs_description = _KWARGS_DESCRIPTION
