"""The pointwise LLM judge: a rubric, a scale, and N independent samples with their agreement reported.

Each sample is its own call (`sample_index` 0..N-1, so the response cache never serves one sample as
another). An integer scale reports the mean of the valid samples, a pass/fail scale the fraction that
passed (passing on a strict majority); `details` keep every sample's score and reasoning, the mode, the
fraction of samples agreeing with it, and their standard deviation, so a judge's own noise is visible per
item. A reply that is not JSON with an in-scale `score` is kept as an error with its raw text; an item
scores from the samples that parsed and is an error only when none did.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from honed.errors import HonedError, InvalidInputError
from honed.evals.evaluators.base import EvalInput, Score, passed_at
from honed.evals.evaluators.judging import CALL_FAILED, UNPARSEABLE, JudgeBase, call_cost, extract_json_object
from honed.evals.evaluators.scale import Scale
from honed.models.types import ChatRequest, Completion

if TYPE_CHECKING:
    from honed.evals.stats import JudgeAgreement

SYSTEM = (
    "You are a careful, impartial evaluator. Judge the response strictly against the rubric. "
    "Reply with one JSON object and nothing else."
)


def parse_judgment(text: str, scale: Scale) -> tuple[float, str] | str:
    """(value, reasoning) from a judge's reply, or why it cannot be used."""
    obj = extract_json_object(text)
    if obj is None:
        return "the reply contains no JSON object"
    if "score" not in obj:
        return "the reply's JSON has no 'score'"
    value = scale.judge_value(obj["score"])
    if value is None:
        return f"score {obj['score']!r} is not on the scale {scale}"
    reasoning = obj.get("reasoning", "")
    return value, reasoning if isinstance(reasoning, str) else str(reasoning)


def agreement(values: Sequence[float]) -> tuple[float, float, float]:
    """(mode, fraction of samples equal to the mode, population std). Ties pick the lowest value."""
    counts = Counter(values)
    top = max(counts.values())
    mode = min(v for v, c in counts.items() if c == top)
    std = statistics.pstdev(values) if len(values) > 1 else 0.0
    return mode, top / len(values), std


@dataclass(frozen=True, kw_only=True, eq=False)
class LLMJudge(JudgeBase):
    """Pointwise judge. `scale`: "1-5" (any LOW-HIGH) or "pass_fail"; `threshold` (integer scales) sets
    `passed`; `samples` runs N independent judgments. `temperature` defaults to 0 for one sample and 0.7
    for several (identical greedy samples would say nothing about agreement)."""

    kind = "llm_judge"
    scale: str | list[int] = "1-5"
    threshold: float | None = None
    samples: int = 1
    _scale: Scale = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.temperature is None:
            object.__setattr__(self, "temperature", 0.0 if self.samples == 1 else 0.7)
        super().__post_init__()
        scale = Scale.parse(self.scale)
        object.__setattr__(self, "_scale", scale)
        object.__setattr__(self, "scale", str(scale))  # canonical, so "1-5" and [1, 5] are one version
        if self.samples < 1:
            raise InvalidInputError(f"evaluator {self.name!r}: samples must be >= 1", hint="e.g. samples: 3")
        if self.threshold is not None and (scale.pass_fail or not scale.contains(self.threshold)):
            raise InvalidInputError(
                f"evaluator {self.name!r}: threshold {self.threshold} does not fit the scale {scale}",
                hint="pass_fail passes on the majority; an integer scale needs LOW <= threshold <= HIGH",
            )

    def prompt(self, item: EvalInput) -> str:
        return (
            f"[Rubric]\n{self.rubric.strip()}\n\n"
            f"{self.case_text(item)}\n"
            f"[Response to evaluate]\n{item.output}\n\n"
            f"Score the response: {self._scale.judge_instruction()}.\n"
            'Reply with JSON only: {"reasoning": "<one or two sentences>", "score": <score>}'
        )

    def requests(self, item: EvalInput) -> list[ChatRequest]:
        user = self.prompt(item)
        return [self.request(SYSTEM, user, sample_index=i) for i in range(self.samples)]

    async def evaluate(self, item: EvalInput) -> Score:
        return (await self.evaluate_many([item]))[0]

    async def evaluate_many(self, items: Sequence[EvalInput]) -> list[Score]:
        requests = [r for item in items for r in self.requests(item)]
        results = await self.call(requests)
        n = self.samples
        return [self.combine(results[i * n : (i + 1) * n]) for i in range(len(items))]

    def combine(self, results: Sequence[Completion | HonedError]) -> Score:
        """One item's score from its N sample results."""
        scores: list[float] = []
        reasonings: list[str] = []
        errors: list[dict[str, Any]] = []
        for i, result in enumerate(results):
            if isinstance(result, HonedError):
                errors.append({"sample": i, "error": result.one_line(), "raw": None})
                continue
            parsed = parse_judgment(result.text, self._scale)
            if isinstance(parsed, str):
                errors.append({"sample": i, "error": parsed, "raw": result.text})
                continue
            scores.append(parsed[0])
            reasonings.append(parsed[1])
        details: dict[str, Any] = {"samples": scores, "reasonings": reasonings, **call_cost(results)}
        if errors:
            details["errors"] = errors
        if not scores:
            raws = [e["raw"] for e in errors if e["raw"] is not None]
            if raws:
                return Score.failed(UNPARSEABLE, reason=errors[0]["error"], raw=raws[0], details=details)
            return Score.failed(CALL_FAILED, reason=errors[0]["error"], details=details)
        mode, agree, std = agreement(scores)
        details.update({"mode": mode, "agreement": agree, "std": std, "n_valid": len(scores)})
        value = statistics.fmean(scores)
        if self._scale.pass_fail:
            passed: bool | None = value > 0.5
            shown = f"{sum(scores):g}/{len(scores)} samples pass"
        else:
            passed = passed_at(value, self.threshold)
            shown = f"score {value:.3g}"
        why = reasonings[scores.index(mode)]
        if len(results) > 1:
            shown += f" ({agree:.0%} of {len(scores)} valid samples agree on {self._scale.label_text(mode)})"
        return Score(value, passed, f"{shown}: {why}" if why else shown, details=details)


def self_agreement(scores: Sequence[Score]) -> JudgeAgreement:
    """A judge's agreement with itself over many items, from `LLMJudge` scores with samples > 1: percent
    agreement, the share of unanimous items and Fleiss' kappa (`honed.evals.stats.judge_agreement`).
    Items that could not be judged count as skipped."""
    from honed.evals import stats  # scipy takes a second to import; only agreement reports need it

    return stats.judge_agreement([list(s.details.get("samples", [])) for s in scores])
