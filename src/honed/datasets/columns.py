"""How the fields of a file's rows map onto a case.

One mapping serves both formats. A JSONL row is an object whose values are JSON; a CSV row is a header-keyed
dict of strings (`cells=True`), where an empty cell means "not given" and structured fields are spelled as
text (a JSON object for `metadata`, a JSON array or `a;b;c` for `context_ids`).

Two shapes of row are accepted:
    structured  {"id": .., "inputs": {..}, "reference": .., "metadata": {..}, "context_ids": [..],
                 "split": ..}
    flat        {"question": .., "answer": ..} with the mapping naming the input fields (`inputs`) or taking
                every field it does not otherwise map (`rest_as_inputs`, the default for CSV)
Fields the mapping does not account for are errors, so that a typo in a column name cannot silently drop
data; `ignore` names fields to leave out on purpose.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from honed.datasets.case import Case, case_from_fields

#: The whole-object fields of a structured row; not renamable.
INPUTS_FIELD = "inputs"
METADATA_FIELD = "metadata"


@dataclass(frozen=True, slots=True)
class Columns:
    """Which field of a row holds what. The defaults read the structured form (what export writes)."""

    inputs: tuple[str, ...] = ()  # flat fields that are inputs
    rest_as_inputs: bool = False  # every field not otherwise mapped (or ignored) is an input
    id: str = "id"
    reference: str = "reference"
    split: str = "split"
    context_ids: str = "context_ids"
    metadata: tuple[str, ...] = ()  # flat fields copied into metadata under their own names
    ignore: tuple[str, ...] = ()

    def named(self) -> list[str]:
        """Fields the mapping names explicitly (they must exist in a CSV header)."""
        return [*self.inputs, *self.metadata]

    def check(self) -> None:
        """Reject a mapping that gives one field two roles."""
        roles: dict[str, str] = {}
        singles = [("id", self.id), ("reference", self.reference), ("split", self.split)]
        singles.append(("context_ids", self.context_ids))
        pairs = [*singles, *(("input", f) for f in self.inputs), *(("metadata", f) for f in self.metadata)]
        pairs += [("ignore", f) for f in self.ignore]
        for role, field in pairs:
            if field in roles and roles[field] != role:
                raise ValueError(f"field {field!r} is mapped twice (as {roles[field]} and as {role})")
            roles[field] = role


def row_to_case(row: dict[str, Any], cols: Columns, *, cells: bool) -> Case:
    """The case a row describes. Raises ValueError with the reason (the reader adds file and line)."""
    used = {*cols.ignore}
    fields: dict[str, Any] = {}

    def take(key: str) -> Any:
        used.add(key)
        value = row[key]
        return None if cells and value == "" else value

    for target, key in (("id", cols.id), ("reference", cols.reference), ("split", cols.split)):
        if key in row:
            fields[target] = take(key)
    if cols.context_ids in row:
        raw = take(cols.context_ids)
        if raw is not None:  # an empty cell or null: no gold contexts
            fields["context_ids"] = _context_ids(raw) if cells else raw
    metadata: dict[str, Any] = {}
    if METADATA_FIELD in row and METADATA_FIELD not in cols.inputs and METADATA_FIELD not in cols.metadata:
        raw = take(METADATA_FIELD)
        if cells and raw is not None:
            raw = _json_cell(raw, METADATA_FIELD, dict, "a JSON object")
        if raw is not None and not isinstance(raw, dict):
            raise ValueError(f"metadata must be an object, not {type(raw).__name__}")
        metadata.update(raw or {})
    _add_fields(
        row, cols.metadata, metadata, used, option="--metadata", what="metadata key", obj=METADATA_FIELD
    )
    if metadata:
        fields["metadata"] = metadata
    fields["inputs"] = _inputs(row, cols, used, cells=cells)
    unknown = [key for key in row if key not in used]
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise ValueError(
            f"unknown field(s) {names}: map them with --input/--metadata/--ignore"
            + (", or use --inputs-from-extra to make every unmapped field an input" if not cells else "")
        )
    return case_from_fields(fields)


def _inputs(row: dict[str, Any], cols: Columns, used: set[str], *, cells: bool) -> Any:
    inputs: dict[str, Any] = {}
    structured = not cells and INPUTS_FIELD in row and INPUTS_FIELD not in cols.inputs
    if structured:
        used.add(INPUTS_FIELD)
        given = row[INPUTS_FIELD]
        if not isinstance(given, dict):
            raise ValueError(f"inputs must be an object, not {type(given).__name__}")
        inputs.update(given)
    flat = list(cols.inputs)
    if cols.rest_as_inputs:
        flat += [key for key in row if key not in used and key not in cols.inputs]
    _add_fields(row, flat, inputs, used, option="--input", what="input", obj=INPUTS_FIELD)
    if not inputs and not structured and not flat:
        fields = ", ".join(repr(k) for k in row if k not in used) or "none besides those mapped"
        raise ValueError(
            f"no inputs (unmapped fields: {fields}): name the input fields with --input FIELD, "
            "use --inputs-from-extra, or give an 'inputs' object"
        )
    return inputs


def _add_fields(
    row: dict[str, Any],
    keys: Sequence[str],
    into: dict[str, Any],
    used: set[str],
    *,
    option: str,
    what: str,
    obj: str,
) -> None:
    """Copy the fields `keys` (named by `option`) of `row` into `into`, which may already hold what the
    row's own `obj` object (`inputs`, `metadata`) gave: a key in both is an error, not a silent choice."""
    for key in keys:
        if key not in row:
            raise ValueError(f"no field {key!r} (named by {option})")
        if key in into:
            raise ValueError(f"{what} {key!r} is given twice (in the {obj} object and as a field)")
        into[key] = row[key]
        used.add(key)


def _context_ids(cell: str) -> list[str]:
    if cell.lstrip().startswith("["):
        value: list[str] = _json_cell(cell, "context_ids", list, "a JSON array")
        return value  # the Case checks the items
    return [part.strip() for part in cell.split(";") if part.strip()]


def _json_cell(cell: str, field: str, kind: type, what: str) -> Any:
    try:
        value = json.loads(cell)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{field} cell is not valid JSON ({exc.msg}); it must hold {what}") from None
    if not isinstance(value, kind):
        raise ValueError(f"{field} cell must hold {what}")
    return value
