"""What every result shares: an Interval type, and `to_dict()` giving JSON-ready values (None, not NaN)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


def jsonable(value: object) -> Any:
    """Dataclasses, mappings, sequences and numpy values as plain JSON values; NaN and infinities as None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    return value


def opt(value: float | np.floating[Any]) -> float | None:
    """A float, or None where it is NaN (undefined)."""
    number = float(value)
    return None if math.isnan(number) else number


class Result:
    """Mixin: `to_dict()` for a frozen dataclass result."""

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values (lists, dicts, numbers, strings; None where undefined)."""
        out: dict[str, Any] = jsonable(self)
        return out


@dataclass(frozen=True)
class Interval(Result):
    """A confidence interval [low, high] at `confidence`, computed by `method`."""

    low: float
    high: float
    confidence: float
    method: str

    def bounds(self) -> list[float]:
        """[low, high]: the interval as the compact JSON outputs show it (`brief()` of the results)."""
        return [self.low, self.high]

    def excludes(self, value: float) -> bool:
        """True when `value` lies strictly outside the interval."""
        return value < self.low or value > self.high

    @staticmethod
    def of(low: float, high: float, confidence: float, method: str) -> Interval | None:
        return None if math.isnan(low) or math.isnan(high) else Interval(low, high, confidence, method)
