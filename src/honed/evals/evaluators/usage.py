"""Limits on what producing an output took: `latency` (time in the model) and `cost` (dollars).

They score the call, not the text: a result's `latency_s` and `cost_usd` as the experiment recorded them (a
cached answer keeps the figures of the call that produced it). A call whose figure is unknown (a price
missing from the price table) is an error score saying so, never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from honed.errors import InvalidInputError
from honed.evals.evaluators.base import EvalInput, Score, SyncEvaluator, binary


@dataclass(frozen=True, kw_only=True, eq=False)
class Latency(SyncEvaluator):
    """The call took at most `max_s` seconds in the model; the value is 1/0 (pass/fail), the seconds in
    `details`."""

    kind = "latency"
    max_s: float

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_s <= 0:
            raise InvalidInputError("evaluator 'latency': max_s must be > 0", hint="e.g. max_s: 2.5")

    def score(self, item: EvalInput) -> Score:
        if item.latency_s is None:
            return Score.failed("the call's latency is unknown")
        ok = item.latency_s <= self.max_s
        verb = "within" if ok else "over"
        return binary(
            ok, f"{item.latency_s:.3f} s in the model, {verb} {self.max_s:g} s", latency_s=item.latency_s
        )


@dataclass(frozen=True, kw_only=True, eq=False)
class Cost(SyncEvaluator):
    """The call cost at most `max_usd` dollars; the value is 1/0 (pass/fail), the cost in `details`."""

    kind = "cost"
    max_usd: float

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_usd < 0:
            raise InvalidInputError("evaluator 'cost': max_usd must be >= 0", hint="e.g. max_usd: 0.01")

    def score(self, item: EvalInput) -> Score:
        if item.cost_usd is None:
            return Score.failed("the call's cost is unknown (no price for its model)")
        ok = item.cost_usd <= self.max_usd
        verb = "within" if ok else "over"
        return binary(ok, f"${item.cost_usd:.6f}, {verb} ${self.max_usd:g}", cost_usd=item.cost_usd)
