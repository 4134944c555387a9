"""Convert a SMART test collection of the data folder (cranfield, cisi) to the BEIR layout.

    python scripts/beir_from_smart.py cranfield OUT_DIR [--data-dir DIR]

writes OUT_DIR/corpus.jsonl (`_id`, `title`, `text`, `metadata` with author and bibliography),
OUT_DIR/queries.jsonl (`_id`, `text`) and OUT_DIR/qrels/test.tsv (`query-id corpus-id score`, every
judgment, graded as `honed.rag.evaluate.collections` grades it). The collection is read in place from the data
folder (DIR, else HONED_DATA_DIR, else ../shared/data beside the project); nothing is copied into the
project. `honed kb import NAME OUT_DIR --format beir` reads it back into the same documents (the text is
title + blank line + body, as the SMART reader builds it), queries and judgments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from honed.errors import HonedError
from honed.rag.evaluate.collections import COLLECTIONS, Collection, load_collection
from honed.rag.types import Document

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def corpus_record(doc: Document) -> dict[str, Any]:
    """The BEIR record of a SMART document: its body is the text after the title's blank line."""
    title = str(doc.metadata.get("title", ""))
    body = doc.text
    if title and body.startswith(title):
        body = body[len(title) :].removeprefix("\n\n")
    metadata = {k: v for k, v in doc.metadata.items() if k not in ("title", "source")}
    record: dict[str, Any] = {"_id": doc.id, "title": title, "text": body}
    if metadata:
        record["metadata"] = metadata
    return record


def write_beir(collection: Collection, out: Path) -> None:
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for doc in collection.documents:
            f.write(json.dumps(corpus_record(doc), ensure_ascii=False) + "\n")
    with (out / "queries.jsonl").open("w", encoding="utf-8") as f:
        for qid, text in collection.queries.items():
            f.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    with (out / "qrels" / "test.tsv").open("w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for qid, docs in collection.qrels.items():
            for doc_id, grade in docs.items():
                f.write(f"{qid}\t{doc_id}\t{grade}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("collection", choices=COLLECTIONS)
    parser.add_argument("out", type=Path, help="the folder to write (created if missing)")
    parser.add_argument("--data-dir", type=Path, help="the folder holding cranfield/ and cisi/")
    args = parser.parse_args(argv)
    data = args.data_dir or Path(os.environ.get("HONED_DATA_DIR") or DEFAULT_DATA)
    try:
        collection = load_collection(args.collection, data)
        write_beir(collection, args.out)
    except HonedError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {args.out}: cannot write ({exc.strerror})", file=sys.stderr)
        return 1
    judgments = sum(len(d) for d in collection.qrels.values())
    print(
        f"{args.collection}: {len(collection.documents)} documents, {len(collection.queries)} queries, "
        f"{judgments} judgments -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
