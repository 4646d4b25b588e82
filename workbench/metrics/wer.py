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

import datasets
import evaluate

_CITATION = """\
@inproceedings{morris2004,
  author = {Morris, Andrew and Maier, Viktoria and Green, Phil},
  title = {From WER and RIL to MER and WIL: improved evaluation measures for connected
           speech recognition.},
  year = {2004}
}
"""

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


def _words(text):
    return text.split()


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class WER(evaluate.Metric):
    """Corpus word error rate with jiwer."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string", id="sequence"),
                    "references": datasets.Value("string", id="sequence"),
                }
            ),
            codebase_urls=["https://github.com/jitsi/jiwer/"],
        )

    def _compute(self, predictions=None, references=None):
        # The workbench's one scoring function, so this metric and `workbench evaluate` agree.
        from workbench.evaluate import error_rates

        try:
            return error_rates(list(references), list(predictions))["wer"]
        except Exception as err:  # WorkbenchError: lengths differ, or all references empty
            raise ValueError(str(err)) from err
