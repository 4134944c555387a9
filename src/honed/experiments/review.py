"""Human review of a run's outputs, with the labels stored as the run's `human` scores.

`honed review --run RUN` walks a person through the run's results (one item per variant x case x sample)
and writes each label as a score row of the evaluator `human`, next to the automatic evaluators' scores,
so `honed experiments compare` reports it with the same statistics (and judges can be calibrated
against it). An undo deletes that score; labelled items are skipped when the command is run again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from honed.datasets import get_dataset
from honed.errors import InvalidInputError
from honed.evals.evaluators.scale import Scale
from honed.evals.review import ReviewItem
from honed.hashing import content_hash

if TYPE_CHECKING:
    from honed.store import Store
    from honed.store.runs import Run

HUMAN = "human"
_SEP = " | "


def item_id(variant: str, case_id: str, sample: int) -> str:
    return f"{variant}{_SEP}{case_id}{_SEP}{sample}"


def _split(item: str) -> tuple[str, str, int]:
    variant, case_id, sample = item.rsplit(_SEP, 2)
    return variant, case_id, int(sample)


def run_items(store: Store, run_ref: str, *, variant: str | None = None) -> tuple[Run, list[ReviewItem]]:
    """The run's successful results as review items (input = the case's inputs)."""
    run = store.runs.get(run_ref)
    spec = run.spec
    variants = [v["id"] for v in spec["variants"]]
    if variant is not None and variant not in variants:
        raise InvalidInputError(
            f"run {run.id} has no variant {variant!r}", hint=f"variants: {', '.join(variants)}"
        )
    name = spec["dataset"]["ref"].split("@", 1)[0]
    dataset = get_dataset(store, f"{name}@{spec['dataset']['hash']}")
    cases = {c.id: c for c in dataset.cases}
    items = [
        ReviewItem(
            id=item_id(r["variant"], r["case_id"], int(r["sample_index"])),
            output=r["output"] or "",
            input=cases[r["case_id"]].inputs if r["case_id"] in cases else None,
            reference=cases[r["case_id"]].reference if r["case_id"] in cases else None,
        )
        for r in store.runs.results(run.id)
        if r["error"] is None and (variant is None or r["variant"] == variant)
    ]
    return run, items


def labelled(store: Store, run: Run) -> set[str]:
    """Items of the run that already have a human score."""
    return {
        item_id(s["variant"], s["case_id"], int(s["sample_index"]))
        for s in store.runs.scores(run.id)
        if s["evaluator"] == HUMAN
    }


def store_recorder(store: Store, run: Run, scale: Scale) -> Callable[[dict[str, Any]], None]:
    """A `record` callback for `review_loop` that writes labels (and undos) to the run's scores."""
    version = content_hash({"type": HUMAN, "scale": str(scale)})
    pass_fail = str(scale) == "pass_fail"

    def record(rec: dict[str, Any]) -> None:
        variant, case_id, sample = _split(str(rec["id"]))
        key = {"run_id": run.id, "variant": variant, "case_id": case_id, "sample_index": sample}
        if rec.get("undo"):
            store.runs.delete_score(run.id, variant, case_id, sample, HUMAN)
            return
        value = float(rec["value"])
        store.runs.put_scores(
            [
                {
                    **key,
                    "evaluator": HUMAN,
                    "evaluator_version": version,
                    "value": value,
                    "passed": (value >= 1.0) if pass_fail else None,
                    "reason": f"labelled {rec['label']!r} by {rec.get('reviewer') or 'a reviewer'}",
                    "error": None,
                    "raw": None,
                    "details": {"scale": str(scale), "reviewer": rec.get("reviewer"), "at": rec.get("at")},
                }
            ]
        )

    return record
