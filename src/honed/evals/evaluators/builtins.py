"""The built-in evaluators, registered through the same hook a plugin uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from honed.evals.evaluators.agent import AGENT_EVALUATORS
from honed.evals.evaluators.base import Evaluator
from honed.evals.evaluators.checks import CaseChecks, Not
from honed.evals.evaluators.human import Human
from honed.evals.evaluators.javascript import JavaScript
from honed.evals.evaluators.judge import LLMJudge
from honed.evals.evaluators.pairwise import PairwiseJudge
from honed.evals.evaluators.python import PythonFunction
from honed.evals.evaluators.rag import RAG_EVALUATORS
from honed.evals.evaluators.similarity import EmbeddingSimilarity
from honed.evals.evaluators.structured import JsonSchema, JsonValid, Numeric
from honed.evals.evaluators.text import Contains, Exact, FuzzyMatch, Normalized, Regex, StartsWith, TokenF1
from honed.evals.evaluators.usage import Cost, Latency

if TYPE_CHECKING:
    from honed.evals.evaluators.registry import EvaluatorRegistry

BUILTINS: tuple[type[Evaluator], ...] = (
    Exact,
    Normalized,
    Contains,
    StartsWith,
    Regex,
    FuzzyMatch,
    JsonValid,
    JsonSchema,
    Numeric,
    TokenF1,
    EmbeddingSimilarity,
    PythonFunction,
    JavaScript,
    Latency,
    Cost,
    Not,
    CaseChecks,
    LLMJudge,
    PairwiseJudge,
    Human,
    *RAG_EVALUATORS,
    *AGENT_EVALUATORS,
)


def register(registry: EvaluatorRegistry) -> None:
    for cls in BUILTINS:
        doc = (cls.__doc__ or "").strip().split("\n")[0]
        registry.add_evaluator(cls.kind, cls.from_spec, description=doc)
