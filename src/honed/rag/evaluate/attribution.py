"""Which stage failed a RAG case: retrieval (the answer's source never reached the model) or generation
(it did, and the model still got it wrong).

Per case, from the ids retrieval returned (in rank order), the gold ids (what holds the answer) and whether
the final answer was correct:

- `ok`: the answer is correct (whatever was retrieved; `gold_rank` still says where the gold came back).
- `retrieval_miss`: wrong, and no gold id was among the first `k` retrieved (all of them when `k` is None).
- `generation_miss`: wrong although a gold id was retrieved within `k`.
- `unknown`: correctness is unknown, or the answer is wrong and the case has no gold ids to tell the two
  stages apart.

Retrieval returns chunk ids (`"{doc_id}#{position}"`) while gold labels usually name documents, so a
retrieved id matches a gold id that equals it or equals its document part (the text before the last `#`,
when what follows is a position number). A gold chunk id matches only that chunk.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from honed.errors import InvalidInputError

Kind = Literal["ok", "retrieval_miss", "generation_miss", "unknown"]
KINDS: tuple[Kind, ...] = get_args(Kind)


@dataclass(frozen=True, slots=True)
class Attribution:
    """One case's attribution: `kind`, the 1-based rank of the first retrieved id matching a gold id
    within `k` (None when none did, or there are no gold ids), and a reason in words."""

    kind: Kind
    gold_rank: int | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "gold_rank": self.gold_rank, "reason": self.reason}


def doc_part(retrieved_id: str) -> str | None:
    """The document id inside a chunk id `"{doc_id}#{position}"`, or None when it is not one."""
    doc, sep, position = retrieved_id.rpartition("#")
    return doc if sep and doc and position.isdigit() else None


def gold_rank(retrieved_ids: Sequence[str], gold_ids: Collection[str], k: int | None = None) -> int | None:
    """The 1-based rank of the first of the first `k` retrieved ids that matches a gold id (exactly, or by
    its document part), or None."""
    gold = set(gold_ids)
    for rank, rid in enumerate(retrieved_ids[:k] if k is not None else retrieved_ids, 1):
        if rid in gold or doc_part(rid) in gold:
            return rank
    return None


def attribute(
    retrieved_ids: Sequence[str], gold_ids: Collection[str], correct: bool | None, *, k: int | None = None
) -> Attribution:
    """Attribute one case's outcome to retrieval or generation (see the module docstring)."""
    for name, ids in (("retrieved_ids", retrieved_ids), ("gold_ids", gold_ids)):
        if isinstance(ids, str):
            raise InvalidInputError(
                f"{name} must be a collection of ids, not one string", hint=f"pass [{ids!r}]"
            )
    if k is not None and k < 1:
        raise InvalidInputError(
            f"k must be at least 1, not {k}", hint="leave k out to use every retrieved id"
        )
    within = "retrieved" if k is None else f"in the top {k}"
    rank = gold_rank(retrieved_ids, gold_ids, k) if gold_ids else None
    where = f"gold at rank {rank}" if rank is not None else f"no gold id {within}"
    if correct is None:
        return Attribution("unknown", rank, "correctness unknown")
    if correct:
        return Attribution("ok", rank, f"correct ({where})" if gold_ids else "correct")
    if not gold_ids:
        return Attribution(
            "unknown", None, "wrong, but the case has no gold ids to tell retrieval from generation"
        )
    if rank is None:
        return Attribution("retrieval_miss", None, f"wrong and {where}")
    return Attribution("generation_miss", rank, f"wrong although a gold id was retrieved at rank {rank}")


def _share(count: int, n: int) -> dict[str, Any]:
    from honed.evals.stats import wilson_interval  # scipy takes a second to import; only summaries need it

    ci = wilson_interval(count, n)
    return {
        "count": count,
        "fraction": count / n if n else None,
        "ci_low": ci.low if ci else None,
        "ci_high": ci.high if ci else None,
    }


def summarise(attributions: Iterable[Attribution]) -> dict[str, Any]:
    """Counts and fractions of each kind with Wilson 95% intervals, over all cases (`kinds`) and over the
    wrong answers that could be attributed (`failures`: retrieval vs generation misses).

    `{"n": N, "kinds": {kind: {"count", "fraction", "ci_low", "ci_high"}}, "failures": {"n": M,
    "retrieval_miss": {...}, "generation_miss": {...}}}`; fractions and limits are None when N (M) is 0.
    """
    counts = Counter(a.kind for a in attributions)
    n = sum(counts.values())
    failed = counts["retrieval_miss"] + counts["generation_miss"]
    return {
        "n": n,
        "kinds": {kind: _share(counts[kind], n) for kind in KINDS},
        "failures": {
            "n": failed,
            "retrieval_miss": _share(counts["retrieval_miss"], failed),
            "generation_miss": _share(counts["generation_miss"], failed),
        },
    }
