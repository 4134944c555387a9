"""The human evaluator: scores are the labels people gave in `honed review`, looked up by case id.

An item nobody has labelled yet is an error score ("not labelled"), not a zero, so unlabelled cases drop
out of averages instead of dragging them down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from honed.errors import InvalidInputError
from honed.evals.evaluators.base import EvalInput, Evaluator, Score, passed_at
from honed.evals.evaluators.scale import Scale
from honed.evals.review import Label, read_labels

NOT_LABELLED = "not labelled"


@dataclass(frozen=True, kw_only=True, eq=False)
class Human(Evaluator):
    """`labels`: the label log written by `honed review` (relative to the workspace); `scale` must be the
    one the labels were given on; `threshold` (integer scales) sets `passed`."""

    kind = "human"
    labels: str
    scale: str | list[int] = "1-5"
    threshold: float | None = None
    root: Path | None = field(default=None, metadata={"context": "root"}, repr=False)
    _scale: Scale = field(init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        scale = Scale.parse(self.scale)
        object.__setattr__(self, "_scale", scale)
        object.__setattr__(self, "scale", str(scale))
        if self.threshold is not None and (scale.pass_fail or not scale.contains(self.threshold)):
            raise InvalidInputError(
                f"evaluator {self.name!r}: threshold {self.threshold} does not fit the scale {scale}",
                hint="pass_fail labels pass by themselves; an integer scale needs LOW <= threshold <= HIGH",
            )

    @property
    def path(self) -> Path:
        return (self.root or Path.cwd()) / self.labels

    def load(self) -> dict[str, Label]:
        if not self.path.exists():
            raise InvalidInputError(
                f"evaluator {self.name!r}: label file {self.path} does not exist",
                hint=f"label the outputs first: honed review OUTPUTS.jsonl --out {self.labels}",
            )
        return read_labels(self.path)

    def lookup(self, item: EvalInput, labels: dict[str, Label]) -> Score:
        if item.id is None:
            return Score.failed(NOT_LABELLED, reason="the item has no id to look its label up by")
        label = labels.get(item.id)
        if label is None:
            return Score.failed(NOT_LABELLED, reason=f"no human label for {item.id!r} in {self.labels}")
        if label.scale != str(self._scale):
            return Score.failed(
                "label on another scale", reason=f"labelled on {label.scale}, evaluator expects {self._scale}"
            )
        passed = label.value >= 1 if self._scale.pass_fail else passed_at(label.value, self.threshold)
        by = f" by {label.reviewer}" if label.reviewer else ""
        details = {"reviewer": label.reviewer, "labelled_at": label.at}
        return Score(label.value, passed, f"human label {label.label}{by}", details=details)

    async def evaluate(self, item: EvalInput) -> Score:
        return self.lookup(item, self.load())

    async def evaluate_many(self, items: Sequence[EvalInput]) -> list[Score]:
        labels = self.load()
        return [self.lookup(item, labels) for item in items]
