"""Reading files into `Document`s for a knowledge base.

`load_documents` takes files, folders (walked recursively, hidden entries skipped) and glob patterns, and
reads .txt, .md/.markdown, .html/.htm (converted to markdown-like text), .pdf (text of every page) and
.jsonl (one document per record). Nothing is dropped silently: a file a walk or glob met but could not
use is listed in `skipped` with the reason, and a document whose text repeats an earlier one is listed in
`duplicates`; anything the user named that cannot be read is an `InvalidInputError` naming the file (and
line, for JSONL).

Files are read in the order of their ids (the path relative to the root, in posix form) and JSONL
records in line order, so which of two duplicates survives never depends on the order a file system
lists a folder in.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from honed.datasets.readers import loads_strict
from honed.errors import InvalidInputError
from honed.rag.types import Document

__all__ = ["FORMATS", "LoadResult", "load_documents"]

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
_GLOB_CHARS = re.compile(r"[*?[]")


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What `load_documents` read. `duplicates` holds (dropped document id, id of the document it
    repeats); `skipped` holds (path, reason) for files met in a folder or glob that gave no document."""

    documents: list[Document]
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def load_documents(
    paths: Sequence[str | Path],
    *,
    root: Path | None = None,
    text_field: str = "text",
    id_field: str = "id",
) -> LoadResult:
    """Read `paths` (files, folders, glob patterns such as `docs/**/*.md`) into documents whose ids are
    their paths relative to `root` (default: the common parent of `paths`). `text_field` and `id_field`
    name the JSONL fields holding each record's text and id."""
    if isinstance(paths, str | Path):
        paths = [paths]
    files: dict[Path, None] = {}  # absolute paths, in a set that keeps the order they were found in
    bases: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            bases.append(_absolute(path))
            _walk(path, files, skipped)
        elif path.exists():
            if path.suffix.lower() not in FORMATS:
                raise InvalidInputError(
                    f"{_shown(path)}: unsupported file type {_extension(path)}",
                    hint=f"supported: {', '.join(FORMATS)}",
                )
            bases.append(_absolute(path).parent)
            files[_absolute(path)] = None
        elif _GLOB_CHARS.search(str(given)):
            matches = sorted(glob.glob(str(given), recursive=True))
            if not matches:
                raise InvalidInputError(f"{given}: the pattern matches no files", hint="check the pattern")
            bases.append(_absolute(_glob_base(str(given))))
            for match in matches:
                if os.path.isdir(match):
                    _walk(Path(match), files, skipped)
                else:
                    files[_absolute(Path(match))] = None
        else:
            raise InvalidInputError(f"{given}: no such file or folder", hint="check the path")

    base = _absolute(Path(root)) if root is not None else _common_parent(bases)
    named = sorted((_relative(path, base), path) for path in files)

    documents: list[Document] = []
    where: dict[str, str] = {}  # document id -> where it came from, for duplicate-id errors
    for rel, path in named:
        fmt = FORMATS.get(path.suffix.lower())
        shown = _shown(path)
        if fmt is None:
            skipped.append((shown, f"unsupported file type {_extension(path)}"))
            continue
        for doc, origin in _read(path, shown, rel, fmt, text_field, id_field, skipped):
            if doc.id in where:
                raise InvalidInputError(
                    f"{origin}: duplicate document id {doc.id!r} (also {where[doc.id]})",
                    hint="give every record its own id",
                )
            where[doc.id] = origin
            documents.append(doc)
    kept, duplicates = _dedupe(documents)
    return LoadResult(kept, duplicates, sorted(skipped))


# --- finding files ------------------------------------------------------------------------------------


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


def _shown(path: Path) -> str:
    """The path as the user would type it: relative to the current folder when inside it."""
    try:
        return Path(os.path.relpath(path)).as_posix() if path.is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)


def _walk(folder: Path, files: dict[Path, None], skipped: list[tuple[str, str]]) -> None:
    for current, dirs, names in os.walk(folder):
        here = Path(current)
        for name in sorted(dirs):
            if name.startswith("."):
                skipped.append((_shown(here / name) + "/", "hidden folder"))
            elif (here / name).is_symlink():
                skipped.append((_shown(here / name) + "/", "link to a folder (not followed)"))
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (here / d).is_symlink())
        for name in sorted(names):
            path = here / name
            if name.startswith("."):
                skipped.append((_shown(path), "hidden file"))
            elif not path.is_file():
                skipped.append((_shown(path), "not a regular file"))
            else:
                files[_absolute(path)] = None


def _extension(path: Path) -> str:
    return repr(path.suffix) if path.suffix else "(no extension)"


def _glob_base(pattern: str) -> Path:
    """The folder a glob pattern searches: its leading parts without wildcards."""
    parts: list[str] = []
    for part in Path(pattern).parts:
        if _GLOB_CHARS.search(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path()


def _common_parent(bases: list[Path]) -> Path:
    if not bases:
        return Path.cwd()
    return Path(os.path.commonpath([str(b) for b in bases]))


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        raise InvalidInputError(
            f"{_shown(path)}: not inside the root folder {_shown(root)}",
            hint="pass a root that contains every path, or leave it out",
        ) from None


# --- reading one file ---------------------------------------------------------------------------------


def _read(
    path: Path,
    shown: str,
    rel: str,
    fmt: str,
    text_field: str,
    id_field: str,
    skipped: list[tuple[str, str]],
) -> list[tuple[Document, str]]:
    """The documents in one file, each with where it came from (FILE or FILE:LINE)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"{shown}: cannot be read: {exc.strerror}") from None
    if not data.strip():
        skipped.append((shown, "empty file"))
        return []
    metadata: dict[str, Any] = {"source": rel, "format": fmt}
    if fmt == "jsonl":
        return _jsonl(_decode(data, shown), shown, rel, text_field, id_field, skipped)
    if fmt == "pdf":
        text, title, pages = _pdf(data, shown)
        metadata.update(pages)
    elif fmt == "html":
        text, title = _html(_decode(data, shown))
    else:
        text = _decode(data, shown)
        title = _markdown_title(text) if fmt == "markdown" else None
    if not text.strip():
        reason = "no text on any page (a scanned PDF needs OCR first)" if fmt == "pdf" else "no text"
        skipped.append((shown, reason))
        return []
    metadata["title"] = title or path.stem
    return [(Document(rel, text, metadata), shown)]


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


def _pdf(data: bytes, shown: str) -> tuple[str, str | None, dict[str, Any]]:
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
            for page in reader.pages:
                pages.append(page.extract_text() or "")
            info = reader.metadata
            if info is not None and isinstance(info.title, str) and info.title.strip():
                title = info.title.strip()
    except InvalidInputError:
        raise
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise unreadable(reason[:120]) from None
    starts: list[int] = []
    offset = 0
    for text in pages:
        starts.append(offset)
        offset += len(text) + 2
    return "\n\n".join(pages), title, {"pages": len(pages), "page_starts": starts}


def _jsonl(
    text: str, shown: str, rel: str, text_field: str, id_field: str, skipped: list[tuple[str, str]]
) -> list[tuple[Document, str]]:
    out: list[tuple[Document, str]] = []
    stem = Path(rel).stem
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        at = f"{shown}:{lineno}"
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
        if not body.strip():
            skipped.append((at, "empty text"))
            continue
        title = metadata.get("title")
        metadata.update(
            source=rel, format="jsonl", title=title if isinstance(title, str) and title.strip() else stem
        )
        out.append((Document(doc_id, body, metadata), at))
    return out


# --- duplicates ---------------------------------------------------------------------------------------


def _dedupe(documents: list[Document]) -> tuple[list[Document], list[tuple[str, str]]]:
    """Documents whose text is the same after collapsing whitespace: the first (by id order) is kept."""
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
