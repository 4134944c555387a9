"""Rating scales shared by the LLM judge, human review, the human evaluator and calibration.

A scale is either an integer range (`1-5`, `0-10`; ordinal, so calibration weights near misses) or
`pass_fail` (values 1.0 = pass, 0.0 = fail). Judges and people use the same scale object so their labels
line up item for item when a judge is calibrated against humans.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from honed.errors import InvalidInputError

PASS_FAIL = "pass_fail"
_PASS = frozenset({"pass", "p", "yes", "y", "true"})
_FAIL = frozenset({"fail", "f", "no", "n", "false"})
_RANGE = re.compile(r"^\s*(-?\d+)\s*-\s*(-?\d+)\s*$")
_MAX_CATEGORIES = 101


@dataclass(frozen=True, slots=True)
class Scale:
    low: int
    high: int
    pass_fail: bool = False

    @classmethod
    def parse(cls, spec: str | Sequence[int] | Scale) -> Scale:
        """`"1-5"`, `[1, 5]` or `"pass_fail"` (also `"pass-fail"`, `"pf"`)."""
        if isinstance(spec, Scale):
            return spec
        if isinstance(spec, str):
            if spec.strip().lower().replace("-", "_") in (PASS_FAIL, "pf"):
                return cls(0, 1, pass_fail=True)
            m = _RANGE.match(spec)
            if m is None:
                raise InvalidInputError(
                    f"scale {spec!r} is not understood", hint="use e.g. '1-5' or 'pass_fail'"
                )
            low, high = int(m.group(1)), int(m.group(2))
        else:
            if len(spec) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) for x in spec):
                raise InvalidInputError(f"scale {list(spec)!r} is not [LOW, HIGH]", hint="use e.g. [1, 5]")
            low, high = spec[0], spec[1]
        if not low < high or high - low + 1 > _MAX_CATEGORIES:
            raise InvalidInputError(
                f"scale {low}-{high} is empty or too wide",
                hint=f"LOW < HIGH, at most {_MAX_CATEGORIES} points",
            )
        return cls(low, high)

    def __str__(self) -> str:
        return PASS_FAIL if self.pass_fail else f"{self.low}-{self.high}"

    @property
    def ordinal(self) -> bool:
        """Whether distance between categories means something (weighted kappa, mean absolute error)."""
        return not self.pass_fail and self.high - self.low > 1

    def categories(self) -> list[float]:
        return [float(v) for v in range(self.low, self.high + 1)]

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def category(self, value: float) -> float:
        """The nearest category of a (possibly averaged) value, rounding halves up: 3.5 -> 4."""
        return float(min(self.high, max(self.low, math.floor(value + 0.5))))

    def judge_value(self, raw: Any) -> float | None:
        """A judge's JSON `score` as a value on this scale, or None when it is not one (a 7 on 1-5, 3.5,
        "good"). Numbers written as strings ("4") are accepted; pass/fail accepts words and booleans."""
        if self.pass_fail:
            if isinstance(raw, bool):
                return 1.0 if raw else 0.0
            if isinstance(raw, str):
                word = raw.strip().lower()
                return 1.0 if word in _PASS else 0.0 if word in _FAIL else None
            return None
        if isinstance(raw, bool):
            return None
        if isinstance(raw, str):
            try:
                raw = float(raw.strip())
            except ValueError:
                return None
        if not isinstance(raw, int | float) or not math.isfinite(raw) or raw != int(raw):
            return None
        return float(raw) if self.contains(float(raw)) else None

    def label_value(self, text: str) -> float | None:
        """A person's typed label (`4`, `p`, `fail`) as a value, or None when it is not one."""
        return self.judge_value(text.strip())

    def label_text(self, value: float) -> str:
        if self.pass_fail:
            return "pass" if value >= 1 else "fail"
        return str(int(value))

    def judge_instruction(self) -> str:
        if self.pass_fail:
            return '"pass" if the response meets the rubric, otherwise "fail"'
        return f"an integer from {self.low} (worst) to {self.high} (best)"

    def keys_hint(self) -> str:
        return "p=pass, f=fail" if self.pass_fail else f"{self.low}-{self.high}"
