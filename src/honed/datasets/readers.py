"""Reading JSONL and CSV files into cases, all or nothing.

A whole file is parsed and checked before anything is stored, so the first bad row fails the import with
`FILE:LINE: reason` and the store is untouched. Line numbers are the ones an editor shows: JSONL counts
physical lines; CSV counts the header as line 1 and reports the line a record *starts* on, so a quoted
cell spanning lines still points at its row. TSV follows the CSV rules (quoting included) with tabs.

Two details keep exported files re-importable byte for byte: JSONL is split on "\\n" only (a JSON string
may legally hold U+2028, which `str.splitlines` would treat as a line break), and NaN/Infinity, which
Python's json module accepts by default, are refused because they are not JSON.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from honed.datasets.case import Case
from honed.datasets.columns import Columns, row_to_case
from honed.errors import InvalidInputError

Format = Literal["jsonl", "csv", "tsv"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "tsv")
_EXTENSIONS: dict[str, Format] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv"}
_HINT = "nothing was imported; fix the file and import it again"
#: CSV cells may hold whole documents (e.g. contexts); the csv module's default cap is 128 KiB.
_CSV_FIELD_LIMIT = 2**31 - 1


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """The cases of one file, with the line each came from (for errors found later, e.g. by splitting)."""

    path: str
    cases: list[Case]
    lines: list[int] = field(default_factory=list)

    def where(self, index: int) -> str:
        return f"{self.path}:{self.lines[index]}" if self.lines else self.path


def detect_format(path: Path, given: str | None = None) -> Format:
    """`given` if set, else the format the file's extension names."""
    if given is not None:
        if given not in FORMATS:
            raise InvalidInputError(f"unknown format {given!r}", hint=f"use one of: {', '.join(FORMATS)}")
        return given
    found = _EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise InvalidInputError(
            f"{path}: cannot tell the format from the extension {path.suffix or '(none)'!r}",
            hint="name it .jsonl, .csv or .tsv, or pass --format jsonl|csv|tsv",
        )
    return found


def read_cases(path: Path, *, format: str | None = None, columns: Columns | None = None) -> ParsedFile:
    """Parse `path` (JSONL, CSV or TSV) into cases. Raises InvalidInputError naming FILE:LINE on the first
    bad row, a duplicate id, or an empty file."""
    fmt = detect_format(path, format)
    if columns is None:
        # A CSV row has no `inputs` object, so its unmapped columns are the natural inputs.
        columns = Columns(rest_as_inputs=fmt != "jsonl")
    try:
        columns.check()
    except ValueError as exc:
        raise InvalidInputError(str(exc), hint="give each field one role") from None
    text = _decode(path)
    if fmt == "jsonl":
        parsed = _read_jsonl(str(path), text, columns)
    else:
        parsed = _read_csv(str(path), text, columns, delimiter="," if fmt == "csv" else "\t")
    if not parsed.cases:
        raise InvalidInputError(f"{path}: has no cases", hint="an import needs at least one row")
    check_unique_ids(parsed)
    return parsed


def check_unique_ids(parsed: ParsedFile) -> None:
    """Two cases with one id would make results ambiguous; name both lines."""
    seen: dict[str, int] = {}
    for index, case in enumerate(parsed.cases):
        first = seen.setdefault(case.id, index)
        if first == index:
            continue
        other = f"line {parsed.lines[first]}" if parsed.lines else f"case #{first + 1}"
        if case.id.startswith("c-") and parsed.cases[first].inputs == case.inputs:
            reason = f"same inputs as {other} (derived id {case.id}); give the cases ids to keep both"
        else:
            reason = f"duplicate id {case.id!r} (also on {other})"
        raise InvalidInputError(f"{parsed.where(index)}: {reason}", hint=_HINT)


def _decode(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no such file", hint="check the path") from None
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot be read: {exc.strerror}") from None
    try:
        return data.decode("utf-8-sig")  # a leading BOM (Excel writes one) is dropped
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InvalidInputError(
            f"{path}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x})",
            hint="save the file as UTF-8 and import it again",
        ) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice in one object")
        out[key] = value
    return out


def loads_strict(text: str) -> Any:
    """`json.loads` without NaN/Infinity and without silently dropping a repeated key."""
    return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_object_without_duplicates)


def _read_jsonl(path: str, text: str, columns: Columns) -> ParsedFile:
    cases: list[Case] = []
    lines: list[int] = []
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.removesuffix("\r")
        if not line.strip():
            continue
        try:
            row = loads_strict(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{path}:{lineno}: not valid JSON ({exc.msg})", hint=_HINT) from None
        except ValueError as exc:
            raise InvalidInputError(f"{path}:{lineno}: {exc}", hint=_HINT) from None
        if not isinstance(row, dict):
            raise InvalidInputError(
                f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}", hint=_HINT
            )
        try:
            cases.append(row_to_case(row, columns, cells=False))
        except ValueError as exc:
            raise InvalidInputError(f"{path}:{lineno}: {exc}", hint=_HINT) from None
        lines.append(lineno)
    return ParsedFile(path, cases, lines)


def _read_csv(path: str, text: str, columns: Columns, *, delimiter: str) -> ParsedFile:
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise InvalidInputError(f"{path}:1: not valid CSV ({exc})", hint=_HINT) from None
    if header is None:
        raise InvalidInputError(f"{path}: is empty", hint="a CSV file needs a header row and a row per case")
    _check_header(path, header, columns)
    cases: list[Case] = []
    lines: list[int] = []
    end = reader.line_num
    while True:
        start = end + 1
        try:
            record = next(reader, None)
        except csv.Error as exc:
            raise InvalidInputError(f"{path}:{start}: not valid CSV ({exc})", hint=_HINT) from None
        if record is None:
            break
        end = reader.line_num
        if not record:
            continue  # a blank line
        if len(record) != len(header):
            raise InvalidInputError(
                f"{path}:{start}: has {len(record)} field(s), the header has {len(header)}",
                hint="quote cells that contain the delimiter, quotes or line breaks",
            )
        try:
            cases.append(row_to_case(dict(zip(header, record, strict=True)), columns, cells=True))
        except ValueError as exc:
            raise InvalidInputError(f"{path}:{start}: {exc}", hint=_HINT) from None
        lines.append(start)
    return ParsedFile(path, cases, lines)


def _check_header(path: str, header: list[str], columns: Columns) -> None:
    seen: set[str] = set()
    for name in header:
        if not name.strip():
            raise InvalidInputError(f"{path}:1: the header has an empty column name", hint="name each column")
        if name in seen:
            raise InvalidInputError(f"{path}:1: column {name!r} appears twice in the header", hint=_HINT)
        seen.add(name)
    missing = [name for name in columns.named() if name not in seen]
    if missing:
        raise InvalidInputError(
            f"{path}:1: no column {missing[0]!r} in the header",
            hint=f"the columns are: {', '.join(header)}",
        )
