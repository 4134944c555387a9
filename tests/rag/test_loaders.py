"""Loading real files written to a temporary folder: every format, folders, globs, ids, duplicates, and
every error a user can cause (each one line, naming the file and, for JSONL, the line)."""

from __future__ import annotations

import io
import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pypdf
import pytest

from honed.errors import InvalidInputError
from honed.rag.ingest.loaders import FORMATS, LoadLimits, LoadResult, load_documents


def pdf_bytes(pages: list[str], title: str | None = None) -> bytes:
    """A valid PDF with one page per string (lines become text lines, Helvetica), written by hand with
    correct xref offsets so that pypdf's strict mode accepts it."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    count = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(count))
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for i, text in enumerate(pages):
        ops = " ".join(f"({escape(line)}) Tj T*" for line in text.split("\n"))
        stream = f"BT /F1 12 Tf 14 TL 72 720 Td {ops} ET".encode("latin-1")
        objects[4 + 2 * i] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>"
        ).encode()
        objects[5 + 2 * i] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
    trailer = f"/Root 1 0 R /Size {len(objects) + 1 + (1 if title else 0)}"
    if title:
        objects[4 + 2 * count] = f"<< /Title ({escape(title)}) >>".encode("latin-1")
        trailer += f" /Info {4 + 2 * count} 0 R"
    return assemble(objects, trailer)


def assemble(objects: dict[int, bytes], trailer: str) -> bytes:
    """A PDF file of numbered objects (1..n) with correct xref offsets."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number in sorted(objects):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += f"trailer\n<< {trailer} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def form_bomb_pdf(levels: int, fanout: int, text: str) -> bytes:
    """A PDF of a few kilobytes whose one page expands to a lot of text: a form XObject shows `text`, and
    each of `levels` further forms draws the one below it `fanout` times (fanout ** levels copies)."""

    def stream(data: bytes, dictionary: str) -> bytes:
        return f"<< /Length {len(data)} {dictionary} >>\nstream\n".encode() + data + b"\nendstream"

    form = "/Type /XObject /Subtype /Form /BBox [0 0 612 792]"
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        5: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        6: stream(
            f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode(),
            f"{form} /Resources << /Font << /F1 5 0 R >> >>",
        ),
    }
    for level in range(levels):
        draw = b" ".join([b"/X Do"] * fanout)
        objects[7 + level] = stream(draw, f"{form} /Resources << /XObject << /X {6 + level} 0 R >> >>")
    objects[3] = (
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        f"/Resources << /XObject << /X {6 + levels} 0 R >> >> /Contents 4 0 R >>"
    ).encode()
    objects[4] = stream(b"/X Do", "")
    return assemble(objects, f"/Root 1 0 R /Size {len(objects) + 1}")


@contextmanager
def within(seconds: int) -> Iterator[None]:
    """Fail, instead of hanging the test run, if the block takes longer than `seconds`."""

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def error_of(*args: Any, **kwargs: Any) -> str:
    """The one-line message of the InvalidInputError that load_documents raises."""
    with pytest.raises(InvalidInputError) as info:
        load_documents(*args, **kwargs)
    line = info.value.one_line()
    assert "\n" not in str(info.value), str(info.value)
    return line


HTML = """<!doctype html>
<html><head><title> The  Page </title>
<style>body { color: red; }</style>
<script>var secret = "SCRIPT-TEXT";</script></head>
<body><h1>Welcome</h1>
<p>See <a href="https://example.com/very/long/link">the docs</a> for more &amp; less.</p>
<script>document.write("BODY-SCRIPT")</script>
<ol><li>first step</li><li>second step</li></ol>
<img src="logo.png" alt="logo">
</body></html>
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    write(docs / "guide.md", "Preface line.\n\n# User Guide\n\nInstall it.\n\n## Setup\n\nRun it.\n")
    write(docs / "notes.txt", "Plain notes,\r\nwith Windows line ends.\r\n")
    write(docs / "page.html", HTML)
    write(docs / "sub" / "deep.markdown", "## Only a level-two heading\n\nDeep text.\n")
    write(docs / ".draft.md", "# Hidden\n")
    write(docs / ".git" / "config", "[core]\n")
    write(docs / "logo.png", b"\x89PNG\r\n")
    write(docs / "empty.txt", "")
    write(docs / "blank.md", "  \n\n ")
    return docs


def test_a_folder_is_walked_and_everything_left_out_is_reported(tree: Path) -> None:
    result = load_documents([tree])

    assert isinstance(result, LoadResult)
    assert [d.id for d in result.documents] == ["guide.md", "notes.txt", "page.html", "sub/deep.markdown"]
    by_id = {d.id: d for d in result.documents}
    assert by_id["guide.md"].metadata == {"source": "guide.md", "format": "markdown", "title": "User Guide"}
    assert by_id["sub/deep.markdown"].metadata["title"] == "deep"  # no level-one heading: the file stem
    assert by_id["notes.txt"].text == "Plain notes,\nwith Windows line ends.\n"
    assert by_id["notes.txt"].metadata == {"source": "notes.txt", "format": "text", "title": "notes"}
    assert dict(result.skipped) == {
        "docs/.git/": "hidden folder",
        "docs/.draft.md": "hidden file",
        "docs/blank.md": "empty file",
        "docs/empty.txt": "empty file",
        "docs/logo.png": "unsupported file type '.png'",
    }
    assert result.duplicates == []


def test_html_becomes_text_without_scripts_styles_or_link_targets(tree: Path) -> None:
    doc = load_documents([tree / "page.html"]).documents[0]

    assert doc.id == "page.html"
    assert doc.metadata == {"source": "page.html", "format": "html", "title": "The Page"}
    assert "# Welcome" in doc.text
    assert "See the docs for more & less." in doc.text
    assert "1. first step" in doc.text and "2. second step" in doc.text
    for clutter in ("SCRIPT-TEXT", "BODY-SCRIPT", "color", "example.com", "logo", "\\"):
        assert clutter not in doc.text


def test_html_without_title_is_named_by_its_first_heading(tmp_path: Path) -> None:
    write(tmp_path / "a.htm", "<body><p>intro</p><h2>Second Level</h2><p>text</p></body>")
    doc = load_documents(["a.htm"]).documents[0]
    assert doc.metadata["title"] == "Second Level"
    assert doc.metadata["format"] == "html"


def test_ids_are_relative_to_the_common_parent_or_the_given_root(tmp_path: Path) -> None:
    write(tmp_path / "kb" / "a" / "x.md", "x text")
    write(tmp_path / "kb" / "b" / "y.txt", "y text")

    result = load_documents(["kb/a/x.md", "kb/b"])
    assert [d.id for d in result.documents] == ["a/x.md", "b/y.txt"]
    assert [d.metadata["source"] for d in result.documents] == ["a/x.md", "b/y.txt"]

    rooted = load_documents(["kb/a/x.md"], root=tmp_path)
    assert [d.id for d in rooted.documents] == ["kb/a/x.md"]

    single = load_documents(["kb/a/x.md"])
    assert [d.id for d in single.documents] == ["x.md"]

    message = error_of(["kb/a/x.md"], root=tmp_path / "kb" / "b")
    assert message.startswith("kb/a/x.md: not inside the root folder kb/b")


def test_a_glob_selects_files_and_ids_start_below_its_fixed_part(tree: Path) -> None:
    result = load_documents(["docs/**/*.m*"])
    # The recursive glob matches guide.md, blank.md and sub/deep.markdown, but not the hidden .draft.md.
    assert [d.id for d in result.documents] == ["guide.md", "sub/deep.markdown"]
    assert result.skipped == [("docs/blank.md", "empty file")]

    everything = load_documents(["docs/*"])  # a matched folder is walked; a matched .png is skipped
    assert [d.id for d in everything.documents] == ["guide.md", "notes.txt", "page.html", "sub/deep.markdown"]
    assert ("docs/logo.png", "unsupported file type '.png'") in everything.skipped


def test_the_same_file_named_twice_is_read_once(tree: Path) -> None:
    result = load_documents([tree / "guide.md", tree, "docs/*.md"])
    assert [d.id for d in result.documents].count("guide.md") == 1
    assert result.duplicates == []


def test_documents_with_the_same_text_are_all_kept_unless_deduped(tmp_path: Path) -> None:
    write(tmp_path / "b.txt", "Same  text\nhere.")
    write(tmp_path / "a.md", "Same text here.\n")
    write(tmp_path / "c.txt", "Other text.")
    write(tmp_path / "d.jsonl", json.dumps({"id": "r1", "text": "Same text   here."}) + "\n")

    # Distinct ids are distinct documents: a test collection's judgments may name any of them.
    kept = load_documents([tmp_path])
    assert [d.id for d in kept.documents] == ["a.md", "b.txt", "c.txt", "r1"]
    assert kept.duplicates == []

    result = load_documents([tmp_path], dedupe=True)

    assert [d.id for d in result.documents] == ["a.md", "c.txt"]
    assert result.duplicates == [("b.txt", "a.md"), ("r1", "a.md")]


def test_markdown_front_matter_becomes_metadata_and_is_not_in_the_text(tmp_path: Path) -> None:
    write(
        tmp_path / "docs" / "policy.md",
        "---\ncategory: policy\ntitle: Returns policy\ntags: [returns, refunds]\nupdated: 2024-05-01\n"
        "owner: {team: support}\n---\n# Returns\n\nThirty days from delivery.\n",
    )
    write(tmp_path / "docs" / "empty-block.md", "---\n---\n# Shipping\n\nFive days.\n")
    write(tmp_path / "docs" / "notes.txt", "---\ncategory: policy\n---\nText files have no front matter.\n")

    result = load_documents([tmp_path / "docs"])

    by_id = {d.id: d for d in result.documents}
    policy = by_id["policy.md"]
    assert policy.text == "# Returns\n\nThirty days from delivery.\n"
    assert policy.metadata == {
        "category": "policy",
        "title": "Returns policy",  # front matter's title wins over the heading
        "tags": ["returns", "refunds"],
        "updated": "2024-05-01",  # YAML dates are kept as ISO text
        "owner": {"team": "support"},
        "source": "policy.md",
        "format": "markdown",
    }
    assert by_id["empty-block.md"].text == "# Shipping\n\nFive days.\n"
    assert by_id["empty-block.md"].metadata["title"] == "Shipping"
    assert (
        by_id["notes.txt"].text.startswith("---\ncategory: policy")
        and "category" not in by_id["notes.txt"].metadata
    )
    assert result.warnings == []


@pytest.mark.parametrize(
    ("front", "warning"),
    [
        ("category: [policy\n", "front matter is not valid YAML (line 3)"),
        ("- a list\n- not a mapping\n", "front matter is a list, not key: value pairs"),
        ("just a sentence\n", "front matter is a str, not key: value pairs"),
    ],
)
def test_front_matter_that_is_not_a_mapping_is_a_warning_and_the_text_is_kept(
    tmp_path: Path, front: str, warning: str
) -> None:
    text = f"---\n{front}---\n# Returns\n\nThirty days.\n"
    write(tmp_path / "docs" / "bad.md", text)

    result = load_documents([tmp_path / "docs"])

    [doc] = result.documents
    assert doc.text == text and doc.metadata == {"source": "bad.md", "format": "markdown", "title": "Returns"}
    [(where, message)] = result.warnings
    assert where.endswith("bad.md") and message.startswith(warning) and message.endswith("kept as text")


def test_front_matter_cannot_overwrite_what_honed_records(tmp_path: Path) -> None:
    write(tmp_path / "docs" / "a.md", "---\nsource: elsewhere.md\nteam: ops\n---\nBody.\n")

    result = load_documents([tmp_path / "docs"])

    [doc] = result.documents
    assert doc.metadata == {"team": "ops", "source": "a.md", "format": "markdown", "title": "a"}
    [(_, message)] = result.warnings
    assert "front matter key 'source' is reserved" in message


def test_jsonl_records_become_documents(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "faq-1", "text": "How do I reset?", "title": "Reset", "lang": "en"}),
        "",
        json.dumps({"text": "Record without id.", "tags": ["a", "b"]}),
        json.dumps({"id": 7, "text": "   "}),
        json.dumps({"id": 8, "text": "Numeric id."}),
    ]
    write(tmp_path / "kb" / "faq.jsonl", "\n".join(lines) + "\n")

    result = load_documents(["kb/faq.jsonl"])

    assert [d.id for d in result.documents] == ["faq-1", "faq.jsonl#3", "8"]
    first, second, third = result.documents
    assert first.text == "How do I reset?"
    assert first.metadata == {"title": "Reset", "lang": "en", "source": "faq.jsonl", "format": "jsonl"}
    assert second.metadata == {"tags": ["a", "b"], "source": "faq.jsonl", "format": "jsonl", "title": "faq"}
    assert third.metadata["title"] == "faq"
    assert result.skipped == [("kb/faq.jsonl:4", "no text ('text' is empty) and no title ('title')")]


def test_jsonl_fields_can_be_renamed(tmp_path: Path) -> None:
    write(tmp_path / "q.jsonl", json.dumps({"doc_id": "d1", "body": "The body.", "id": "kept"}) + "\n")
    result = load_documents(["q.jsonl"], text_field="body", id_field="doc_id")
    assert [(d.id, d.text) for d in result.documents] == [("d1", "The body.")]
    assert result.documents[0].metadata["id"] == "kept"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            '{"body": "x"}',
            "bad.jsonl:2: no 'text' field (name the field that holds the text with --text-field",
        ),
        ("{not json", "bad.jsonl:2: not valid JSON"),
        ('["a list"]', "bad.jsonl:2: expected a JSON object, got list"),
        ('{"text": 3}', "bad.jsonl:2: 'text' must be a string, not int"),
        ('{"text": "t", "id": null}', "bad.jsonl:2: 'id' must be a non-empty string or an integer"),
        ('{"text": "t", "source": "web"}', "bad.jsonl:2: field 'source' is reserved"),
        ('{"text": "t", "id": "one"}', "bad.jsonl:2: duplicate document id 'one' (also bad.jsonl:1)"),
        ('{"text": "t", "text": "u"}', "bad.jsonl:2: key 'text' appears twice in one object"),
    ],
)
def test_a_bad_jsonl_line_is_named(tmp_path: Path, line: str, expected: str) -> None:
    write(tmp_path / "bad.jsonl", '{"id": "one", "text": "fine"}\n' + line + "\n")
    message = error_of(["bad.jsonl"])
    assert message.startswith(expected), message


def test_missing_text_field_hint_lists_the_record_fields(tmp_path: Path) -> None:
    write(tmp_path / "bad.jsonl", '{"question": "q", "answer": "a"}\n')
    assert error_of(["bad.jsonl"]) == (
        "bad.jsonl:1: no 'text' field (name the field that holds the text with --text-field "
        "(this record has: question, answer))"
    )


def test_pdf_text_pages_and_title(tmp_path: Path) -> None:
    data = pdf_bytes(["Page one text.\nSecond line (with parens).", "Page two text."], title="Manual")
    # The hand-written file is valid: pypdf's strict parser reads the text back.
    strict = pypdf.PdfReader(io.BytesIO(data), strict=True)
    assert "Second line (with parens)." in strict.pages[0].extract_text()
    write(tmp_path / "manual.pdf", data)

    doc = load_documents(["manual.pdf"]).documents[0]

    assert doc.id == "manual.pdf"
    assert doc.metadata["format"] == "pdf"
    assert doc.metadata["title"] == "Manual"
    assert doc.metadata["pages"] == 2
    first, second = doc.metadata["page_starts"]
    assert first == 0
    assert doc.text[first:second].strip() == "Page one text.\nSecond line (with parens)."
    assert doc.text[second:].strip() == "Page two text."


def test_pdf_without_title_uses_the_file_stem(tmp_path: Path) -> None:
    write(tmp_path / "report-2024.pdf", pdf_bytes(["Body."]))
    assert load_documents(["report-2024.pdf"]).documents[0].metadata["title"] == "report-2024"


def test_pdf_encrypted_with_an_empty_password_is_read(tmp_path: Path) -> None:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(pdf_bytes(["Open sesame."]))))
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    with (tmp_path / "open.pdf").open("wb") as handle:
        writer.write(handle)
    assert "Open sesame." in load_documents(["open.pdf"]).documents[0].text


def test_unreadable_pdfs_are_errors(tmp_path: Path) -> None:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(pdf_bytes(["Secret."]))))
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    with (tmp_path / "locked.pdf").open("wb") as handle:
        writer.write(handle)
    assert error_of(["locked.pdf"]).startswith("locked.pdf: not a readable PDF (encrypted)")

    write(tmp_path / "broken.pdf", b"%PDF-1.4\nthis is not a pdf body at all\n")
    assert error_of(["broken.pdf"]).startswith("broken.pdf: not a readable PDF (")


def test_pdf_without_text_is_skipped(tmp_path: Path) -> None:
    write(tmp_path / "scan.pdf", pdf_bytes([""]))
    result = load_documents([tmp_path])
    assert result.documents == []
    assert result.skipped == [("scan.pdf", "no text on any page (a scanned PDF needs OCR first)")]


def test_path_errors(tmp_path: Path) -> None:
    write(tmp_path / "slides.pptx", "x")
    write(tmp_path / "latin1.txt", "fine line\ncaf\xe9\n".encode("latin-1"))

    assert error_of(["missing/folder"]) == "missing/folder: no such file or folder (check the path)"
    assert (
        error_of(["nothing/**/*.md"]) == "nothing/**/*.md: the pattern matches no files (check the pattern)"
    )
    message = error_of(["slides.pptx"])
    assert message.startswith("slides.pptx: unsupported file type '.pptx' (supported: ")
    assert all(ext in message for ext in FORMATS)
    assert error_of(["latin1.txt"]) == "latin1.txt:2: not UTF-8 (byte 0xe9) (save the file as UTF-8)"


def test_an_explicitly_named_empty_file_is_skipped_not_an_error(tmp_path: Path) -> None:
    write(tmp_path / "empty.md", "")
    assert load_documents(["empty.md"]) == LoadResult([], [], [("empty.md", "empty file")])


def test_a_single_string_is_one_path(tmp_path: Path) -> None:
    write(tmp_path / "one.txt", "one")
    assert [d.id for d in load_documents("one.txt").documents] == ["one.txt"]


# --- what is read: regular files inside the folders named, within limits --------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the one ingested, holding what must not get in."""
    write(tmp_path / "outside" / "secret.txt", "OUTSIDE-SECRET in a file\n")
    write(tmp_path / "outside" / "notes.md", "# Notes\n\nOUTSIDE-SECRET in a folder\n")
    return tmp_path / "outside"


def texts(result: LoadResult) -> str:
    return "\n".join(d.text for d in result.documents)


def test_a_link_to_a_file_outside_the_folder_is_skipped_with_the_reason(
    tmp_path: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HONED_TEST_ENV_SECRET", "ENV-SECRET-4242")
    write(tmp_path / "docs" / "guide.md", "# Guide\n\nThe guide.\n")
    write(tmp_path / "docs" / "sub" / "real.txt", "Real text.\n")
    (tmp_path / "docs" / "secret.txt").symlink_to(outside / "secret.txt")
    (tmp_path / "docs" / "inside.txt").symlink_to(tmp_path / "docs" / "sub" / "real.txt")
    if Path("/proc/self/environ").exists():
        (tmp_path / "docs" / "env.txt").symlink_to("/proc/self/environ")

    for given in (["docs"], ["docs/*.txt"], ["docs/secret.txt", "docs/guide.md"]):
        result = load_documents(given)
        assert "OUTSIDE-SECRET" not in texts(result) and "ENV-SECRET-4242" not in texts(result)
        skipped = dict(result.skipped)
        target = os.path.realpath(outside / "secret.txt")
        assert skipped["docs/secret.txt"] == (
            f"link to {target}, outside docs/ (not read; --follow-links reads it)"
        )
        if Path("/proc/self/environ").exists() and given != ["docs/secret.txt", "docs/guide.md"]:
            assert skipped["docs/env.txt"].startswith("link to /proc/")
    # A link whose target is inside the folder is read (here: the same text as the file it points to).
    linked = load_documents(["docs"])
    assert {"inside.txt", "sub/real.txt"} <= {d.id for d in linked.documents}
    assert load_documents(["docs"], dedupe=True).duplicates == [("sub/real.txt", "inside.txt")]


def test_follow_links_reads_links_out_of_the_folder_and_reports_each(tmp_path: Path, outside: Path) -> None:
    write(tmp_path / "docs" / "guide.md", "# Guide\n\nThe guide.\n")
    (tmp_path / "docs" / "secret.txt").symlink_to(outside / "secret.txt")
    (tmp_path / "docs" / "ext").symlink_to(outside, target_is_directory=True)
    (tmp_path / "docs" / "loop").symlink_to(tmp_path / "docs", target_is_directory=True)

    result = load_documents(["docs"], follow_links=True)

    ids = sorted(d.id for d in result.documents)
    assert ids == ["ext/notes.md", "ext/secret.txt", "guide.md", "secret.txt"]
    assert result.duplicates == []
    assert result.followed == [
        ("docs/ext/", os.path.realpath(outside)),
        ("docs/secret.txt", os.path.realpath(outside / "secret.txt")),
    ]
    assert ("docs/loop/", "link to a folder already walked (not followed again)") in result.skipped


def test_a_linked_folder_outside_the_root_is_not_walked(tmp_path: Path, outside: Path) -> None:
    write(tmp_path / "docs" / "guide.md", "# Guide\n\nThe guide.\n")
    (tmp_path / "docs" / "ext").symlink_to(outside, target_is_directory=True)
    reason = "link to a folder (not followed; --follow-links follows it)"

    for given in ("docs/**/*.md", "docs/*/*.md", "docs/*", "docs"):
        result = load_documents(["docs/guide.md", given])
        assert [d.id for d in result.documents] == ["guide.md"], given
        assert "OUTSIDE-SECRET" not in texts(result)
        assert ("docs/ext/", reason) in result.skipped, given
    # The link is met by a glob too: the pattern matched something, so it is no "matches no files" error.
    assert load_documents(["docs/e*/*.md"]).skipped == [("docs/ext/", reason)]


def test_a_fifo_is_skipped_without_blocking(tmp_path: Path) -> None:
    write(tmp_path / "docs" / "guide.md", "# Guide\n\nThe guide.\n")
    os.mkfifo(tmp_path / "docs" / "pipe.txt")
    (tmp_path / "docs" / "to-pipe.txt").symlink_to(tmp_path / "docs" / "pipe.txt")

    fifo = "not a regular file (a FIFO)"
    cases = [
        (["docs"], ["guide.md"], [("docs/pipe.txt", fifo), ("docs/to-pipe.txt", fifo)]),
        (["docs/*.txt"], [], [("docs/pipe.txt", fifo), ("docs/to-pipe.txt", fifo)]),
        (["docs/pipe.txt", "docs/guide.md"], ["guide.md"], [("docs/pipe.txt", fifo)]),
        (["docs/to-pipe.txt"], [], [("docs/to-pipe.txt", fifo)]),
    ]
    with within(20):  # opening a FIFO for reading with no writer would block forever
        for given, ids, skipped in cases:
            result = load_documents(given)
            assert [d.id for d in result.documents] == ids, given
            assert result.skipped == skipped, given


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "docs" / "big.txt", "x" * 5000)
    write(tmp_path / "docs" / "small.txt", "small")

    result = load_documents(["docs"], limits=LoadLimits(max_file_bytes=4096))

    assert [d.id for d in result.documents] == ["small.txt"]
    assert result.skipped == [
        ("docs/big.txt", "larger than the limit of 4,096 bytes for a file (raise it with --max-file-mb)")
    ]
    # A file that says it is empty but is not (as /proc files do) is stopped at the limit while read.
    if Path("/proc/self/environ").exists():
        (tmp_path / "docs" / "env.txt").symlink_to("/proc/self/environ")
        tiny = load_documents(["docs/env.txt"], follow_links=True, limits=LoadLimits(max_file_bytes=8))
        assert tiny.documents == []
        assert tiny.skipped == [
            ("docs/env.txt", "larger than the limit of 8 bytes for a file (raise it with --max-file-mb)")
        ]


def test_pdf_page_limit(tmp_path: Path) -> None:
    write(tmp_path / "three.pdf", pdf_bytes(["One.", "Two.", "Three."]))

    assert (
        load_documents(["three.pdf"], limits=LoadLimits(max_pdf_pages=3)).documents[0].metadata["pages"] == 3
    )
    result = load_documents(["three.pdf"], limits=LoadLimits(max_pdf_pages=2))
    assert result.documents == []
    assert result.skipped == [
        ("three.pdf", "3 pages, more than the limit of 2 pages in a PDF (raise it with --max-pdf-pages)")
    ]


def test_character_limit_for_every_format(tmp_path: Path) -> None:
    write(tmp_path / "long.md", "word " * 30)
    write(tmp_path / "long.pdf", pdf_bytes(["word " * 30]))
    write(
        tmp_path / "rows.jsonl",
        json.dumps({"id": "short", "text": "ok"}) + "\n" + json.dumps({"text": "w" * 200}),
    )
    reason = "more text than the limit of 100 characters in a document (raise it with --max-chars)"

    result = load_documents([tmp_path], limits=LoadLimits(max_chars=100))

    assert [d.id for d in result.documents] == ["short"]
    assert result.skipped == [("long.md", reason), ("long.pdf", reason), ("rows.jsonl:2", reason)]


def test_a_pdf_that_expands_is_stopped_at_the_character_limit(tmp_path: Path) -> None:
    # 2.6 KB that pypdf expands to 3.2 million characters (80 x 80 draws of a form, of which pypdf itself
    # stops at 5,000) unless the limit ends the extraction.
    data = form_bomb_pdf(levels=2, fanout=80, text="A" * 640)
    assert len(data) < 4096
    write(tmp_path / "bomb.pdf", data)

    with within(60):
        result = load_documents(["bomb.pdf"])  # the default limits
    assert result.documents == []
    assert result.skipped == [
        (
            "bomb.pdf",
            "more text than the limit of 2,000,000 characters in a document (raise it with --max-chars)",
        )
    ]
    # The same file within a raised limit is read whole: the refusal was the limit, not a broken file.
    small = form_bomb_pdf(levels=1, fanout=30, text="Readable text.")
    write(tmp_path / "small.pdf", small)
    doc = load_documents(["small.pdf"], limits=LoadLimits(max_chars=1000)).documents[0]
    assert doc.text.count("Readable text.") == 30


def test_the_cli_prints_skipped_paths_as_text_not_markup(workspace: Path) -> None:
    from tests.support.cli import honed

    (workspace / "docs").mkdir()
    os.mkfifo(workspace / "docs" / "[bold]pipe.md")  # brackets that rich would read as markup
    assert honed("kb", "create", "docs", cwd=workspace).returncode == 0
    r = honed("kb", "ingest", "docs", "docs/", cwd=workspace, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "skipped: docs/[bold]pipe.md (not a regular file (a FIFO))" in r.stderr
