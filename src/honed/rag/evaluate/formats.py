"""Test collections in the two standard exchange formats, read into a `Collection`: BEIR folders and TREC
files.

BEIR lays a collection out as a folder: `corpus.jsonl` (`_id`, `title`, `text`, optional `metadata`),
`queries.jsonl` (`_id`, `text`) and `qrels/<split>.tsv` (a `query-id corpus-id score` header, then one
judgment a line). A query's split is the name of the qrels file that judges it. Reading chosen splits
keeps only the queries they judge, as BEIR's own loader does (MS MARCO's 500,000 training queries stay out
of a test import); reading them all keeps every query, those no file judges without a split. TREC gives
three files: a corpus (`<DOC>` blocks with `<DOCNO>`, an optional headline and `<TEXT>`; or JSONL as
above), topics (`<top>` with `<num>`, `<title>`, `<desc>`, `<narr>`, left unclosed as in the classic
files) and qrels (`topic iteration docno grade`).

Documents are built as the SMART collections' are (`honed.rag.evaluate.collections`): the title is
metadata and the text is title + blank line + body, so a collection read from its SMART files and
from its BEIR conversion gives the same documents. Every document is kept, an empty one included: a
collection's ids are part of what its judgments mean.

Input is checked strictly: a malformed line is an error naming FILE:LINE. A judgment naming a query or a
document that the other files lack is not an error, because published collections have a few (a document
withdrawn from the corpus, a query released without its text), but it is never dropped silently: each
kind is counted in a warning with its first FILE:LINE. A judgment of an unknown document is kept (a
relevant document no run can retrieve still counts against recall, as trec_eval counts it); one of an
unknown query is left out (there is no text to ask). When no judgment names both a known query and a
known document, the files do not belong together, and that is an error.
"""

from __future__ import annotations

import bisect
import html
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from honed.datasets.case import SPLIT_NAME
from honed.errors import InvalidInputError
from honed.rag.evaluate.collections import Collection
from honed.rag.evaluate.metrics import Qrels
from honed.rag.ingest.loaders import json_object
from honed.rag.types import Document

__all__ = ["TOPIC_FIELDS", "Loaded", "TopicField", "load_beir", "load_trec"]

TopicField = Literal["title", "desc", "title+desc"]
TOPIC_FIELDS: tuple[TopicField, ...] = ("title", "desc", "title+desc")
"""Which part of a TREC topic becomes the query text."""

# Metadata keys honed or its chunker set on every document: a corpus field of the same name is refused.
_RESERVED = ("source", "heading", "start", "end")
_BEIR_HEADER = ["query-id", "corpus-id", "score"]


@dataclass(frozen=True, slots=True)
class Loaded:
    """A collection as read, with what is worth telling the user about it."""

    collection: Collection
    warnings: list[str] = field(default_factory=list)
    """Judgments naming a query or document the other files lack (counted, with the first FILE:LINE)."""
    left_out: int = 0
    """Queries read but not kept, because none of the chosen splits judges them."""


@dataclass(frozen=True, slots=True)
class _Judgment:
    query: str
    doc: str
    grade: int
    where: str  # FILE:LINE


# --- BEIR ---------------------------------------------------------------------------------------------


def load_beir(folder: str | Path, *, splits: Sequence[str] | None = None) -> Loaded:
    """Read the BEIR folder `folder`; `splits` (default: every `qrels/*.tsv`) are the qrels files read."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInputError(
            f"{folder}: not a folder",
            hint="a BEIR collection is a folder with corpus.jsonl, queries.jsonl, qrels/",
        )
    corpus = _beir_file(folder, "corpus.jsonl")
    queries_file = _beir_file(folder, "queries.jsonl")
    available = (
        sorted(p.stem for p in (folder / "qrels").glob("*.tsv")) if (folder / "qrels").is_dir() else []
    )
    if not available:
        raise InvalidInputError(
            f"{folder}/qrels: no <split>.tsv file", hint="a BEIR folder judges its queries in qrels/test.tsv"
        )
    chosen = list(dict.fromkeys(splits)) if splits else available
    for split in chosen:
        if split not in available:
            raise InvalidInputError(
                f"{folder}: no split {split!r} (no qrels/{split}.tsv)",
                hint=f"splits here: {', '.join(available)}",
            )
        _check_split(split, folder / "qrels" / f"{split}.tsv")
    documents = _corpus_jsonl(corpus, f"{folder.name}/corpus.jsonl")
    queries = _queries_jsonl(queries_file)
    judgments: list[_Judgment] = []
    split_of: dict[str, tuple[str, str]] = {}  # query -> (split, where it was first judged)
    for split in chosen:
        for j in _beir_qrels(folder / "qrels" / f"{split}.tsv"):
            first = split_of.setdefault(j.query, (split, j.where))
            if first[0] != split:
                raise InvalidInputError(
                    f"{j.where}: query {j.query!r} is judged in split {split!r} and in {first[0]!r} "
                    f"({first[1]})",
                    hint="a query belongs to one split: read one of them with --split",
                )
            judgments.append(j)
    read = ", ".join(f"{folder}/qrels/{split}.tsv" for split in chosen)
    qrels, warnings = _judged(judgments, queries, documents, read, str(queries_file), str(corpus))
    splits_of = {q: s for q, (s, _) in split_of.items() if q in queries}
    kept = queries if not splits else {q: t for q, t in queries.items() if q in splits_of}
    collection = Collection(folder.name, documents, kept, qrels, splits_of)
    return Loaded(collection, warnings, len(queries) - len(kept))


def _beir_file(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise InvalidInputError(
            f"{folder}: no {name}",
            hint="a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv",
        )
    return path


def _check_split(split: str, path: Path) -> None:
    if not SPLIT_NAME.match(split):
        raise InvalidInputError(
            f"{path}: {split!r} is not a split name",
            hint="rename the file with letters, digits, '.', '_', '-' (e.g. test.tsv)",
        )


def _beir_qrels(path: Path) -> Iterator[_Judgment]:
    header_seen = False
    for number, line in _lines(path):
        fields = line.split("\t") if "\t" in line else line.split()
        fields = [f.strip() for f in fields]
        if not header_seen:
            header_seen = True
            if [f.lower() for f in fields] == _BEIR_HEADER:
                continue
        at = f"{path}:{number}"
        if len(fields) != 3 or not all(fields):
            raise InvalidInputError(
                f"{at}: expected `query-id<TAB>corpus-id<TAB>score`, got {len(fields)} field(s)",
                hint="e.g. `q1<TAB>doc7<TAB>1`",
            )
        yield _Judgment(fields[0], fields[1], _grade(fields[2], at), at)


# --- TREC ---------------------------------------------------------------------------------------------


def load_trec(
    corpus: str | Path,
    topics: str | Path,
    qrels: str | Path,
    *,
    topic_field: TopicField = "title",
    split: str | None = None,
) -> Loaded:
    """Read a TREC collection: `corpus` (`<DOC>` blocks or JSONL), `topics` (`<top>` blocks) and `qrels`.
    `topic_field` picks the query text; `split` names the split the qrels are (then only the topics they
    judge are kept). Numeric topic numbers are compared without leading zeros (topics often write `051`
    where qrels write `51`)."""
    corpus, topics, qrels = Path(corpus), Path(topics), Path(qrels)
    if topic_field not in TOPIC_FIELDS:
        raise InvalidInputError(
            f"unknown topic field {topic_field!r}", hint=f"one of: {', '.join(TOPIC_FIELDS)}"
        )
    if split is not None:
        _check_split(split, qrels)
    for path in (corpus, topics, qrels):
        if not path.is_file():
            raise InvalidInputError(f"{path}: no such file", hint="give the path of an existing file")
    documents = _trec_corpus(corpus)
    queries = _topics(topics, topic_field)
    judgments = list(_trec_qrels(qrels))
    judged, warnings = _judged(judgments, queries, documents, str(qrels), str(topics), str(corpus))
    if split is None:
        kept, splits = queries, {}
    else:
        kept = {q: t for q, t in queries.items() if q in judged}
        splits = dict.fromkeys(kept, split)
    collection = Collection(corpus.stem, documents, kept, judged, splits)
    return Loaded(collection, warnings, len(queries) - len(kept))


def _trec_corpus(path: Path) -> list[Document]:
    text = _read(path)
    start = text.lstrip()[:1]
    if start == "{":
        return _corpus_jsonl(path, path.name)
    if start == "<":
        docs = _trec_docs(path, text)
        if not docs:
            raise InvalidInputError(
                f"{path}: no <DOC> blocks", hint="a TREC corpus holds <DOC> ... </DOC> blocks"
            )
        return docs
    raise InvalidInputError(
        f"{path}:1: neither JSONL nor TREC <DOC> blocks",
        hint='a corpus is JSONL ({"_id": ..., "title": ..., "text": ...} a line) or TREC <DOC> blocks',
    )


_DOC_TAG = re.compile(r"<(/?)DOC>", re.IGNORECASE)
_DOCNO = re.compile(r"<DOCNO>(.*?)</DOCNO>", re.IGNORECASE | re.DOTALL)
_HEADLINE = re.compile(r"<(HEADLINE|TITLE|HEAD|HL)>(.*?)</\1>", re.IGNORECASE | re.DOTALL)
_TEXT = re.compile(r"<TEXT>(.*?)</TEXT>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^<>]*>")


def _trec_docs(path: Path, text: str) -> list[Document]:
    lines = _LineIndex(text)
    docs: list[Document] = []
    seen: dict[str, int] = {}
    for start, _end, body in _blocks(path, text, lines, _DOC_TAG, "DOC"):
        at = f"{path}:{lines.line(start)}"
        numbers = _DOCNO.findall(body)
        if len(numbers) != 1:
            problem = "no <DOCNO>...</DOCNO>" if not numbers else f"{len(numbers)} <DOCNO> fields"
            raise InvalidInputError(
                f"{at}: <DOC> with {problem}", hint="each <DOC> names itself in one <DOCNO>"
            )
        doc_id = " ".join(numbers[0].split())
        if not doc_id:
            raise InvalidInputError(f"{at}: empty <DOCNO>", hint="each <DOC> needs an id in <DOCNO>")
        if doc_id in seen:
            raise InvalidInputError(
                f"{at}: document {doc_id!r} appears twice (first on line {seen[doc_id]})",
                hint="give each <DOC> its own <DOCNO>",
            )
        seen[doc_id] = lines.line(start)
        headline = _HEADLINE.search(body)
        title = _plain(headline.group(2)) if headline else ""
        parts = [_plain(m, keep_lines=True) for m in _TEXT.findall(body)]
        docs.append(_document(doc_id, title, "\n\n".join(p for p in parts if p), {}, path.name))
    return docs


def _plain(markup: str, *, keep_lines: bool = False) -> str:
    """Text without SGML tags or entities; lines kept (stripped) for bodies, joined for titles."""
    text = html.unescape(_TAG.sub(" ", markup))
    if not keep_lines:
        return " ".join(text.split())
    return "\n".join(line for line in (" ".join(raw.split()) for raw in text.split("\n")) if line)


_TOP_TAG = re.compile(r"<(/?)top>", re.IGNORECASE)
_TOPIC_FIELD = re.compile(r"<(num|title|desc|narr)>", re.IGNORECASE)
_CLOSE_FIELD = re.compile(r"</(num|title|desc|narr)>", re.IGNORECASE)
_PREFIX = {"num": "number:", "title": "topic:", "desc": "description:", "narr": "narrative:"}


def _topics(path: Path, topic_field: TopicField) -> dict[str, str]:
    text = _read(path)
    lines = _LineIndex(text)
    queries: dict[str, str] = {}
    seen: dict[str, int] = {}
    for start, _end, body in _blocks(path, text, lines, _TOP_TAG, "top"):
        at = f"{path}:{lines.line(start)}"
        fields = _topic_fields(body)
        number = fields.get("num", "")
        if not number or len(number.split()) != 1:
            raise InvalidInputError(
                f"{at}: topic without a number"
                if not number
                else f"{at}: topic number {number!r} is not one word",
                hint="e.g. `<num> Number: 401`",
            )
        qid = _query_id(number)
        if qid in seen:
            raise InvalidInputError(
                f"{at}: topic {qid} appears twice (first on line {seen[qid]})",
                hint="give each topic its own number",
            )
        seen[qid] = lines.line(start)
        wanted = ("title", "desc") if topic_field == "title+desc" else (topic_field,)
        missing = [name for name in wanted if not fields.get(name)]
        if missing:
            raise InvalidInputError(
                f"{at}: topic {qid} has no <{missing[0]}> text",
                hint="choose another field with --topic-field (title, desc, title+desc)",
            )
        queries[qid] = "\n\n".join(fields[name] for name in wanted)
    if not queries:
        raise InvalidInputError(
            f"{path}: no <top> topics", hint="a TREC topics file holds <top> ... </top> blocks"
        )
    return queries


def _topic_fields(body: str) -> dict[str, str]:
    """The fields of one topic: each runs from its tag to the next (closing tags, where a file has them,
    and the `Number:`/`Description:` labels of the classic files are dropped)."""
    marks = list(_TOPIC_FIELD.finditer(body))
    fields: dict[str, str] = {}
    for i, mark in enumerate(marks):
        name = mark.group(1).lower()
        end = marks[i + 1].start() if i + 1 < len(marks) else len(body)
        value = " ".join(html.unescape(_CLOSE_FIELD.sub(" ", body[mark.end() : end])).split())
        if value.lower().startswith(_PREFIX[name]):
            value = value[len(_PREFIX[name]) :].strip()
        fields.setdefault(name, value)
    return fields


def _trec_qrels(path: Path) -> Iterator[_Judgment]:
    for number, line in _lines(path):
        at = f"{path}:{number}"
        fields = line.split()
        if len(fields) != 4:
            raise InvalidInputError(
                f"{at}: expected `topic iteration docno grade`, got {len(fields)} field(s)",
                hint="e.g. `401 0 FBIS3-10082 1`",
            )
        yield _Judgment(_query_id(fields[0]), fields[2], _grade(fields[3], at), at)


def _query_id(text: str) -> str:
    return str(int(text)) if text.isdigit() else text


# --- shared -------------------------------------------------------------------------------------------


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(
            f"{path}: cannot be read ({exc.strerror})", hint="give a readable file"
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InvalidInputError(f"{path}:{line}: not UTF-8", hint="save the file as UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(_read(path).split("\n"), 1):
        if line.strip():
            yield number, line


def _jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(FILE:LINE, record) for each record of a JSONL file."""
    for number, line in _lines(path):
        at = f"{path}:{number}"
        yield at, json_object(line, at)


def _record_id(record: dict[str, Any], at: str, keys: tuple[str, ...]) -> str:
    key = next((k for k in keys if k in record), None)
    if key is None:
        raise InvalidInputError(f"{at}: no {keys[0]!r} field", hint="each record names itself in `_id`")
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise InvalidInputError(f"{at}: {key!r} must be a non-empty string or an integer, not {value!r}")
    return str(value).strip()


def _string(record: dict[str, Any], key: str, at: str) -> str:
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInputError(f"{at}: {key!r} must be a string, not {type(value).__name__}")
    return value


def _corpus_jsonl(path: Path, source: str) -> list[Document]:
    docs: list[Document] = []
    for doc_id, at, record in _records(path, "document"):
        if "text" not in record:
            raise InvalidInputError(
                f"{at}: no 'text' field", hint="each corpus record has `text` (may be empty)"
            )
        extra = record.get("metadata", {})
        if not isinstance(extra, dict):
            raise InvalidInputError(f"{at}: 'metadata' must be an object, not {type(extra).__name__}")
        # Fields besides the standard ones are kept as metadata, not lost.
        metadata = {
            **{k: v for k, v in record.items() if k not in ("_id", "id", "title", "text", "metadata")},
            **extra,
        }
        clash = [k for k in _RESERVED if k in metadata]
        if clash:
            raise InvalidInputError(
                f"{at}: field {clash[0]!r} is reserved for what honed records there",
                hint=f"rename it; reserved: {', '.join(_RESERVED)}",
            )
        title, body = _string(record, "title", at), _string(record, "text", at)
        docs.append(_document(doc_id, title.strip(), body.strip(), metadata, source))
    if not docs:
        raise InvalidInputError(f"{path}: no documents", hint="a corpus holds one JSON object a line")
    return docs


def _queries_jsonl(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for qid, at, record in _records(path, "query"):
        text = _string(record, "text", at).strip()
        if not text:
            raise InvalidInputError(
                f"{at}: query {qid!r} has no text", hint="each query has its question in `text`"
            )
        queries[qid] = text
    return queries


def _records(path: Path, what: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """The records of a BEIR JSONL file (corpus or queries) as (id, FILE:LINE, record); an id that
    appears twice is an error naming both lines."""
    seen: dict[str, str] = {}
    for at, record in _jsonl(path):
        record_id = _record_id(record, at, ("_id", "id"))
        if record_id in seen:
            raise InvalidInputError(
                f"{at}: {what} {record_id!r} appears twice (also {seen[record_id]})",
                hint="give each its own _id",
            )
        seen[record_id] = at
        yield record_id, at, record


def _document(doc_id: str, title: str, body: str, extra: dict[str, Any], source: str) -> Document:
    metadata: dict[str, Any] = {"source": source}
    if title:
        metadata["title"] = title
    metadata.update((k, v) for k, v in extra.items() if k != "title")
    return Document(doc_id, "\n\n".join(part for part in (title, body) if part), metadata)


def _grade(text: str, at: str) -> int:
    if not re.fullmatch(r"-?\d+", text):
        raise InvalidInputError(
            f"{at}: the grade must be an integer, got {text!r}", hint="e.g. 0 (not relevant), 1, 2"
        )
    return int(text)


def _judged(
    judgments: list[_Judgment],
    queries: dict[str, str],
    documents: list[Document],
    qrels: str,
    topics: str,
    corpus: str,
) -> tuple[Qrels, list[str]]:
    """The qrels the judgments give, and warnings for those naming an unknown query or document."""
    known_docs = {d.id for d in documents}
    out: Qrels = {}
    where: dict[tuple[str, str], str] = {}
    no_query: list[tuple[str, str]] = []  # (FILE:LINE, query id) of judgments naming an unknown query
    no_doc: list[tuple[str, str]] = []
    matched = 0
    for j in judgments:
        first = where.setdefault((j.query, j.doc), j.where)
        if first != j.where:
            raise InvalidInputError(
                f"{j.where}: query {j.query!r} judges document {j.doc!r} twice (also {first})",
                hint="keep one judgment per query and document (trec_eval refuses repeats too)",
            )
        if j.query not in queries:
            no_query.append((j.where, j.query))
            continue
        if j.doc not in known_docs:
            no_doc.append((j.where, j.doc))
        else:
            matched += 1
        out.setdefault(j.query, {})[j.doc] = j.grade
    if judgments and not matched:
        j = judgments[0]
        raise InvalidInputError(
            f"no judgment in {qrels} names both a query of {topics} and a document of {corpus} "
            f"(first: {j.where}: query {j.query!r}, document {j.doc!r})",
            hint="check that the files belong to the same collection",
        )
    warnings = [
        *_strays(no_query, "query", topics, "left out: a query without text cannot be asked"),
        *_strays(no_doc, "document", corpus, "kept: they count as relevant documents no run can retrieve"),
    ]
    return out, warnings


def _strays(strays: list[tuple[str, str]], what: str, file: str, outcome: str) -> list[str]:
    """A warning for the judgments, as (FILE:LINE, id), that name a `what` not in `file`, if any do."""
    if not strays:
        return []
    (at, first), count = strays[0], len({id_ for _, id_ in strays})
    return [
        f"{len(strays)} judgment(s) name {count} {what} id(s) not in {file} (first: {at}: {first!r}); "
        + outcome
    ]


class _LineIndex:
    """Line numbers of character offsets, by binary search over the newlines."""

    def __init__(self, text: str) -> None:
        self._newlines = [m.start() for m in re.finditer("\n", text)]

    def line(self, offset: int) -> int:
        return bisect.bisect_left(self._newlines, offset) + 1


def _blocks(
    path: Path, text: str, lines: _LineIndex, tag: re.Pattern[str], name: str
) -> Iterator[tuple[int, int, str]]:
    """(start, end, inner text) of each `<name>...</name>` block, checking that blocks open and close in
    turn and that nothing but whitespace lies between them."""
    opened: int | None = None
    inner_start = last = 0
    for mark in tag.finditer(text):
        closing = bool(mark.group(1))
        if not closing:
            if opened is not None:
                raise InvalidInputError(
                    f"{path}:{lines.line(mark.start())}: <{name}> inside the <{name}> of line "
                    f"{lines.line(opened)} (its </{name}> is missing)",
                    hint=f"close each <{name}> with </{name}>",
                )
            if text[last : mark.start()].strip():
                offset = last + len(text[last : mark.start()]) - len(text[last : mark.start()].lstrip())
                raise InvalidInputError(
                    f"{path}:{lines.line(offset)}: text outside <{name}> ... </{name}>",
                    hint=f"every line belongs to a <{name}> block",
                )
            opened = mark.start()
            inner_start = mark.end()
        else:
            if opened is None:
                raise InvalidInputError(
                    f"{path}:{lines.line(mark.start())}: </{name}> without <{name}>",
                    hint=f"open it with <{name}>",
                )
            yield opened, mark.end(), text[inner_start : mark.start()]
            opened = None
            last = mark.end()
    if opened is not None:
        raise InvalidInputError(
            f"{path}:{lines.line(opened)}: <{name}> is never closed", hint=f"end it with </{name}>"
        )
    rest = text[last:]
    if rest.strip():
        offset = last + len(rest) - len(rest.lstrip())
        raise InvalidInputError(
            f"{path}:{lines.line(offset)}: text outside <{name}> ... </{name}>",
            hint=f"every line belongs to a <{name}> block",
        )
