"""The classic SMART-format test collections in the shared data folder: Cranfield 1400 and CISI.

Both files use SMART field markers: a record starts at `.I <id>`, and `.T` title, `.A` author, `.B`
bibliography, `.W` body, `.X` cross-references (and rarely `.K`, `.C`, `.N`) each start a field that
runs until the next marker. We keep title, author and bibliography as metadata and build each
document's text as title + blank line + body. `.X`/`.K`/`.C`/`.N` are read and dropped.

The collections' own quirks, each handled on purpose:

- Cranfield's qrels number the queries 1..225 in file order, while `cran.qry` gives them `.I` ids with
  gaps (001, 002, 004, ...). Queries are therefore numbered by their position in the file, which is
  what the qrels mean; the `.I` ids of `cran.qry` are not used.
- Cranfield relevance codes run from 1 (a complete answer) to 4 (minimum interest); Cleverdon's 5 ("no
  interest") is not in the file. They become trec-style gains where higher is better: gain = 5 - code
  (1 -> 4, 2 -> 3, 3 -> 2, 4 -> 1), so every listed pair is relevant at the default relevance level and
  `relevance_level=3` keeps codes 1-2. Codes 5 and -1 (found in some copies) become gain 0: judged,
  not relevant.
- Cranfield's `.W` repeats the title as its first line(s), so titles occur twice in the text. Records
  576 and 578 are damaged in the original and hold two `.W` fields, which are joined; records 471 and
  995 are empty and kept as empty documents, so ids stay 1..1400.
- Both `cran.all.1400` and `cran.qry` end in a bare `.I` with nothing after it; it is skipped.
- CISI is binary (every pair in CISI.REL is relevant, gain 1; its last two columns are always 0) and
  only 76 of the 112 queries are judged: all queries are kept, qrels hold the judged ones. Some CISI
  queries carry a title and authors; their text is title + blank line + body, like a document's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from honed.errors import InvalidInputError
from honed.rag.evaluate.metrics import Qrels
from honed.rag.types import Document

__all__ = ["COLLECTIONS", "Collection", "load_collection"]

COLLECTIONS = ("cranfield", "cisi")
"""The names `load_collection` knows."""

_MARKER = re.compile(r"^\.([A-Z])(?:\s+(.*?))?\s*$")
_FIELDS = {"I", "T", "A", "B", "W", "X", "K", "C", "N"}
_DAMAGED = "the copy is damaged or mixed up: restore the original files"
_DATA_HINT = "set HONED_DATA_DIR (or data_dir in honed.toml) to the folder that holds cranfield/ and cisi/"


@dataclass(frozen=True, slots=True)
class Collection:
    """A test collection: its documents, its queries (query id -> text) and their relevance judgments.
    `splits` (query id -> split) holds the splits the collection's own files give (BEIR's
    `qrels/<split>.tsv`); the SMART collections give none."""

    name: str
    documents: list[Document]
    queries: dict[str, str]
    qrels: Qrels = field(default_factory=dict)
    splits: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Record:
    id: str
    fields: dict[str, list[str]] = field(default_factory=dict)

    def text(self, name: str, sep: str = "\n") -> str:
        return sep.join(part for part in self.fields.get(name, []) if part)

    @property
    def title(self) -> str:
        return self.text("T", " ")

    def full_text(self, body_sep: str = "\n") -> str:
        return "\n\n".join(part for part in (self.title, self.text("W", body_sep)) if part)


def load_collection(name: str, data_dir: str | Path) -> Collection:
    """Read collection `name` ("cranfield" or "cisi") from `data_dir/<name>/` (the HONED_DATA_DIR folder)."""
    loaders: dict[str, Callable[[Path], Collection]] = {"cranfield": _cranfield, "cisi": _cisi}
    key = name.strip().lower() if isinstance(name, str) else name
    loader = loaders.get(key)
    if loader is None:
        raise InvalidInputError(f"unknown test collection {name!r}", hint=f"known: {', '.join(COLLECTIONS)}")
    folder = Path(data_dir) / key
    if not folder.is_dir():
        raise InvalidInputError(f"test collection folder {folder} does not exist", hint=_DATA_HINT)
    return loader(folder)


def _cranfield(folder: Path) -> Collection:
    docs = _documents(_smart(_file(folder, "cran.all.1400")), "cranfield/cran.all.1400")
    queries = {str(i): q.text("W", " ") for i, q in enumerate(_smart(_file(folder, "cran.qry")), 1)}
    qrels: Qrels = {}
    path = _file(folder, "cranqrel")
    for number, fields in _rows(path):
        if len(fields) != 3 or not all(re.fullmatch(r"-?\d+", f) for f in fields):
            raise InvalidInputError(
                f"{path}:{number}: expected `query doc code` (three integers)", hint="e.g. `1 184 2`"
            )
        qid, doc_id, code = fields[0], fields[1], int(fields[2])
        _judge(qrels, qid, doc_id, 5 - code if 1 <= code <= 4 else 0, f"{path}:{number}")
    return _checked(Collection("cranfield", docs, queries, qrels), folder)


def _cisi(folder: Path) -> Collection:
    docs = _documents(_smart(_file(folder, "CISI.ALL")), "cisi/CISI.ALL")
    queries = {q.id: q.full_text(" ") for q in _smart(_file(folder, "CISI.QRY"))}
    qrels: Qrels = {}
    path = _file(folder, "CISI.REL")
    for number, fields in _rows(path):
        if len(fields) != 4 or not (fields[0].isdigit() and fields[1].isdigit()):
            raise InvalidInputError(
                f"{path}:{number}: expected `query doc 0 0.0` (query and doc numbers first)",
                hint="e.g. `1 28 0 0.000000`",
            )
        _judge(qrels, fields[0], fields[1], 1, f"{path}:{number}")
    return _checked(Collection("cisi", docs, queries, qrels), folder)


def _file(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise InvalidInputError(f"test collection file {path} is missing", hint=_DATA_HINT)
    return path


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path}: cannot read ({exc})", hint=_DATA_HINT) from None


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    return [(n, line.split()) for n, line in enumerate(_read(path).splitlines(), 1) if line.strip()]


def _judge(qrels: Qrels, qid: str, doc_id: str, gain: int, where: str) -> None:
    # Ids are compared as numbers written without leading zeros, the way the .I ids are stored.
    qid, doc_id = str(int(qid)), str(int(doc_id))
    docs = qrels.setdefault(qid, {})
    if doc_id in docs:
        raise InvalidInputError(f"{where}: query {qid} judges doc {doc_id} twice", hint=_DAMAGED)
    docs[doc_id] = gain


def _smart(path: Path) -> list[_Record]:
    """The records of a SMART file, in file order, each field's lines stripped."""
    records: list[_Record] = []
    seen: dict[str, int] = {}  # record id -> line
    in_record = False
    current: list[str] | None = None  # the lines of the field being read
    for number, raw in enumerate(_read(path).splitlines(), 1):
        line = raw.strip()
        marker = _MARKER.match(line)
        if marker and marker.group(1) in _FIELDS:
            name, rest = marker.group(1), marker.group(2) or ""
            current = None
            if name == "I":
                if rest and not rest.isdigit():
                    raise InvalidInputError(
                        f"{path}:{number}: `.I` needs a record number, got {rest!r}", hint="e.g. `.I 12`"
                    )
                # A bare `.I` closes Cranfield's files; a field after it is reported below.
                in_record = bool(rest)
                if in_record:
                    record = _Record(str(int(rest)))
                    if record.id in seen:
                        raise InvalidInputError(
                            f"{path}:{number}: .I {rest} appears twice (first on line {seen[record.id]})",
                            hint=_DAMAGED,
                        )
                    seen[record.id] = number
                    records.append(record)
                continue
            if not in_record:
                raise InvalidInputError(
                    f"{path}:{number}: field .{name} outside a record", hint="expected `.I n`"
                )
            # A repeated field (a second .W, several .A) continues the same field.
            current = records[-1].fields.setdefault(name, [])
            if rest:
                current.append(rest)
        elif line:
            if current is None:
                raise InvalidInputError(
                    f"{path}:{number}: text outside a field",
                    hint="each record is `.I n` followed by fields such as `.T` and `.W`",
                )
            current.append(line)
    return records


def _documents(records: list[_Record], source: str) -> list[Document]:
    docs = []
    for record in records:
        metadata = {"source": source}
        if record.title:
            metadata["title"] = record.title
        author = record.text("A", "; ")
        bib = record.text("B", " ")
        if author:
            metadata["author"] = author
        if bib:
            metadata["bib"] = bib
        docs.append(Document(record.id, record.full_text(), metadata))
    return docs


def _checked(collection: Collection, folder: Path) -> Collection:
    known = {d.id for d in collection.documents}
    for qid, docs in collection.qrels.items():
        if qid not in collection.queries:
            raise InvalidInputError(
                f"{folder}: the qrels judge query {qid}, which has no text", hint=_DAMAGED
            )
        unknown = [d for d in docs if d not in known]
        if unknown:
            raise InvalidInputError(
                f"{folder}: the qrels of query {qid} name doc {unknown[0]}, which is not in the collection",
                hint=_DAMAGED,
            )
    return collection
