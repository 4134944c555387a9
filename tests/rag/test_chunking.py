"""The chunker on real text: the slice invariant and the token budget (property-tested on random text for
every strategy), markdown structure, sentence rules, overlap, pages, settings errors, and the real
Cranfield corpus."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from honed.errors import InvalidInputError
from honed.hashing import content_hash
from honed.rag.ingest.chunking import (
    ChunkingConfig,
    _sentences,
    chunk_document,
    chunk_documents,
    count_tokens,
)
from honed.rag.ingest.loaders import load_documents
from honed.rag.types import Chunk, Document
from tests.rag.test_loaders import pdf_bytes
from tests.support.realdata import require

STRATEGIES = ("tokens", "recursive", "sentences")


def check_chunks(doc: Document, chunks: list[Chunk], size: int) -> None:
    """What every chunk of every strategy must satisfy."""
    for position, chunk in enumerate(chunks):
        start, end = chunk.metadata["start"], chunk.metadata["end"]
        assert doc.text[start:end] == chunk.text
        assert chunk.text.strip() == chunk.text != ""
        assert chunk.id == Chunk.make_id(doc.id, position) == f"{doc.id}#{position}"
        assert (chunk.doc_id, chunk.position) == (doc.id, position)
        # The one allowed excess: a single character that encodes to more than `size` tokens on its own.
        assert count_tokens(chunk.text) <= size or len(chunk.text) == 1, (chunk.text, size)
        # The document's metadata, except page offsets (a chunk gets its own `page` instead).
        inherited = {k: v for k, v in doc.metadata.items() if k != "page_starts"}
        assert {k: v for k, v in chunk.metadata.items() if k in inherited} == inherited
    starts = [c.metadata["start"] for c in chunks]
    assert starts == sorted(starts)
    # No text is lost: every non-space character lies in some chunk.
    covered = bytearray(len(doc.text))
    for chunk in chunks:
        covered[chunk.metadata["start"] : chunk.metadata["end"]] = b"\x01" * len(chunk.text)
    lost = [i for i, ch in enumerate(doc.text) if not ch.isspace() and not covered[i]]
    assert not lost, [doc.text[i] for i in lost[:10]]


WORDS = ("word", "Words", "supercalifragilisticexpialidocious", "0123456789", "3.14")
UNICODE = ("é", "中文", "🙂", "👩‍👩‍👧")
SPACES = (" ", "  ", "\n", "\n\n", "\t", "\r\n", "   \n  \n")
MARKUP = ("\n# Title\n", "\n## Sub\n", "### ", "- item\n", "1. ", "```\n", "<|endoftext|>")
STOPS = (". ", "? ", "! ", "e.g. ", "Dr. ", "...")
PIECES = st.one_of(st.sampled_from([*WORDS, *UNICODE, *SPACES, *MARKUP, *STOPS]), st.text(max_size=6))
TEXTS = st.lists(PIECES, max_size=80).map("".join)


@pytest.mark.parametrize("strategy", STRATEGIES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS, size=st.integers(1, 40), overlap_share=st.floats(0, 0.99))
def test_every_chunk_is_an_exact_slice_within_the_budget(
    strategy: str, text: str, size: int, overlap_share: float
) -> None:
    config = ChunkingConfig.model_validate(
        {"strategy": strategy, "size": size, "overlap": int(size * overlap_share)}
    )
    doc = Document("d.md", text, {"source": "d.md", "title": "d"})
    chunks = chunk_document(doc, config)
    check_chunks(doc, chunks, size)
    if not text.strip():
        assert chunks == []


def test_whitespace_only_and_empty_documents_give_no_chunks() -> None:
    for strategy in STRATEGIES:
        config = ChunkingConfig(strategy=strategy)
        assert chunk_document(Document("e", ""), config) == []
        assert chunk_document(Document("w", " \n\t\n  "), config) == []


MARKDOWN = """Preamble before any heading.

# Intro

Intro text. It has e.g. two sentences.

## Setup

### Install

Run the installer.

```
# not a heading, a shell comment
make install
```

## Usage
{usage}

# Appendix
Last words.
"""


def test_recursive_chunks_follow_markdown_sections_and_name_their_heading() -> None:
    usage = "\n\n".join(f"Paragraph {i} explains one more option in detail." for i in range(12))
    doc = Document("guide.md", MARKDOWN.replace("{usage}", usage), {"source": "guide.md"})

    chunks = chunk_document(doc, ChunkingConfig(strategy="recursive", size=40, overlap=0))

    check_chunks(doc, chunks, 40)
    headings = [c.metadata.get("heading") for c in chunks]
    assert headings[0] is None and chunks[0].text == "Preamble before any heading."
    assert chunks[1].metadata["heading"] == "Intro"
    assert chunks[1].text == "# Intro\n\nIntro text. It has e.g. two sentences."
    # "## Setup" has nothing of its own, so it travels with its first subsection.
    install = chunks[2]
    assert install.metadata["heading"] == "Intro > Setup > Install"
    assert install.text.startswith("## Setup\n\n### Install\n\nRun the installer.")
    assert "# not a heading" in install.text  # a '#' line inside a code fence is not a heading
    usage_chunks = [c for c in chunks if c.metadata.get("heading") == "Intro > Usage"]
    assert len(usage_chunks) > 2
    for chunk in usage_chunks[1:]:  # paragraphs are never cut: each chunk starts at one
        assert re.match(r"Paragraph \d+ explains", chunk.text)
        assert chunk.text.endswith("in detail.")
    assert chunks[-1].metadata["heading"] == "Appendix"
    assert chunks[-1].text == "# Appendix\nLast words."
    # Chunks are as full as the budget allows: two neighbours never fit together.
    for a, b in itertools.pairwise(usage_chunks):
        assert count_tokens(doc.text[a.metadata["start"] : b.metadata["end"]]) > 40


def test_recursive_falls_back_to_sentences_then_tokens() -> None:
    sentence = "The quick brown fox jumps over the lazy dog near the river bank today."
    long_word = "x" * 400  # no separator at all inside: only token windows can cut it
    doc = Document("long.txt", f"{sentence} {sentence} {sentence}\n\n{long_word}")

    chunks = chunk_document(doc, ChunkingConfig(strategy="recursive", size=20, overlap=0))

    check_chunks(doc, chunks, 20)
    assert [c.text for c in chunks[:3]] == [sentence] * 3
    assert "".join(c.text for c in chunks[3:]) == long_word
    assert all(count_tokens(c.text) == 20 for c in chunks[3:-1])


def test_recursive_overlap_repeats_whole_trailing_pieces() -> None:
    sentences = [f"Sentence {i} talks about topic {i}." for i in range(30)]
    doc = Document("s.txt", " ".join(sentences))
    per_sentence = count_tokens(sentences[10])

    chunks = chunk_document(
        doc, ChunkingConfig(strategy="recursive", size=per_sentence * 4, overlap=per_sentence)
    )

    check_chunks(doc, chunks, per_sentence * 4)
    for a, b in itertools.pairwise(chunks):
        last_of_a = a.text.rsplit(". ", 1)[-1]
        assert b.text.startswith(last_of_a)  # exactly one sentence of overlap


def test_sentences_are_not_cut_at_abbreviations_initials_or_decimals() -> None:
    text = (
        "Dr. Smith measured 3.14 units, e.g. in the lab. J. R. Tolkien wrote books, i.e. novels! "
        "Was it approx. five? Yes... it was.\n\nA new paragraph has no final stop\n- a list item\n"
        "The answer is no. Fig. 3 shows it."
    )
    doc = Document("t.txt", text)

    chunks = chunk_document(doc, ChunkingConfig(strategy="sentences", size=1000, overlap=0))
    assert [c.text for c in chunks] == [text]
    expected = [
        "Dr. Smith measured 3.14 units, e.g. in the lab.",
        "J. R. Tolkien wrote books, i.e. novels!",
        "Was it approx. five?",
        "Yes...",
        "it was.",
        "A new paragraph has no final stop",
        "- a list item\nThe answer is no.",  # a line break alone continues a sentence (or list item)
        "Fig. 3 shows it.",
    ]
    assert [text[s:e] for s, e in _sentences(text, 0, len(text))] == expected
    # Whatever the budget, chunks start and end on those sentence boundaries.
    starts = {text.index(s) for s in expected}
    ends = {text.index(s) + len(s) for s in expected}
    longest = max(count_tokens(s) for s in expected)
    for size in (longest, longest + 5, longest * 2):
        chunks = chunk_document(doc, ChunkingConfig(strategy="sentences", size=size, overlap=0))
        assert len(chunks) > 1
        assert all(c.metadata["start"] in starts and c.metadata["end"] in ends for c in chunks)


def test_sentence_overlap_is_whole_sentences_that_fit_in_the_overlap() -> None:
    sentences = [f"This is sentence number {i}." for i in range(20)]
    doc = Document("o.txt", " ".join(sentences))
    one = count_tokens(sentences[5])

    two_back = chunk_document(doc, ChunkingConfig(strategy="sentences", size=one * 5, overlap=one * 2))
    check_chunks(doc, two_back, one * 5)
    assert len(two_back) > 3
    for a, b in itertools.pairwise(two_back):
        last_two = " ".join(re.split(r"(?<=\.) ", a.text)[-2:])
        assert b.text.startswith(last_two + " ")  # b opens with a's last two sentences

    no_room = chunk_document(doc, ChunkingConfig(strategy="sentences", size=one * 5, overlap=one - 1))
    for a, b in itertools.pairwise(no_room):  # a sentence that does not fit is not repeated
        assert b.metadata["start"] >= a.metadata["end"]


def test_token_windows_have_fixed_size_and_overlap() -> None:
    text = " ".join(f"token{i % 97} alpha beta" for i in range(600))
    doc = Document("w.txt", text)

    chunks = chunk_document(doc, ChunkingConfig(strategy="tokens", size=50, overlap=10))

    check_chunks(doc, chunks, 50)
    assert len(chunks) > 10
    for a, b in itertools.pairwise(chunks):
        assert 47 <= count_tokens(a.text) <= 50
        shared = doc.text[b.metadata["start"] : a.metadata["end"]]
        assert 8 <= count_tokens(shared) <= 11


def test_a_character_longer_than_the_budget_is_kept_whole() -> None:
    doc = Document("e.txt", "ab 🙂 cd")  # the emoji alone is several tokens
    assert count_tokens("🙂") > 1
    for strategy in STRATEGIES:
        chunks = chunk_document(doc, ChunkingConfig(strategy=strategy, size=1, overlap=0))
        check_chunks(doc, chunks, 1)
        assert "🙂" in [c.text for c in chunks]


def test_lone_surrogates_from_json_escapes_are_chunked(tmp_path: Path) -> None:
    (tmp_path / "s.jsonl").write_text('{"text": "broken \\ud800 pair. Then more words follow here."}\n')
    doc = load_documents(["s.jsonl"]).documents[0]
    assert "\ud800" in doc.text
    for strategy in STRATEGIES:
        check_chunks(doc, chunk_document(doc, ChunkingConfig(strategy=strategy, size=4, overlap=1)), 4)


def test_chunks_name_the_pdf_page_they_start_on(tmp_path: Path) -> None:
    pages = [
        f"Page {n} says: " + " ".join(f"fact {n}.{i} is stated here." for i in range(40)) for n in (1, 2, 3)
    ]
    (tmp_path / "book.pdf").write_bytes(pdf_bytes(pages))
    doc = load_documents([tmp_path / "book.pdf"]).documents[0]
    page_starts = doc.metadata["page_starts"]

    for strategy in STRATEGIES:
        chunks = chunk_document(doc, ChunkingConfig(strategy=strategy, size=64, overlap=8))
        check_chunks(doc, chunks, 64)
        assert {c.metadata["page"] for c in chunks} == {1, 2, 3}
        for chunk in chunks:
            assert "page_starts" not in chunk.metadata
            page = chunk.metadata["page"]
            assert page_starts[page - 1] <= chunk.metadata["start"]
            assert page == 3 or chunk.metadata["start"] < page_starts[page]
            assert chunk.metadata["pages"] == 3 and chunk.metadata["format"] == "pdf"


def test_chunk_documents_keeps_document_order_and_metadata() -> None:
    docs = [
        Document(f"d{i}", f"Document {i} text. " * 30, {"source": f"d{i}", "lang": "en"}) for i in range(3)
    ]
    config = ChunkingConfig(size=32, overlap=4)
    chunks = chunk_documents(docs, config)
    assert chunks == [c for d in docs for c in chunk_document(d, config)]
    assert [c.doc_id for c in chunks] == sorted(c.doc_id for c in chunks)
    assert all(c.metadata["lang"] == "en" for c in chunks)


def test_config_defaults_and_body() -> None:
    config = ChunkingConfig()
    assert (config.strategy, config.size, config.overlap) == ("recursive", 256, 32)
    body = config.body()
    assert body == {
        "strategy": "recursive",
        "size": 256,
        "overlap": 32,
        "tokenizer": "cl100k_base",
        "algorithm": 1,
    }
    assert content_hash(ChunkingConfig(size=256).body()) == content_hash(body)
    assert content_hash(ChunkingConfig(size=255).body()) != content_hash(body)
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        config.size = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("settings_", "expected"),
    [
        ({"size": 0}, "chunking: size: input should be greater than or equal to 1 (got 0)"),
        ({"size": "12"}, "chunking: size: input should be a valid integer (got '12')"),
        ({"overlap": -1}, "chunking: overlap: input should be greater than or equal to 0 (got -1)"),
        ({"size": 10, "overlap": 10}, "chunking: overlap: must be smaller than size (10) (got 10)"),
        (
            {"strategy": "words"},
            "chunking: strategy: must be one of tokens, recursive, sentences, document (got 'words')",
        ),
        ({"sise": 10}, "chunking: sise: unknown key ("),
    ],
)
def test_bad_settings_name_the_field(settings_: dict[str, object], expected: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        ChunkingConfig.model_validate(settings_)
    assert info.value.one_line().startswith(expected)
    assert "strategy is tokens, recursive, sentences or document" in str(info.value)
    if "sise" in settings_:
        assert "allowed keys here: strategy, size, overlap" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(InvalidInputError):
        ChunkingConfig(**settings_)  # type: ignore[arg-type]


def test_cranfield_corpus_chunks_within_budget() -> None:
    raw = require("cranfield", "cran.all.1400").read_text(encoding="utf-8")
    docs = [Document(f"cran/{i}", part) for i, part in enumerate(raw.split("\n.I "))]
    for strategy in STRATEGIES:
        chunks = chunk_documents(docs, ChunkingConfig(strategy=strategy, size=128, overlap=16))
        by_id = {d.id: d for d in docs}
        assert len(chunks) > len(docs)
        for chunk in chunks[::7]:
            doc = by_id[chunk.doc_id]
            assert doc.text[chunk.metadata["start"] : chunk.metadata["end"]] == chunk.text
            assert count_tokens(chunk.text) <= 128


def test_the_document_strategy_keeps_each_document_whole() -> None:
    long = "  A title\n\n" + "Words that go on. " * 400 + "\n"
    config = ChunkingConfig(strategy="document")
    [chunk] = chunk_document(Document("d1", long, {"title": "A title"}), config)
    assert chunk.text == long.strip() and long[chunk.metadata["start"] : chunk.metadata["end"]] == chunk.text
    assert count_tokens(chunk.text) > config.size  # no budget: the whole document, however long
    assert chunk.metadata["title"] == "A title" and chunk.id.startswith("d1")
    assert chunk_document(Document("d2", " \n "), config) == []
    assert config.body() != ChunkingConfig().body()  # another index than the default chunking
