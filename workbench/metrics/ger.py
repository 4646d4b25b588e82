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
class GER(evaluate.Metric):
    """Corpus grapheme error rate with jiwer."""

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
            return error_rates(list(references), list(predictions))["ger"]
        except Exception as err:  # WorkbenchError: lengths differ, or all references empty
            raise ValueError(str(err)) from err
