"""What the workbench's ``evaluate`` metric scripts (``workbench/metrics/*.py``) share.

Each script stays a file ``evaluate.load`` can load on its own; it subclasses
:class:`RateMetric` through this module (``from workbench import rate_metric``, so the base
class is not in the script's namespace, where ``evaluate`` would take it for the metric), and
says only which rate of :func:`workbench.evaluate.error_rates` it returns and how to describe
it. The scoring is the workbench's one scoring function, so the metrics and ``workbench
evaluate`` always agree.
"""

from __future__ import annotations

import datasets
import evaluate

CITATION = """\
@inproceedings{morris2004,
  author = {Morris, Andrew and Maier, Viktoria and Green, Phil},
  title = {From WER and RIL to MER and WIL: improved evaluation measures for connected
           speech recognition.},
  year = {2004}
}
"""


class RateMetric(evaluate.Metric):
    """A corpus error rate of :func:`workbench.evaluate.error_rates` as an ``evaluate`` metric.

    Subclasses set ``rate`` (the key of ``error_rates``), ``description`` and
    ``inputs_description``.
    """

    rate = ""
    description = ""
    inputs_description = ""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=self.description,
            citation=CITATION,
            inputs_description=self.inputs_description,
            features=datasets.Features({
                "predictions": datasets.Value("string", id="sequence"),
                "references": datasets.Value("string", id="sequence"),
            }),
            codebase_urls=["https://github.com/jitsi/jiwer/"],
        )

    def _compute(self, predictions=None, references=None) -> float:
        from workbench.evaluate import error_rates

        try:
            return error_rates(list(references), list(predictions))[self.rate]
        except Exception as err:  # WorkbenchError: lengths differ, or all references empty
            raise ValueError(str(err)) from err
