"""Why each case failed, per step: the two axes kept apart.

Each result of a step falls in one category, checked in this order:

- `error`: the call failed or the primary evaluator gave no verdict (nothing to judge).
- `ok`: the primary evaluator passed it.
- `format`: the content was right (the `correct` evaluator passed) but the form was not (`format`
  failed): a behaviour failure.
- `retrieval_miss`: the content was wrong and the step retrieved, but none of the case's gold context.
- `generation_miss`: the content was wrong although the gold context was retrieved.
- `other`: the content was wrong and nothing was retrieved (or the case names no gold context): the
  model did not know or did not do it.

Without a `correct` evaluator the primary one judges content; without a `format` one there is no
`format` category.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from honed.rag.evaluate.attribution import gold_rank

if TYPE_CHECKING:
    from honed.store import Store

__all__ = ["CATEGORIES", "categorise", "step_failures"]

CATEGORIES = ("ok", "format", "retrieval_miss", "generation_miss", "other", "error")
Key = tuple[str, str, int]


def categorise(
    primary: bool | None,
    correct: bool | None,
    form: bool | None,
    retrieved_ids: list[str] | None,
    gold_ids: list[str],
) -> str:
    """One result's category (see the module docstring). `retrieved_ids` is None when nothing was
    retrieved; `correct` / `form` are None when there is no such evaluator or verdict."""
    if primary is None:
        return "error"
    if primary:
        return "ok"
    content = primary if correct is None else correct
    if content and form is False:
        return "format"
    if retrieved_ids is not None and gold_ids:
        return "generation_miss" if gold_rank(retrieved_ids, gold_ids) is not None else "retrieval_miss"
    return "other"


def step_failures(
    store: Store,
    run_id: str,
    keys: list[Key],
    gold: dict[str, list[str]],
    *,
    primary: str,
    correct: str | None,
    form: str | None,
) -> dict[str, dict[str, int]]:
    """Per variant, the count of each category over its results `keys` (variant, case, sample)."""
    passes = store.runs.passes(run_id, primary)
    content = store.runs.passes(run_id, correct) if correct and correct != primary else None
    shape = store.runs.passes(run_id, form) if form else None
    retrieved = {
        (v, c, s): [ch["id"] for entry in trace for ch in entry.get("chunks", [])]
        for v, c, s, trace in store.runs.retrieved(run_id)
    }
    counts: dict[str, Counter[str]] = {}
    for key in keys:
        category = categorise(
            passes.get(key),
            None if content is None else content.get(key),
            None if shape is None else shape.get(key),
            retrieved.get(key),
            gold.get(key[1], []),
        )
        counts.setdefault(key[0], Counter())[category] += 1
    return {v: {"n": sum(c.values()), **{k: c[k] for k in CATEGORIES}} for v, c in counts.items()}
