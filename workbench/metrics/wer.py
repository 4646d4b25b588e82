"""Word error rate as an ``evaluate`` metric, computed with jiwer (corpus-level).

Load it without the Hub (works offline)::

    from workbench.evaluate import load_metric
    wer = load_metric("wer")
    wer.compute(predictions=["a x c"], references=["a b c"])  # 0.333...

or ``evaluate.load("/path/to/workbench/metrics/wer.py")``. The rate is
(substitutions + deletions + insertions) / reference words over all pairs together, with runs
of whitespace counted as one space; an empty reference adds its hypothesis words as insertions.
It calls ``workbench.evaluate.error_rates``, the workbench's one scoring function (the
workbench must be installed where it runs).
"""

import evaluate

from workbench import rate_metric

_DESCRIPTION = """\
Word error rate (WER) of speech recognition hypotheses against reference transcripts:
(S + D + I) / N over the whole corpus, where N is the number of reference words.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of hypothesis transcripts.
    references: list of reference transcripts (same length).
Returns:
    float: corpus word error rate (0 is perfect; it can exceed 1 with many insertions).
Examples:
    >>> wer = evaluate.load("workbench/metrics/wer.py")
    >>> wer.compute(predictions=["a x c"], references=["a b c"])
    0.3333333333333333
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class WER(rate_metric.RateMetric):
    """Corpus word error rate with jiwer."""

    rate = "wer"
    description = _DESCRIPTION
    inputs_description = _KWARGS_DESCRIPTION
