"""Reading files into `Document`s for a knowledge base.

`load_documents` takes files, folders (walked recursively, hidden entries skipped) and glob patterns, and
reads .txt, .md/.markdown, .html/.htm (converted to markdown-like text), .pdf (text of every page) and
.jsonl (one document per record). Nothing is dropped silently: a file a walk or glob met but could not
use is listed in `skipped` with the reason; a file that is not in a readable format is an
`InvalidInputError` naming the file (and line, for JSONL). Documents with distinct ids are all kept, even
when their texts are the same: a test collection may hold repeats that its judgments name. With `dedupe`,
a document whose text repeats an earlier one is dropped and listed in `duplicates` (`drop_repeats`).

Only regular files inside the folders the user named are read (`honed.rag.ingest.paths` says how links, FIFOs
and devices are treated), and `LoadLimits` caps what one file may cost: its size, a PDF's pages and a
document's characters. A file over a limit is skipped with a one-line reason that names the limit and the
flag that raises it. The character limit is enforced while a PDF's text is extracted, so a small PDF that
draws the same text thousands of times stops at the limit instead of expanding for as long as it likes.

Files are read in the order of their ids (the path relative to the root, in posix form) and JSONL
records in line order, so which of two repeats `dedupe` keeps never depends on the order a file system
lists a folder in.

A Markdown file may open with YAML front matter (`---`, `key: value` lines, `---`): its keys become the
document's metadata (so `--where '{"category": "policy"}'` finds it; `title` names the document) and the
block is not part of the text that is chunked and embedded. A block that is not valid YAML, or not a
mapping, is kept as text and reported in `warnings`, as is a key honed reserves for its own metadata.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypedDict, Unpack

from honed.datasets.readers import loads_strict
from honed.errors import InvalidInputError
from honed.rag.ingest.paths import Refused, extension, find, read, shown
from honed.rag.types import Document

__all__ = ["FORMATS", "LoadLimits", "LoadOptions", "LoadResult", "drop_repeats", "load_documents"]

FORMATS: dict[str, str] = {
    ".txt": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".jsonl": "jsonl",
}
"""Supported file extensions and the `format` each gets in document metadata."""

# Metadata keys the loader or the chunker always (or, for `heading`, often) set: a JSONL field of the
# same name would be overwritten, so it is refused instead. (`page` is set only for PDFs: a record may
# carry its own.)
_RESERVED = ("source", "format", "heading", "start", "end")


@dataclass(frozen=True, slots=True)
class LoadLimits:
    """What one file may cost. A file over a limit gives no document: it is listed in `skipped` with
    the limit and the `honed kb ingest` flag that raises it."""

    max_file_bytes: int = 100 * 1024 * 1024
    """Bytes in one file (`--max-file-mb`): checked before reading, and while reading."""
    max_pdf_pages: int = 2000
    """Pages in one PDF (`--max-pdf-pages`): checked before any text is extracted."""
    max_chars: int = 2_000_000
    """Characters of text in one document (`--max-chars`), about 1,000 pages of prose: checked during a
    PDF's extraction, for other formats once the text is decoded, and per record for JSONL."""


class LoadOptions(TypedDict, total=False):
    """How to read files, the keywords `load_documents` takes and `KnowledgeBase.ingest` and `honed kb
    ingest` pass on: `text_field`, `id_field` and `title_field` (default "text", "id", "title") name the
    JSONL fields holding each record's text, id and title; `follow_links` reads links that lead out of
    the folder they were found in (see `honed.rag.ingest.paths`); `limits` caps what one file may cost
    (default `LoadLimits()`)."""

    text_field: str
    id_field: str
    title_field: str
    follow_links: bool
    limits: LoadLimits | None


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What `load_documents` read. `duplicates` holds (dropped document id, id of the document it
    repeats), with `dedupe` only; `skipped` holds (path, reason) for files that gave no document;
    `followed` holds (link, target) for links out of their folder that `follow_links` read."""

    documents: list[Document]
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    followed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    """(path, what was wrong) for files read with a problem worth knowing, e.g. malformed front matter."""


def load_documents(
    paths: Sequence[str | Path],
    *,
    root: Path | None = None,
    dedupe: bool = False,
    **options: Unpack[LoadOptions],
) -> LoadResult:
    """Read `paths` (files, folders, glob patterns such as `docs/**/*.md`) into documents whose ids are
    their paths relative to `root` (default: the common parent of `paths`), as `options` say (see
    `LoadOptions`); `dedupe` drops documents whose text repeats an earlier one's (see `drop_repeats`)."""
    if isinstance(paths, str | Path):
        paths = [paths]
    limits = options.get("limits") or LoadLimits()
    follow_links = options.get("follow_links", False)
    found = find(list(paths), FORMATS, follow_links=follow_links)
    skipped = found.skipped
    followed = found.followed

    base = Path(os.path.abspath(root)) if root is not None else _common_parent(found.bases)
    named = sorted((_relative(path, base), path) for path in found.files)

    documents: list[Document] = []
    notes: list[tuple[str, str]] = []
    where: dict[str, str] = {}  # document id -> where it came from, for duplicate-id errors
    fields = _Fields(
        options.get("text_field", "text"), options.get("id_field", "id"), options.get("title_field", "title")
    )
    for rel, path in named:
        fmt = FORMATS.get(path.suffix.lower())
        at = shown(path)
        if fmt is None:
            skipped.append((at, f"unsupported file type {extension(path)}"))
            continue
        try:
            data, target = read(
                path, found.files[path], follow_links=follow_links, max_bytes=limits.max_file_bytes
            )
        except Refused as exc:
            skipped.append((at, str(exc)))
            continue
        except OSError as exc:
            raise InvalidInputError(f"{at}: cannot be read: {exc.strerror}") from None
        if target is not None:
            followed.append((at, target))
        try:
            read_docs = _read(data, path, at, rel, fmt, fields, skipped, limits, notes)
        except Refused as exc:
            skipped.append((at, str(exc)))
            continue
        for doc, origin in read_docs:
            if doc.id in where:
                raise InvalidInputError(
                    f"{origin}: duplicate document id {doc.id!r} (also {where[doc.id]})",
                    hint="give every record its own id",
                )
            where[doc.id] = origin
            documents.append(doc)
    kept, duplicates = drop_repeats(documents) if dedupe else (documents, [])
    return LoadResult(kept, duplicates, sorted(set(skipped)), sorted(set(followed)), notes)


def _common_parent(bases: list[Path]) -> Path:
    if not bases:
        return Path.cwd()
    return Path(os.path.commonpath([str(b) for b in bases]))


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        raise InvalidInputError(
            f"{shown(path)}: not inside the root folder {shown(root)}",
            hint="pass a root that contains every path, or leave it out",
        ) from None


# --- reading one file ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Fields:
    """The JSONL fields that hold a record's text, id and title."""

    text: str
    id: str
    title: str


def _too_long(limits: LoadLimits) -> Refused:
    return Refused(
        f"more text than the limit of {limits.max_chars:,} characters in a document "
        "(raise it with --max-chars)"
    )


def _read(
    data: bytes,
    path: Path,
    shown: str,
    rel: str,
    fmt: str,
    fields: _Fields,
    skipped: list[tuple[str, str]],
    limits: LoadLimits,
    notes: list[tuple[str, str]],
) -> list[tuple[Document, str]]:
    """The documents in one file, each with where it came from (FILE or FILE:LINE). Raises `Refused`
    for a file over a limit."""
    if not data.strip():
        skipped.append((shown, "empty file"))
        return []
    metadata: dict[str, Any] = {"source": rel, "format": fmt}
    if fmt == "jsonl":
        return _jsonl(_decode(data, shown), shown, rel, fields, skipped, limits)
    if fmt == "pdf":
        text, title, pages = _pdf(data, shown, limits)
        metadata.update(pages)
    elif fmt == "html":
        text, title = _html(_decode(data, shown))
    else:
        text = _decode(data, shown)
        if len(text) > limits.max_chars:
            raise _too_long(limits)
        title = None
        if fmt == "markdown":
            text, front = _front_matter(text, shown, notes)
            front_title = front.pop("title", None)
            metadata = {**front, **metadata}
            title = front_title if isinstance(front_title, str) and front_title.strip() else None
            title = title or _markdown_title(text)
    if len(text) > limits.max_chars:
        raise _too_long(limits)
    if not text.strip():
        reason = "no text on any page (a scanned PDF needs OCR first)" if fmt == "pdf" else "no text"
        skipped.append((shown, reason))
        return []
    metadata["title"] = title or path.stem
    return [(Document(rel, text, metadata), shown)]


# `---` on the first line, YAML, then `---` (or YAML's `...`) on a line of its own.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)^(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL | re.MULTILINE)


def _front_matter(text: str, shown: str, notes: list[tuple[str, str]]) -> tuple[str, dict[str, Any]]:
    """(the text without its YAML front matter, the front matter's keys as metadata). Front matter that
    is not valid YAML, or not a mapping, leaves the text as it was, with a note saying why."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        return text, {}
    import yaml

    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        notes.append((shown, f"front matter is not valid YAML{where}: {problem}; kept as text"))
        return text, {}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        notes.append((shown, f"front matter is a {type(data).__name__}, not key: value pairs; kept as text"))
        return text, {}
    metadata: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key)
        if name in _RESERVED:
            notes.append(
                (shown, f"front matter key {name!r} is reserved for what honed records there; ignored")
            )
            continue
        metadata[name] = _plain(value)
    return text[match.end() :], metadata


def _plain(value: Any) -> Any:
    """A YAML value as JSON can hold it: dates and times in ISO form, mapping keys as strings."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    isoformat = getattr(value, "isoformat", None)
    return isoformat() if callable(isoformat) else str(value)


def _decode(data: bytes, shown: str) -> str:
    try:
        text = data.decode("utf-8-sig")  # a leading byte-order mark is not text
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InvalidInputError(
            f"{shown}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x})", hint="save the file as UTF-8"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


_ATX_H1 = re.compile(r"^ {0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)
_ATX_ANY = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)


def _markdown_title(text: str) -> str | None:
    match = _ATX_H1.search(text)
    return match.group(1).strip() if match else None


class _TitleParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.inside = False
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and not self.done:
            self.inside = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self.inside:
            self.inside = False
            self.done = True

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.parts.append(data)


# html2text escapes characters that would start a markdown list at a line's start ("1\\.", "\\-"):
# noise for retrieval, so the backslashes are taken out again.
_LIST_ESCAPE = re.compile(r"^([ \t]*(?:[*+-][ \t]+|\d+\.[ \t]+)?)(\d+\\\.|\\[-+])", re.MULTILINE)
_BLANK_LINES = re.compile(r"\n(?:[ \t]*\n){2,}")


def _html(source: str) -> tuple[str, str | None]:
    import html2text

    converter = html2text.HTML2Text()
    converter.ignore_links = True
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.body_width = 0  # no hard wrapping: lines stay the paragraphs they were
    converter.unicode_snob = True
    text = converter.handle(source)
    text = _LIST_ESCAPE.sub(lambda m: m.group(1) + m.group(2).replace("\\", ""), text)
    text = _BLANK_LINES.sub("\n\n", text).strip() + "\n"
    parser = _TitleParser()
    parser.feed(source)
    parser.close()
    title = " ".join("".join(parser.parts).split())
    if not title:
        heading = _ATX_ANY.search(text)
        title = heading.group(1).strip() if heading else ""
    return text, title or None


class _Stop(Exception):
    """Raised from inside pypdf's text extraction to end it at the character limit."""


def _pdf(data: bytes, shown: str, limits: LoadLimits) -> tuple[str, str | None, dict[str, Any]]:
    import io

    import pypdf
    from pypdf.errors import PdfReadWarning

    def unreadable(reason: str) -> InvalidInputError:
        return InvalidInputError(
            f"{shown}: not a readable PDF ({reason})",
            hint="open it in a PDF viewer; an encrypted PDF must be saved without a password first",
        )

    pages: list[str] = []
    title: str | None = None
    extracted = 0
    over = False

    pypdf_log = logging.getLogger("pypdf")
    log_level = pypdf_log.level

    # pypdf reports text to `visitor_text` as it goes: counting there ends a PDF that expands (one small
    # form drawn thousands of times) at the limit, not after. pypdf swallows an exception raised while it
    # draws a form (and logs that it could not), so once over, every further operator raises again until
    # extraction is left, and pypdf's complaints about the forms cut short are not shown.
    def count(text: str, *_: Any) -> None:
        nonlocal extracted, over
        extracted += len(text)
        if over or extracted > limits.max_chars:
            over = True
            pypdf_log.setLevel(logging.ERROR)
            raise _Stop

    def stop_if_over(*_: Any) -> None:
        if over:
            raise _Stop

    # pypdf raises many exception types on damaged files (its own, ValueError, KeyError, ...); every one
    # means the same thing here. It also warns about recoverable damage, which it then works around.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PdfReadWarning)
            reader = pypdf.PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                try:
                    opened = bool(reader.decrypt(""))  # many PDFs are encrypted with an empty password
                except Exception:  # e.g. AES without the optional cryptography package
                    opened = False
                if not opened:
                    raise unreadable("encrypted")
            if len(reader.pages) > limits.max_pdf_pages:
                raise Refused(
                    f"{len(reader.pages):,} pages, more than the limit of {limits.max_pdf_pages:,} pages in "
                    "a PDF (raise it with --max-pdf-pages)"
                )
            for page in reader.pages:
                pages.append(page.extract_text(visitor_text=count, visitor_operand_before=stop_if_over) or "")
                if over:
                    raise _Stop
            info = reader.metadata
            if info is not None and isinstance(info.title, str) and info.title.strip():
                title = info.title.strip()
    except (InvalidInputError, Refused):
        raise
    except _Stop:
        raise _too_long(limits) from None
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise unreadable(reason[:120]) from None
    finally:
        pypdf_log.setLevel(log_level)
    starts: list[int] = []
    offset = 0
    for text in pages:
        starts.append(offset)
        offset += len(text) + 2
    return "\n\n".join(pages), title, {"pages": len(pages), "page_starts": starts}


def _jsonl(
    text: str,
    shown: str,
    rel: str,
    names: _Fields,
    skipped: list[tuple[str, str]],
    limits: LoadLimits,
) -> list[tuple[Document, str]]:
    text_field, id_field = names.text, names.id
    out: list[tuple[Document, str]] = []
    stem = Path(rel).stem
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        at = f"{shown}:{lineno}"
        record = json_object(line, at)
        if text_field not in record:
            fields = ", ".join(record) or "none"
            raise InvalidInputError(
                f"{at}: no {text_field!r} field",
                hint=f"name the field that holds the text with --text-field (this record has: {fields})",
            )
        body = record[text_field]
        if not isinstance(body, str):
            raise InvalidInputError(f"{at}: {text_field!r} must be a string, not {type(body).__name__}")
        doc_id = f"{rel}#{lineno}"
        if id_field in record:
            value = record[id_field]
            if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
                raise InvalidInputError(
                    f"{at}: {id_field!r} must be a non-empty string or an integer, not {value!r}",
                    hint=f"fix it, or name another id field with --id-field (or drop {id_field!r})",
                )
            doc_id = str(value)
        metadata = {k: v for k, v in record.items() if k not in (text_field, id_field)}
        clash = [k for k in _RESERVED if k in metadata]
        if clash:
            raise InvalidInputError(
                f"{at}: field {clash[0]!r} is reserved for what honed records there",
                hint=f"rename it; reserved metadata fields: {', '.join(_RESERVED)}",
            )
        title = record.get(names.title)
        if not (isinstance(title, str) and title.strip()):
            title = None
        if not body.strip():
            if title is None:
                skipped.append((at, f"no text ({text_field!r} is empty) and no title ({names.title!r})"))
                continue
            # A record that is only a title (BEIR corpora hold thousands) is still a document a query may
            # be judged against: its title is its text.
            body = title.strip()
        if len(body) > limits.max_chars:
            skipped.append((at, str(_too_long(limits))))
            continue
        metadata.update(source=rel, format="jsonl", title=title or stem)
        out.append((Document(doc_id, body, metadata), at))
    return out


# --- duplicates ---------------------------------------------------------------------------------------


def drop_repeats(documents: Sequence[Document]) -> tuple[list[Document], list[tuple[str, str]]]:
    """`documents` without those whose text repeats an earlier one's (compared with whitespace
    collapsed), and (dropped id, id of the document it repeats) for each dropped: the first in the
    order given is kept."""
    seen: dict[bytes, str] = {}
    kept: list[Document] = []
    duplicates: list[tuple[str, str]] = []
    for doc in documents:
        key = hashlib.blake2b(" ".join(doc.text.split()).encode("utf-8", "surrogatepass"), digest_size=16)
        first = seen.setdefault(key.digest(), doc.id)
        if first == doc.id:
            kept.append(doc)
        else:
            duplicates.append((doc.id, first))
    return kept, duplicates


def json_object(line: str, at: str) -> dict[str, Any]:
    """One JSONL line as a JSON object (strict: no NaN, no repeated keys), or a one-line error at `at`
    (FILE:LINE)."""
    try:
        record = loads_strict(line)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{at}: not valid JSON ({exc.msg})", hint="fix the line") from None
    except ValueError as exc:
        raise InvalidInputError(f"{at}: {exc}", hint="fix the line") from None
    if not isinstance(record, dict):
        raise InvalidInputError(
            f"{at}: expected a JSON object, got {type(record).__name__}", hint="one object per line"
        )
    return record
