"""Statistics for honest comparisons: pure numpy/scipy on arrays of scores, no store and no I/O.

- `summary`: one variant's mean with a percentile bootstrap CI, pass rate with a Wilson CI, errors, flaky.
- `compare`: two variants paired on case ids: mean difference with a bootstrap CI, a sign-flip permutation
  test, McNemar for pass/fail, improvements and regressions, a verdict, and the cases needed to tell.
- `many`: all of that for many variants against a baseline, from shared resamples (fast).
- `flaky`, `repeat_std`: cases that do not repeat. `metric`: mean and CI of cost, tokens, latency.
- Agreement: `judge_agreement`, `score_spread`, `fleiss_kappa`, `cohen_kappa`, `accuracy`, `calibration`.

Every random draw comes from `numpy.random.Generator(PCG64(...))` seeded by `seed`: same seed, same numbers.
Results are frozen dataclasses with `to_dict()` (JSON-ready; None where a value is undefined).
"""

from ._agreement import (
    Calibration,
    JudgeAgreement,
    ScoreSpread,
    accuracy,
    calibration,
    cohen_kappa,
    confusion_matrix,
    fleiss_kappa,
    judge_agreement,
    kappa_from_table,
    score_spread,
)
from ._flaky import flaky, repeat_std
from ._many import ManyResult, many
from ._matrix import ScoreMatrix
from ._mcnemar import McNemarResult, PassComparison, mcnemar
from ._paired import BETTER, NO_DIFFERENCE, WORSE, CaseDelta, Comparison, cases_needed, compare, verdict
from ._result import Interval
from ._summary import MetricSummary, VariantSummary, metric, summary, wilson_interval

__all__ = [
    "BETTER",
    "NO_DIFFERENCE",
    "WORSE",
    "Calibration",
    "CaseDelta",
    "Comparison",
    "Interval",
    "JudgeAgreement",
    "ManyResult",
    "McNemarResult",
    "MetricSummary",
    "PassComparison",
    "ScoreMatrix",
    "ScoreSpread",
    "VariantSummary",
    "accuracy",
    "calibration",
    "cases_needed",
    "cohen_kappa",
    "compare",
    "confusion_matrix",
    "flaky",
    "fleiss_kappa",
    "judge_agreement",
    "kappa_from_table",
    "many",
    "mcnemar",
    "metric",
    "repeat_std",
    "score_spread",
    "summary",
    "verdict",
    "wilson_interval",
]
