"""A case: one row of a dataset.

A case's `id` is what later features (results, comparisons, splits) key on, so it must be stable. A file may
give ids; when it does not, the id is derived from the case's *inputs* alone (`c-` + 16 hex digits of their
content hash), so the same question keeps the same id across files and versions, editing its reference
keeps its id, and two cases with identical inputs collide loudly instead of silently duplicating a row.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from honed.hashing import content_hash
from honed.userfiles import describe

#: Split names: "train", "dev", "test" or any custom name of this shape.
SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
STANDARD_SPLITS = ("train", "dev", "test")
#: The key that counts cases without a split in per-split summaries.
UNASSIGNED = "(none)"


class Case(BaseModel):
    """One case: the template variables (`inputs`), an optional expected output (`reference`, a string or
    any JSON value), free-form `metadata`, gold context ids for retrieval evaluation, and a split."""

    # Numbers are accepted as ids ({"id": 7}) and stored as strings, so ids compare the same everywhere.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    id: str = Field(min_length=1, max_length=200)
    inputs: dict[str, Any]
    reference: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    context_ids: list[str] = Field(default_factory=list)
    split: str | None = None

    @field_validator("inputs")
    @classmethod
    def _input_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:  # said here rather than by min_length, to say why
            raise ValueError("is empty (a case needs at least one input variable)")
        for key in value:
            if not key:
                raise ValueError("an input name is empty")
        return value

    @field_validator("split")
    @classmethod
    def _split_name(cls, value: str | None) -> str | None:
        if value is not None and not SPLIT_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a split name (use letters, digits, '.', '_', '-', e.g. train, dev, test)"
            )
        return value

    def to_dict(self) -> dict[str, Any]:
        """The stored and exported form: empty optional fields are left out, so that a file that omits
        them and one that spells them out (`"metadata": {}`) are the same content and the same version."""
        out: dict[str, Any] = {"id": self.id, "inputs": self.inputs}
        if self.reference is not None:
            out["reference"] = self.reference
        if self.metadata:
            out["metadata"] = self.metadata
        if self.context_ids:
            out["context_ids"] = self.context_ids
        if self.split is not None:
            out["split"] = self.split
        return out

    def with_split(self, split: str | None) -> Case:
        return self.model_copy(update={"split": split})


def derived_id(inputs: dict[str, Any]) -> str:
    """The id of a case that has none: a hash of its inputs (see the module docstring)."""
    return "c-" + content_hash(inputs).split(":", 1)[1][:16]


def case_from_fields(fields: dict[str, Any]) -> Case:
    """Validate `fields` into a Case, deriving the id when absent. Raises ValueError with a readable reason
    (the readers add the file and line)."""
    if fields.get("id") is None and isinstance(fields.get("inputs"), dict):
        fields = {**fields, "id": derived_id(fields["inputs"])}
    try:
        return Case.model_validate(fields)
    except ValidationError as exc:
        raise ValueError(describe(exc)) from None
