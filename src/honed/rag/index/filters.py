"""Metadata filters, one syntax for every store (a subset of Chroma's `where`).

    {"source": "faq.md"}                     equality
    {"year": {"$gte": 2020}}                 $eq $ne $gt $gte $lt $lte
    {"lang": {"$in": ["en", "de"]}}          $in $nin
    {"lang": "en", "year": {"$gt": 2020}}    several keys: all must hold

Vector stores translate a filter into their own query language; BM25 and anything else apply `matches`
to each chunk's metadata. `check` rejects anything outside this syntax with a message saying what is
allowed, so a typo never becomes a filter that silently matches nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from honed.errors import InvalidInputError

OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin")
_SCALAR = (str, int, float, bool)


class UnknownFieldWarning(UserWarning):
    """A filter names a metadata field that no chunk of the knowledge base has: it matches nothing (or,
    with $ne/$nin, everything), which is almost always a typo or front matter that was never ingested."""


def unknown_fields_message(unknown: list[str], known: set[str], where: str) -> str:
    """One line naming the `unknown` filter fields, the closest known field, and the fields there are."""
    import difflib

    first = unknown[0]
    close = difflib.get_close_matches(first, sorted(known), n=1)
    listed = ", ".join(sorted(known)[:12]) + (", ..." if len(known) > 12 else "")
    fields = "fields " + ", ".join(repr(u) for u in unknown) if len(unknown) > 1 else f"field {first!r}"
    guess = f"; did you mean {close[0]!r}?" if close else ""
    return f"filter {fields} is in no document of {where}{guess} (fields: {listed or 'none'})"


def check(where: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The filter in normal form `{field: {op: value}}`; raises `InvalidInputError` if malformed."""
    if where is None:
        return {}
    if not isinstance(where, Mapping):
        raise InvalidInputError(
            f"a filter must be a mapping, not {where!r}", hint='e.g. {"source": "faq.md"}'
        )
    out: dict[str, dict[str, Any]] = {}
    for key, cond in where.items():
        if not isinstance(key, str) or not key or key.startswith("$"):
            raise InvalidInputError(
                f"filter key {key!r} is not a metadata field",
                hint="several keys are ANDed; $and/$or are not supported",
            )
        ops = dict(cond) if isinstance(cond, Mapping) else {"$eq": cond}
        if not ops:
            raise InvalidInputError(f"filter on {key!r} is empty", hint=f"operators: {', '.join(OPERATORS)}")
        for op, value in ops.items():
            if op not in OPERATORS:
                raise InvalidInputError(
                    f"unknown filter operator {op!r} on {key!r}", hint=f"operators: {', '.join(OPERATORS)}"
                )
            if op in ("$in", "$nin"):
                if not isinstance(value, list) or not all(isinstance(v, _SCALAR) for v in value):
                    raise InvalidInputError(f"filter {key} {op} needs a list of strings or numbers")
            elif not isinstance(value, _SCALAR):
                raise InvalidInputError(f"filter {key} {op} needs a string, number or boolean, not {value!r}")
            elif op in ("$gt", "$gte", "$lt", "$lte") and isinstance(value, bool | str):
                raise InvalidInputError(f"filter {key} {op} needs a number")
        out[key] = ops
    return out


def matches(metadata: Mapping[str, Any], where: Mapping[str, Any] | None) -> bool:
    """Whether `metadata` satisfies `where` (a missing field satisfies only $ne and $nin)."""
    for key, ops in check(where).items():
        present = key in metadata
        value = metadata.get(key)
        for op, want in ops.items():
            if not _holds(op, present, value, want):
                return False
    return True


def _holds(op: str, present: bool, value: Any, want: Any) -> bool:
    if op == "$ne":
        return not present or value != want
    if op == "$nin":
        return not present or value not in want
    if not present:
        return False
    if op == "$eq":
        return bool(value == want)
    if op == "$in":
        return value in want
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    if op == "$gt":
        return bool(value > want)
    if op == "$gte":
        return bool(value >= want)
    if op == "$lt":
        return bool(value < want)
    return bool(value <= want)
