"""The evaluator contract: an `EvalInput` in, a `Score` out.

One method, async: every evaluator has `async evaluate(item) -> Score` (and `evaluate_many`, which a judge
overrides to send all its model calls through the client at once, and the embedding evaluator to batch).
Rather than sync/async twins, the plain evaluators subclass `SyncEvaluator` and write `score(item)`;
every evaluator is still a plain callable, `ev(item) -> Score`, run synchronously (outside an event loop).

An evaluator is a frozen dataclass whose fields are its configuration: `spec()` is those fields plus its
type, `build_evaluator(spec)` rebuilds it, and `version` is the content hash of that spec (without the
display name), so each result row records exactly which evaluator produced it. Fields whose metadata names
a `context` attribute (the model client, the folder user files live in) come from the `BuildContext`
instead of the spec, and are not part of the version.

A `Score` that could not be judged carries `error` (and `raw`, what the evaluator got) with `value=None`:
never a silent NaN or zero.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import math
import typing
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from pydantic import TypeAdapter, ValidationError

from honed.errors import InvalidInputError
from honed.hashing import content_hash

if TYPE_CHECKING:
    from honed.models.client import ModelClient


@dataclass(frozen=True, slots=True)
class Score:
    """One evaluator's verdict on one item.

    `value` is the score (None only when `error` is set); `passed` is set where a threshold (or a
    pass/fail scale) applies; `reason` says why in words; `details` keeps per-evaluator detail (samples,
    agreement, matched spans, costs). `error` means the evaluator could not judge; `raw` keeps what it got.
    """

    value: float | None
    passed: bool | None = None
    reason: str = ""
    error: str | None = None
    raw: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.error is not None and (self.value is not None or self.passed is not None):
            raise ValueError("a Score with an error has no value and no pass/fail")
        if self.error is None and self.value is None:
            raise ValueError("a Score needs a value unless it records an error")
        if self.value is not None and not math.isfinite(self.value):
            raise ValueError(f"a Score's value must be finite, not {self.value}")

    @classmethod
    def failed(
        cls, error: str, *, reason: str = "", raw: str | None = None, details: dict[str, Any] | None = None
    ) -> Score:
        """The evaluator could not judge this item (kept as an error, never as a number)."""
        return cls(None, None, reason or error, error, raw, dict(details or {}))

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "passed": self.passed,
            "reason": self.reason,
            "error": self.error,
            "raw": self.raw,
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class Trajectory:
    """What an agent did over a trace: the tool calls its model steps asked for, in order (`{"id",
    "name", "arguments"}`), the number of model calls (steps), their tokens, and the final answer."""

    tool_calls: tuple[dict[str, Any], ...]
    steps: int
    input_tokens: int | None
    output_tokens: int | None
    final_output: str


@dataclass(frozen=True, slots=True)
class EvalInput:
    """What an evaluator sees of one case.

    `reference` may be a string, a list of acceptable strings (text evaluators take the best match), a
    number or any JSON value. `parsed` is the output's JSON when the call asked for structured output.
    `baseline` is the other output for pairwise judges (the baseline run's answer to the same case).
    `tool_calls` are the tools the model asked to call ({"id", "name", "arguments"}), when it had tools.
    `latency_s` (time in the model) and `cost_usd` describe the call that produced the output, where known.
    """

    output: str
    inputs: dict[str, Any] = field(default_factory=dict)
    reference: Any = None
    parsed: Any = None
    context: list[str] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    baseline: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    latency_s: float | None = None
    cost_usd: float | None = None
    #: the whole trace the output ends (an agent's steps), where the output is a logged trace's last
    #: generation; None for one call, which trace evaluators read as a trajectory of one step
    trace: Trajectory | None = None

    def references(self) -> list[str] | None:
        """The reference as a list of strings, or None when the case has none."""
        if self.reference is None:
            return None
        refs = self.reference if isinstance(self.reference, list | tuple) else [self.reference]
        return [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in refs]


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What evaluators need beyond their spec: a model client (judges) and the folder relative paths in
    specs (a Python file, a labels file) are resolved against (default: the current folder)."""

    client: ModelClient | None = None
    root: Path | None = None


NO_REFERENCE = "no reference to compare against"


def passed_at(value: float, threshold: float | None) -> bool | None:
    """`value >= threshold`, or None where no threshold applies."""
    return None if threshold is None else value >= threshold


def binary(ok: bool, reason: str, **details: Any) -> Score:
    """A 1.0/0.0 score that passes when `ok`."""
    return Score(1.0 if ok else 0.0, ok, reason, details=details)


@dataclass(frozen=True, kw_only=True, eq=False)
class Evaluator(ABC):
    """Base of every evaluator. Subclasses are `@dataclass(frozen=True, kw_only=True, eq=False)` whose
    fields are their configuration, set `kind`, and implement `evaluate` (or `score`, via SyncEvaluator)."""

    kind: ClassVar[str] = ""
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.kind)

    def spec(self) -> dict[str, Any]:
        """The evaluator's type and configuration; `build_evaluator(ev.spec())` rebuilds it."""
        out: dict[str, Any] = {"type": self.kind}
        for f in dataclasses.fields(self):
            if f.init and not f.metadata.get("context"):
                out[f.name] = copy.deepcopy(getattr(self, f.name))  # callers may edit it; we must not change
        return out

    def identity(self) -> dict[str, Any]:
        """What the version hashes: the spec without the display name. Subclasses add what the spec only
        points at (e.g. the source of a user's Python file), so a changed file is a new version."""
        spec = self.spec()
        spec.pop("name", None)
        return spec

    @cached_property
    def version(self) -> str:
        return content_hash(self.identity())

    @abstractmethod
    async def evaluate(self, item: EvalInput) -> Score:
        """Score one item. Never raises for a bad item: returns `Score.failed(...)` instead."""

    async def evaluate_many(self, items: Sequence[EvalInput]) -> list[Score]:
        """Score many items (concurrently by default); the result is in the order of `items`."""
        return list(await asyncio.gather(*(self.evaluate(item) for item in items)))

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release what evaluation opened (a judge's provider connections)."""

    def run(self, items: Sequence[EvalInput]) -> list[Score]:
        """Synchronous `evaluate_many`, for scripts and the CLI (not from inside a running event loop)."""

        async def main() -> list[Score]:
            try:
                return await self.evaluate_many(items)
            finally:
                await self.aclose()

        return asyncio.run(main())

    def __call__(self, item: EvalInput) -> Score:
        return self.run([item])[0]

    @classmethod
    def from_spec(cls, config: Mapping[str, Any], context: BuildContext) -> Self:
        """Build from a spec's keys (without `type`). Unknown or missing keys and values of the wrong
        type are `InvalidInputError`s that name the key and list what the evaluator accepts."""
        name = config.get("name")
        where = f"evaluator {name!r} ({cls.kind})" if name else f"evaluator {cls.kind!r}"
        fields = [f for f in dataclasses.fields(cls) if f.init]
        spec_fields = {f.name: f for f in fields if not f.metadata.get("context")}
        accepted = ", ".join(spec_fields)
        unknown = sorted(set(config) - set(spec_fields))
        if unknown:
            raise InvalidInputError(
                f"{where}: unknown key(s) {', '.join(map(repr, unknown))}",
                hint=f"{cls.kind} accepts: {accepted}",
            )
        missing = [
            n
            for n, f in spec_fields.items()
            if n not in config
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise InvalidInputError(
                f"{where}: missing key(s) {', '.join(map(repr, missing))}",
                hint=f"{cls.kind} accepts: {accepted}",
            )
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for key, value in config.items():
            try:
                kwargs[key] = TypeAdapter(hints[key]).validate_python(value, strict=True)
            except ValidationError:
                expected = str(hints[key]).replace("typing.", "")
                raise InvalidInputError(
                    f"{where}: {key!r} must be {expected}, not {value!r}", hint=f"fix {key!r} in the spec"
                ) from None
        for f in fields:
            if f.metadata.get("context"):
                kwargs[f.name] = getattr(context, f.metadata["context"])
        return cls(**kwargs)


@dataclass(frozen=True, kw_only=True, eq=False)
class SyncEvaluator(Evaluator):
    """An evaluator that is a plain function of the item: write `score`; `evaluate` and calls use it."""

    @abstractmethod
    def score(self, item: EvalInput) -> Score:
        """Score one item synchronously; never raises for a bad item."""

    async def evaluate(self, item: EvalInput) -> Score:
        return self.score(item)

    async def evaluate_many(self, items: Sequence[EvalInput]) -> list[Score]:
        return [self.score(item) for item in items]

    def __call__(self, item: EvalInput) -> Score:
        return self.score(item)
