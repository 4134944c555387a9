"""Evaluators: plain callables from an `EvalInput` to a `Score` (a value, a pass/fail, a reason).

Build one from a spec with `build_evaluator({"type": "regex", "pattern": "..."})`, or use the classes
directly; wrap a Python function with `as_evaluator(fn)`. Third-party evaluators register through the
`honed.evaluators` entry-point group (see `registry`).
"""

from honed.evals.evaluators.base import BuildContext, EvalInput, Evaluator, Score, SyncEvaluator
from honed.evals.evaluators.human import Human
from honed.evals.evaluators.judge import LLMJudge, parse_judgment, self_agreement
from honed.evals.evaluators.judging import extract_json_object
from honed.evals.evaluators.pairwise import PairwiseJudge, parse_verdict
from honed.evals.evaluators.python import CallableEvaluator, PythonFunction, as_evaluator, coerce_result
from honed.evals.evaluators.registry import (
    ENTRY_POINT_GROUP,
    EvaluatorRegistry,
    build_evaluator,
    builtin_registry,
    default_registry,
)
from honed.evals.evaluators.scale import Scale
from honed.evals.evaluators.similarity import EmbeddingSimilarity
from honed.evals.evaluators.structured import JsonSchema, JsonValid, Numeric, first_number
from honed.evals.evaluators.text import (
    Contains,
    Exact,
    Normalized,
    Regex,
    TokenF1,
    normalize_answer,
    token_f1,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "BuildContext",
    "CallableEvaluator",
    "Contains",
    "EmbeddingSimilarity",
    "EvalInput",
    "Evaluator",
    "EvaluatorRegistry",
    "Exact",
    "Human",
    "JsonSchema",
    "JsonValid",
    "LLMJudge",
    "Normalized",
    "Numeric",
    "PairwiseJudge",
    "PythonFunction",
    "Regex",
    "Scale",
    "Score",
    "SyncEvaluator",
    "TokenF1",
    "as_evaluator",
    "build_evaluator",
    "builtin_registry",
    "coerce_result",
    "default_registry",
    "extract_json_object",
    "first_number",
    "normalize_answer",
    "parse_judgment",
    "parse_verdict",
    "self_agreement",
    "token_f1",
]
