"""Deterministic train/dev/test splits.

A case's split is a pure function of (seed, its id) -- or, with `by`, of (seed, its group's value) --
hashed to a number in [0, 1) and placed by the cumulative ratios. Nothing depends on the other cases, so
adding cases to a dataset never moves an existing case to another split (a dev case never leaks into
train on the next import), and the same seed gives the same splits on every machine.

The price of that stability is that split sizes follow the ratios only on average: 0.5/0.5 of 20 cases
can give 9/11 (sizes that are exact for one import would move cases when the next adds some). The
sizes are reported, with a note when they are not the exact division.

Grouping (`by="metadata.product"`) sends every case of a group to one split, so that near-duplicates of
one product, user or document cannot sit on both sides of the train/test line. The price of hashing
groups instead of packing them is that with few groups the sizes only approximate the ratios; the counts
are reported so that is visible.

Splits given explicitly in the file always win. With grouping, a group whose explicit splits agree pulls
its unassigned members into that split, which keeps the group whole.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from honed.datasets.case import SPLIT_NAME, Case
from honed.errors import InvalidInputError
from honed.hashing import canonical_json

DEFAULT_RATIOS: tuple[tuple[str, float], ...] = (("train", 0.6), ("dev", 0.2), ("test", 0.2))
#: Below this many groups, say that the split sizes cannot follow the ratios closely.
FEW_GROUPS = 10


@dataclass(frozen=True, slots=True)
class SplitPlan:
    """How to assign splits to cases that have none: ratios, a seed, and optionally a grouping field."""

    ratios: tuple[tuple[str, float], ...] = DEFAULT_RATIOS
    seed: int = 0
    by: str | None = None

    def describe(self) -> str:
        parts = ",".join(f"{name}={share:g}" for name, share in self.ratios)
        return f"{parts} seed={self.seed}" + (f" by {self.by}" if self.by else "")


def parse_ratios(text: str) -> tuple[tuple[str, float], ...]:
    """`"train=0.6,dev=0.2,test=0.2"` (or percentages summing to 100) -> ((name, share), ...)."""
    hint = "e.g. --split-ratios train=0.6,dev=0.2,test=0.2"
    out: list[tuple[str, float]] = []
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        name = name.strip()
        try:
            share = float(value)
        except ValueError:
            share = math.nan
        if not sep or not SPLIT_NAME.match(name) or not math.isfinite(share) or share < 0:
            raise InvalidInputError(f"cannot read {part.strip()!r} in the split ratios {text!r}", hint=hint)
        if any(name == seen for seen, _ in out):
            raise InvalidInputError(f"split {name!r} appears twice in {text!r}", hint=hint)
        out.append((name, share))
    total = sum(share for _, share in out)
    scale = 100.0 if abs(total - 100.0) < 1e-6 else 1.0
    if abs(total / scale - 1.0) > 1e-6:
        raise InvalidInputError(f"the split ratios {text!r} add up to {total:g}, not 1", hint=hint)
    return tuple((name, share / scale) for name, share in out)


def position(key: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by `key` and `seed`."""
    digest = hashlib.sha256(f"honed.split\x00{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def pick(key: str, plan: SplitPlan) -> str:
    """The split `key` falls in under `plan`'s ratios."""
    u = position(key, plan.seed)
    cumulative = 0.0
    for name, share in plan.ratios:
        cumulative += share
        if u < cumulative:
            return name
    return next(name for name, share in reversed(plan.ratios) if share > 0)  # rounding at the top end


def _approximate_counts(assigned: list[str | None], plan: SplitPlan) -> list[str]:
    """A note when the hashed splits' sizes differ from what the ratios give exactly (9/11 for 0.5/0.5 of
    20), so that nobody mistakes it for a bug or counts on exact sizes."""
    if not assigned:
        return []
    counts = [sum(1 for a in assigned if a == name) for name, _ in plan.ratios]
    exact = _largest_remainder(len(assigned), [share for _, share in plan.ratios])
    if counts == exact:
        return []
    names = [name for name, _ in plan.ratios]
    got = ", ".join(f"{name} {n}" for name, n in zip(names, counts, strict=True))
    want = "/".join(str(n) for n in exact)
    return [
        f"split sizes are {got}, not exactly {want}: each case's split comes from a hash of its id, so "
        "that a case keeps its split when cases are added; the sizes follow the ratios only on average"
    ]


def _largest_remainder(n: int, shares: list[float]) -> list[int]:
    """`n` items divided by `shares` in whole numbers that add up to `n` (largest remainder first)."""
    quotas = [n * share for share in shares]
    out = [math.floor(q) for q in quotas]
    by_remainder = sorted(range(len(shares)), key=lambda i: quotas[i] - out[i], reverse=True)
    for i in by_remainder[: n - sum(out)]:
        out[i] += 1
    return out


def group_value(case: Case, field: str) -> Any:
    """The value of `field` for `case`: `metadata.KEY`, `inputs.KEY`, `id`, `reference`, or a bare KEY
    looked up in metadata, then inputs. Raises KeyError if the case has none."""
    if field in ("id", "reference"):
        value = getattr(case, field)
        if value is None:
            raise KeyError(field)
        return value
    source, dot, key = field.partition(".")
    if dot and source == "metadata":
        return case.metadata[key]
    if dot and source == "inputs":
        return case.inputs[key]
    for where in (case.metadata, case.inputs):
        if field in where:
            return where[field]
    raise KeyError(field)


def assign_splits(
    cases: list[Case], plan: SplitPlan, *, where: list[str] | None = None
) -> tuple[list[Case], list[str]]:
    """`cases` with a split for every case that had none, and warnings worth showing.

    `where[i]` names case i's origin (`FILE:LINE`) for errors; a case without the grouping field is one.
    """
    if plan.by is None:
        picked = [c if c.split is not None else c.with_split(pick(f"case\x00{c.id}", plan)) for c in cases]
        hashed = [p.split for p, c in zip(picked, cases, strict=True) if c.split is None]
        return picked, _approximate_counts(hashed, plan)
    keys: list[str] = []
    for index, case in enumerate(cases):
        try:
            keys.append(canonical_json(group_value(case, plan.by)))
        except KeyError:
            origin = where[index] if where else f"case {case.id!r}"
            raise InvalidInputError(
                f"{origin}: case {case.id!r} has no {plan.by!r} to group by",
                hint="give every case that field, or an explicit split",
            ) from None
    explicit: dict[str, set[str]] = {}
    for key, case in zip(keys, cases, strict=True):
        if case.split is not None:
            explicit.setdefault(key, set()).add(case.split)
    warnings: list[str] = []
    out: list[Case] = []
    for key, case in zip(keys, cases, strict=True):
        if case.split is not None:
            out.append(case)
            continue
        agreed = explicit.get(key, set())
        split = next(iter(agreed)) if len(agreed) == 1 else pick(f"group\x00{key}", plan)
        out.append(case.with_split(split))
    mixed = sorted(key for key, splits in explicit.items() if len(splits) > 1)
    if mixed:
        warnings.append(
            f"{len(mixed)} group(s) of {plan.by} span several splits through explicit split values "
            f"in the file (e.g. {mixed[0]}): those groups leak across splits"
        )
    groups = len(set(keys))
    if groups < FEW_GROUPS:
        warnings.append(
            f"only {groups} group(s) of {plan.by}: split sizes follow whole groups, so they only "
            "approximate the ratios"
        )
    return out, warnings
