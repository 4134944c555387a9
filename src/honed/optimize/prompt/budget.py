"""The search's budget: what it may spend, what it has spent by phase, and the check before every call.

A call is a distinct request (its content key): the first time the search sends it, it counts, whether the
model or the response cache answers; the same request again (the seed re-scored by GEPA, a rerun after a
kill) counts nothing more. So a resumed search spends exactly what an uninterrupted one would, and the
numbers do not depend on what the cache happened to hold.

Before the first call the fixed part of the plan (the start and the chosen prompt on test, the start on dev,
the bootstrap, one candidate on dev) is estimated; a budget that cannot pay for it stops the search there.
During the search, `allow` answers whether a batch of calls still fits with the test phase kept in reserve,
so a search cut short by its budget still ends with its verdict on test, and `charge` refuses outright any
batch that would overrun: the budget is a hard limit, never a target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from honed.errors import BudgetExceededError

__all__ = ["Ledger", "PhaseUsage"]


@dataclass
class PhaseUsage:
    """What one phase spent: calls (distinct requests), those the model answered in this process (not
    the response cache, nor a killed process whose run this one resumed), tokens and USD (None once a
    call had no price)."""

    calls: int = 0
    fresh: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Ledger:
    """Calls and USD spent against `calls` / `usd` (None: no limit of that kind)."""

    calls: int | None
    usd: float | None
    seen: set[str] = field(default_factory=set)
    phases: dict[str, PhaseUsage] = field(default_factory=dict)
    spent_usd: float = 0.0
    #: calls and USD kept back for the final comparison on test
    reserve_calls: int = 0
    reserve_usd: float = 0.0

    @property
    def used(self) -> int:
        return len(self.seen)

    def new(self, keys: list[str]) -> list[str]:
        """The keys of `keys` not sent before, each once, in order."""
        return list(dict.fromkeys(k for k in keys if k not in self.seen))

    def allow(self, keys: list[str], usd: float = 0.0, *, reserve: bool = True) -> bool:
        """Whether the calls `keys` (at most `usd` more) fit the budget, keeping the reserve for test
        unless `reserve` is False (the test phase itself)."""
        n = len(self.new(keys))
        held_calls, held_usd = (self.reserve_calls, self.reserve_usd) if reserve else (0, 0.0)
        calls_left = None if self.calls is None else self.calls - self.used - held_calls
        usd_left = None if self.usd is None else self.usd - self.spent_usd - held_usd
        return (calls_left is None or n <= calls_left) and (usd_left is None or usd <= usd_left + 1e-12)

    def charge(self, phase: str, keys: list[str], usd: float = 0.0, *, reserve: bool = True) -> set[str]:
        """Check that `keys` fit (raising `BudgetExceededError` when not), count them as sent and return
        the new ones (for `record`)."""
        if not self.allow(keys, usd, reserve=reserve):
            raise BudgetExceededError(
                f"{phase}: {len(self.new(keys))} more calls would overrun the budget ({self.describe()})",
                hint="raise budget.calls / budget.usd, or search less (fewer k, fewer iterations)",
            )
        fresh = set(self.new(keys))
        self.seen.update(fresh)
        self.phases.setdefault(phase, PhaseUsage())
        return fresh

    def record(self, phase: str, row: dict[str, Any], *, new: bool) -> None:
        """Add a call's tokens and cost to `phase`; `new`: the first time its request was sent."""
        usage = self.phases.setdefault(phase, PhaseUsage())
        if not new:
            return
        usage.calls += 1
        usage.fresh += 0 if row.get("cached") else 1
        usage.input_tokens += int(row.get("input_tokens") or 0)
        usage.output_tokens += int(row.get("output_tokens") or 0)
        cost = row.get("cost_usd")
        if cost is None and row.get("output") is not None:
            usage.cost_usd = None
        elif usage.cost_usd is not None:
            usage.cost_usd += float(cost or 0.0)
        self.spent_usd += float(cost or 0.0)

    def describe(self) -> str:
        parts = []
        if self.calls is not None:
            parts.append(f"{self.used} of {self.calls} calls used")
        if self.usd is not None:
            parts.append(f"${self.spent_usd:.4f} of ${self.usd:.4f}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "usd": self.usd,
            "used_calls": self.used,
            "used_usd": self.spent_usd,
        }
