"""The pairwise LLM judge: is this output better than the baseline's, per the rubric?

Judges prefer whichever response comes first (or second) more often than quality explains. So every pair
is judged twice, in both orders: (A = output, B = baseline) and (A = baseline, B = output). Only a verdict
that survives the swap counts; when the two orders disagree the pair is a tie flagged `position_bias`
(as MT-Bench does). The value is the preference for the output: 1 (output better), -1 (baseline better),
0 (tie).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from honed.errors import HonedError
from honed.evals.evaluators.base import EvalInput, Score
from honed.evals.evaluators.judging import CALL_FAILED, UNPARSEABLE, JudgeBase, call_cost, extract_json_object
from honed.models.types import ChatRequest, Completion

SYSTEM = (
    "You are a careful, impartial evaluator comparing two responses to the same request. Judge them strictly "
    "against the rubric; the order in which they appear says nothing about their quality, and neither does "
    "their length. Reply with one JSON object and nothing else."
)
_WINNERS = {"a": "A", "b": "B", "tie": "tie", "response a": "A", "response b": "B", "draw": "tie"}


def parse_verdict(text: str) -> tuple[str, str]:
    """("A" | "B" | "tie", reasoning) from a pairwise judge's reply; anything else raises ValueError."""
    obj = extract_json_object(text)
    if obj is None:
        raise ValueError("the reply contains no JSON object")
    winner = obj.get("winner")
    verdict = _WINNERS.get(winner.strip().lower()) if isinstance(winner, str) else None
    if verdict is None:
        raise ValueError(f"winner {winner!r} is not one of 'A', 'B', 'tie'")
    reasoning = obj.get("reasoning", "")
    return verdict, reasoning if isinstance(reasoning, str) else str(reasoning)


@dataclass(frozen=True, kw_only=True, eq=False)
class PairwiseJudge(JudgeBase):
    """Compares `item.output` with `item.baseline`; temperature defaults to 0."""

    kind = "pairwise_judge"

    def __post_init__(self) -> None:
        if self.temperature is None:
            object.__setattr__(self, "temperature", 0.0)
        super().__post_init__()

    def prompt(self, item: EvalInput, first: str, second: str) -> str:
        return (
            f"[Rubric]\n{self.rubric.strip()}\n\n"
            f"{self.case_text(item)}\n"
            f"[Response A]\n{first}\n\n"
            f"[Response B]\n{second}\n\n"
            "Which response is better according to the rubric?\n"
            'Reply with JSON only: {"reasoning": "<one or two sentences>", "winner": "A" | "B" | "tie"}'
        )

    def requests(self, item: EvalInput, baseline: str) -> list[ChatRequest]:
        return [
            self.request(SYSTEM, self.prompt(item, item.output, baseline)),
            self.request(SYSTEM, self.prompt(item, baseline, item.output)),
        ]

    async def evaluate(self, item: EvalInput) -> Score:
        return (await self.evaluate_many([item]))[0]

    async def evaluate_many(self, items: Sequence[EvalInput]) -> list[Score]:
        todo = [i for i, item in enumerate(items) if item.baseline is not None]
        requests = [r for i in todo for r in self.requests(items[i], str(items[i].baseline))]
        results = await self.call(requests) if requests else []
        out = [Score.failed("no baseline output to compare against") for _ in items]
        for k, i in enumerate(todo):
            out[i] = self.combine(results[2 * k], results[2 * k + 1])
        return out

    def combine(self, forward: Completion | HonedError, swapped: Completion | HonedError) -> Score:
        """The preference for the output from the (output, baseline) and (baseline, output) verdicts."""
        details: dict[str, Any] = call_cost([forward, swapped])
        verdicts: list[str] = []
        reasonings: list[str] = []
        for order, result in (("output_first", forward), ("baseline_first", swapped)):
            if isinstance(result, HonedError):
                return Score.failed(CALL_FAILED, reason=f"{order}: {result.one_line()}", details=details)
            try:
                verdict, reasoning = parse_verdict(result.text)
            except ValueError as exc:
                return Score.failed(UNPARSEABLE, reason=f"{order}: {exc}", raw=result.text, details=details)
            verdicts.append(verdict)
            reasonings.append(reasoning)
        # Map each verdict to a preference for the output: in the swapped order the output is B.
        first = {"A": 1, "B": -1, "tie": 0}[verdicts[0]]
        second = {"A": -1, "B": 1, "tie": 0}[verdicts[1]]
        consistent = first == second
        details.update(
            {
                "verdicts": {"output_first": verdicts[0], "baseline_first": verdicts[1]},
                "reasonings": {"output_first": reasonings[0], "baseline_first": reasonings[1]},
                "consistent": consistent,
                "position_bias": not consistent,
            }
        )
        if not consistent:
            reason = (
                f"tie: the verdict changed when the order was swapped ({verdicts[0]} with the output first, "
                f"{verdicts[1]} with the baseline first)"
            )
            return Score(0.0, None, reason, details=details)
        words = {1: "output is better than the baseline", -1: "baseline is better", 0: "tie"}
        reason = f"{words[first]} in both orders"
        return Score(
            float(first), None, f"{reason}: {reasonings[0]}" if reasonings[0] else reason, details=details
        )
