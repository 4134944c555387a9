"""Property tests: any case content survives JSONL export/import and CSV import exactly.

Content includes unicode (U+2028, combining marks, astral characters), the delimiter, quotes, CR and LF
inside cells, and arbitrary nested JSON in the JSONL-only fields.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from honed.datasets import Case, derived_id, read_cases, write_jsonl
from honed.hashing import content_hash

RESERVED = {"id", "reference", "split", "context_ids", "metadata", "inputs"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
split_names = (
    st.none()
    | st.sampled_from(["train", "dev", "test"])
    | st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,10}\Z")
)
ids = st.text(min_size=1, max_size=30)


@st.composite
def json_cases(draw: st.DrawFn) -> Case:
    return Case(
        id=draw(ids),
        inputs=draw(st.dictionaries(st.text(min_size=1, max_size=8), json_values, min_size=1, max_size=3)),
        reference=draw(json_values),
        metadata=draw(st.dictionaries(st.text(max_size=6), json_values, max_size=3)),
        context_ids=draw(st.lists(st.text(max_size=10), max_size=3)),
        split=draw(split_names),
    )


def _read(name: str, data: str | bytes, **kw: Any) -> list[Case]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return read_cases(path, **kw).cases


@settings(max_examples=100, deadline=None)
@given(st.lists(json_cases(), min_size=1, max_size=5, unique_by=lambda c: c.id))
def test_jsonl_export_then_import_is_exact(cases: list[Case]) -> None:
    out = io.StringIO()
    write_jsonl(cases, out)
    back = _read("d.jsonl", out.getvalue())
    assert back == cases
    assert content_hash([c.to_dict() for c in back]) == content_hash([c.to_dict() for c in cases])


column_names = st.text(min_size=1, max_size=8).filter(lambda s: s.strip() != "" and s not in RESERVED)
cell_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20)


@st.composite
def csv_tables(draw: st.DrawFn) -> tuple[list[str], list[Case]]:
    inputs = draw(st.lists(column_names, min_size=1, max_size=3, unique=True))
    rows = draw(st.integers(min_value=1, max_value=5))
    row_ids = draw(st.lists(ids, min_size=rows, max_size=rows, unique=True))
    cases = [
        Case(
            id=row_id,
            inputs={name: draw(cell_text) for name in inputs},
            reference=draw(st.none() | st.text(min_size=1, max_size=20)),
            metadata=draw(st.dictionaries(st.text(max_size=6), json_values, max_size=2)),
            context_ids=draw(st.lists(st.text(max_size=8), max_size=3)),
            split=draw(split_names),
        )
        for row_id in row_ids
    ]
    return inputs, cases


def _csv(inputs: list[str], cases: list[Case], *, delimiter: str) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(["id", *inputs, "reference", "split", "context_ids", "metadata"])
    for c in cases:
        writer.writerow(
            [
                c.id,
                *(c.inputs[name] for name in inputs),
                c.reference or "",
                c.split or "",
                json.dumps(c.context_ids, ensure_ascii=False) if c.context_ids else "",
                json.dumps(c.metadata, ensure_ascii=False) if c.metadata else "",
            ]
        )
    return out.getvalue()


@settings(max_examples=100, deadline=None)
@given(csv_tables(), st.sampled_from([",", "\t"]), st.booleans())
def test_csv_import_reads_back_what_a_csv_writer_wrote(
    table: tuple[list[str], list[Case]], delimiter: str, bom: bool
) -> None:
    inputs, cases = table
    text = ("\ufeff" if bom else "") + _csv(inputs, cases, delimiter=delimiter)
    assert _read("d.csv" if delimiter == "," else "d.tsv", text) == cases


@settings(max_examples=50, deadline=None)
@given(st.lists(st.dictionaries(column_names, cell_text, min_size=1, max_size=1), min_size=1, max_size=4))
def test_derived_ids_depend_on_inputs_only(rows: list[dict[str, str]]) -> None:
    unique = list({json.dumps(r, sort_keys=True): r for r in rows}.values())
    lines = "".join(json.dumps({"inputs": r, "reference": "x"}) + "\n" for r in unique)
    assert [c.id for c in _read("d.jsonl", lines)] == [derived_id(r) for r in unique]
