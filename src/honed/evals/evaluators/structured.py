"""Structure evaluators: valid JSON, JSON-schema conformance (Draft 2020-12) and numeric tolerance.

JSON checks are strict by default: the whole output must be JSON, because "the model answered in the right
format" is what they measure. `allow_fence` accepts a ```json fence around it, as the client's structured
output parsing does.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from honed.errors import InvalidInputError
from honed.evals.evaluators.base import NO_REFERENCE, EvalInput, Score, SyncEvaluator, binary

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def _load(text: str, allow_fence: bool) -> tuple[Any, str | None]:
    """(value, None) or (None, why it is not JSON)."""
    m = _FENCE.match(text) if allow_fence else None
    body = m.group(1) if m else text
    try:
        return json.loads(body), None
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"


def json_path(parts: Any) -> str:
    """A JSON path for an error location: `$.items[2].name`."""
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


@dataclass(frozen=True, kw_only=True, eq=False)
class JsonValid(SyncEvaluator):
    """The output parses as JSON."""

    kind = "json_valid"
    allow_fence: bool = False

    def score(self, item: EvalInput) -> Score:
        value, why = _load(item.output, self.allow_fence)
        if why is not None:
            return binary(False, f"output is {why}")
        return binary(True, f"output is valid JSON ({type(value).__name__})")


@dataclass(frozen=True, kw_only=True, eq=False)
class JsonSchema(SyncEvaluator):
    """The output (or its already-parsed JSON) conforms to `schema` (Draft 2020-12). The reason names the
    most relevant error's path; `details.errors` lists up to ten."""

    kind = "json_schema"
    schema: dict[str, Any]
    allow_fence: bool = False
    # Any, not the jsonschema type: the evaluator registry reads these hints at run time.
    _validator: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Imported here, as in honed.prompts.spec: jsonschema costs ~80 ms, and every command that
        # reads a run imports the evaluators.
        import jsonschema

        super().__post_init__()
        try:
            jsonschema.Draft202012Validator.check_schema(self.schema)
        except jsonschema.SchemaError as exc:
            raise InvalidInputError(
                f"evaluator 'json_schema': invalid schema at {json_path(exc.absolute_path)}: {exc.message}",
                hint="see https://json-schema.org/draft/2020-12",
            ) from None
        object.__setattr__(self, "_validator", jsonschema.Draft202012Validator(self.schema))

    def score(self, item: EvalInput) -> Score:
        if item.parsed is not None:
            doc = item.parsed
        else:
            doc, why = _load(item.output, self.allow_fence)
            if why is not None:
                return binary(False, f"output is {why}")
        errors = list(self._validator.iter_errors(doc))
        if not errors:
            return binary(True, "output conforms to the schema")
        from jsonschema.exceptions import best_match

        first = best_match(errors)
        listed = [{"path": json_path(e.absolute_path), "message": e.message} for e in errors[:10]]
        reason = f"{len(errors)} schema error(s); at {json_path(first.absolute_path)}: {first.message}"
        return binary(False, reason, errors=listed)


# A number as people and models write it: -1,234.5 / 3e-4 / .5 (thousands commas only in groups of three).
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")


def first_number(text: str) -> float | None:
    """The first number written in `text`, or None."""
    for m in _NUMBER.finditer(text):
        token = m.group(0)
        if any(ch.isdigit() for ch in token.split("e")[0].split("E")[0]):
            try:
                return float(token.replace(",", ""))
            except ValueError:
                continue
    return None


@dataclass(frozen=True, kw_only=True, eq=False)
class Numeric(SyncEvaluator):
    """The first number in the output is within tolerance of the reference:
    |out - ref| <= max(rel_tol * max(|out|, |ref|), abs_tol) (Python's `math.isclose`). The defaults
    (rel 1e-9, abs 0) mean "equal up to float rounding"."""

    kind = "numeric"
    abs_tol: float = 0.0
    rel_tol: float = 1e-9

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.abs_tol < 0 or self.rel_tol < 0:
            raise InvalidInputError("evaluator 'numeric': tolerances must be >= 0", hint="e.g. abs_tol: 0.01")

    def score(self, item: EvalInput) -> Score:
        ref = item.reference
        if ref is None:
            return Score.failed(NO_REFERENCE)
        if isinstance(ref, bool) or not isinstance(ref, int | float):
            ref = first_number(str(ref))
            if ref is None:
                return Score.failed("reference is not a number", raw=str(item.reference))
        out = first_number(item.output)
        if out is None:
            return binary(False, "output contains no number", reference=ref)
        ok = math.isclose(out, ref, rel_tol=self.rel_tol, abs_tol=self.abs_tol)
        diff = abs(out - ref)
        reason = f"{out:g} {'is' if ok else 'is not'} within tolerance of {ref:g} (off by {diff:g})"
        return binary(ok, reason, number=out, reference=ref, abs_error=diff)
