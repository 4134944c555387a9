"""Reading test collections in the exchange formats (`honed.rag.evaluate.formats`): BEIR folders and TREC
files written by hand into a temporary folder, their malformed variants (one-line errors naming FILE:LINE),
judgments naming unknown queries or documents (warnings, never silent), and Cranfield and CISI converted
to BEIR by `scripts/beir_from_smart.py` and read back into the same collection."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from honed.datasets import SplitPlan
from honed.errors import InvalidInputError
from honed.rag.evaluate.collections import load_collection
from honed.rag.evaluate.formats import load_beir, load_trec
from honed.rag.ingest.importing import query_cases
from tests.conftest import PROJECT_ROOT
from tests.support.realdata import DATA_DIR, require

CORPUS = [
    {
        "_id": "d1",
        "title": "Wing lift",
        "text": "Lift of a wing in a slipstream.",
        "metadata": {"year": 1958},
    },
    {"_id": "d2", "title": "Only a title", "text": ""},
    {"_id": "d3", "title": "", "text": "Only a text."},
    {"_id": "d4", "title": "", "text": ""},
    {"_id": 5, "title": "Numeric id", "text": "Body five.", "venue": "JAS"},
]
QUERIES = [
    {"_id": "q1", "text": "wing lift"},
    {"_id": "q2", "text": "a title"},
    {"_id": "q3", "text": "numeric"},
    {"_id": "q4", "text": "never judged"},
]
TEST_QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td3\t0\nq2\td2\t1\n"
TRAIN_QRELS = "query-id\tcorpus-id\tscore\nq3\t5\t1\n"


def jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def file_name(key: str) -> str:
    """`qrels__dev_tsv` -> `qrels/dev.tsv` (a file named as a keyword argument)."""
    return key.replace("__", "/").replace("_jsonl", ".jsonl").replace("_tsv", ".tsv")


def beir(folder: Path, **files: str) -> Path:
    """A BEIR folder with the files above; `files` replace some (`qrels__dev_tsv` is `qrels/dev.tsv`)."""
    content = {
        "corpus.jsonl": jsonl(CORPUS),
        "queries.jsonl": jsonl(QUERIES),
        "qrels/test.tsv": TEST_QRELS,
        "qrels/train.tsv": TRAIN_QRELS,
    }
    content.update({file_name(key): text for key, text in files.items()})
    for name, text in content.items():
        if text is None:
            continue
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def error_of(call: Callable[[], object]) -> str:
    with pytest.raises(InvalidInputError) as info:
        call()
    line = info.value.one_line()
    assert "\n" not in str(info.value), str(info.value)
    return line


# --- BEIR ---------------------------------------------------------------------------------------------


def test_a_beir_folder_gives_documents_queries_judgments_and_splits(tmp_path: Path) -> None:
    loaded = load_beir(beir(tmp_path / "small"))

    coll = loaded.collection
    assert loaded.warnings == [] and loaded.left_out == 0
    assert coll.name == "small"
    assert [d.id for d in coll.documents] == ["d1", "d2", "d3", "d4", "5"]
    d1, d2, d3, d4, d5 = coll.documents
    # Title + blank line + body, as the SMART collections are built; a title alone is the text.
    assert d1.text == "Wing lift\n\nLift of a wing in a slipstream."
    assert d1.metadata == {"source": "small/corpus.jsonl", "title": "Wing lift", "year": 1958}
    assert d2.text == "Only a title" and d3.text == "Only a text." and "title" not in d3.metadata
    assert d4.text == ""  # kept: a collection's ids are part of what its judgments mean
    assert d5.metadata == {"source": "small/corpus.jsonl", "title": "Numeric id", "venue": "JAS"}
    assert coll.queries == {"q1": "wing lift", "q2": "a title", "q3": "numeric", "q4": "never judged"}
    assert coll.qrels == {"q1": {"d1": 2, "d3": 0}, "q2": {"d2": 1}, "q3": {"5": 1}}
    # Each query's split is the qrels file that judges it; q4 is judged in none and has no split.
    assert coll.splits == {"q1": "test", "q2": "test", "q3": "train"}


def test_chosen_splits_keep_only_the_queries_they_judge(tmp_path: Path) -> None:
    loaded = load_beir(beir(tmp_path / "small"), splits=["test"])

    assert list(loaded.collection.queries) == ["q1", "q2"]
    assert loaded.collection.qrels == {"q1": {"d1": 2, "d3": 0}, "q2": {"d2": 1}}
    assert loaded.left_out == 2


def test_cases_have_the_shape_kb_eval_reads(tmp_path: Path) -> None:
    cases = {c.id: c for c in query_cases(load_beir(beir(tmp_path / "small")).collection)}

    q1 = cases["q1"]
    assert q1.inputs == {"query": "wing lift"} and q1.split == "test"
    assert q1.context_ids == ["d1"]  # grade 0 is judged, not relevant
    assert q1.metadata == {"qrels": {"d1": 2, "d3": 0}}
    assert cases["q4"].metadata == {} and cases["q4"].context_ids == [] and cases["q4"].split is None
    # A split plan fills in only the queries the collection gives no split.
    planned = {
        c.id: c.split for c in query_cases(load_beir(beir(tmp_path / "small")).collection, plan=SplitPlan())
    }
    assert planned["q1"] == "test" and planned["q3"] == "train" and planned["q4"] is not None


def test_judgments_naming_unknown_queries_or_documents_are_counted_not_dropped_silently(
    tmp_path: Path,
) -> None:
    qrels = TEST_QRELS + "q9\td1\t1\nq9\td2\t1\nq2\tgone\t1\nq2\tgone2\t2\n"
    folder = beir(tmp_path / "small", qrels__test_tsv=qrels)

    loaded = load_beir(folder, splits=["test"])

    test_tsv = folder / "qrels" / "test.tsv"
    assert loaded.warnings == [
        f"2 judgment(s) name 1 query id(s) not in {folder}/queries.jsonl (first: {test_tsv}:5: 'q9'); "
        "left out: a query without text cannot be asked",
        f"2 judgment(s) name 2 document id(s) not in {folder}/corpus.jsonl (first: {test_tsv}:7: 'gone'); "
        "kept: they count as relevant documents no run can retrieve",
    ]
    assert "q9" not in loaded.collection.qrels and "q9" not in loaded.collection.splits
    assert loaded.collection.qrels["q2"] == {"d2": 1, "gone": 1, "gone2": 2}


def test_judgments_that_match_nothing_mean_the_files_do_not_belong_together(tmp_path: Path) -> None:
    folder = beir(tmp_path / "small", qrels__test_tsv="q1\tx1\t1\nq7\td1\t1\n", qrels__train_tsv="")
    message = error_of(lambda: load_beir(folder))
    assert message.startswith("no judgment in ") and "(first: " in message and "same collection" in message


def test_an_unknown_split_lists_the_ones_there(tmp_path: Path) -> None:
    folder = beir(tmp_path / "small")
    assert error_of(lambda: load_beir(folder, splits=["dev"])) == (
        f"{folder}: no split 'dev' (no qrels/dev.tsv) (splits here: test, train)"
    )


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"corpus_jsonl": jsonl(CORPUS[:1]) + "{not json\n"}, "corpus.jsonl:2: not valid JSON"),
        (
            {"corpus_jsonl": jsonl(CORPUS[:1]) + '{"title": "t", "text": "x"}\n'},
            "corpus.jsonl:2: no '_id' field",
        ),
        ({"corpus_jsonl": jsonl(CORPUS[:1] * 2)}, "corpus.jsonl:2: document 'd1' appears twice (also "),
        ({"corpus_jsonl": '{"_id": "d", "title": "t"}\n'}, "corpus.jsonl:1: no 'text' field"),
        ({"corpus_jsonl": '{"_id": "d", "text": "x", "metadata": [1]}\n'}, "'metadata' must be an object"),
        (
            {"corpus_jsonl": '{"_id": "d", "text": "x", "source": "y"}\n'},
            "corpus.jsonl:1: field 'source' is reserved",
        ),
        ({"corpus_jsonl": '{"_id": "d", "text": 3}\n'}, "corpus.jsonl:1: 'text' must be a string, not int"),
        ({"queries_jsonl": '{"_id": "q1", "text": "  "}\n'}, "queries.jsonl:1: query 'q1' has no text"),
        ({"queries_jsonl": '["q1"]\n'}, "queries.jsonl:1: expected a JSON object, got list"),
        ({"qrels__test_tsv": "query-id\tcorpus-id\tscore\nq1\td1\n"}, "test.tsv:2: expected `query-id<TAB>"),
        ({"qrels__test_tsv": "q1\td1\thigh\n"}, "test.tsv:1: the grade must be an integer, got 'high'"),
        (
            {"qrels__test_tsv": "q1\td1\t1\n\nq1\td1\t2\n"},
            "test.tsv:3: query 'q1' judges document 'd1' twice",
        ),
        (
            {"qrels__train_tsv": "q1\td2\t1\n"},
            "train.tsv:1: query 'q1' is judged in split 'train' and in 'test'",
        ),
        ({"corpus_jsonl": None, "queries_jsonl": None}, "small: no corpus.jsonl"),
    ],
)
def test_malformed_beir_files_are_one_line_errors_naming_file_and_line(
    tmp_path: Path, files: dict[str, str | None], expected: str
) -> None:
    folder = tmp_path / "small"
    beir(folder)
    for name, text in files.items():
        path = folder / file_name(name)
        if text is None:
            path.unlink()
        else:
            path.write_text(text, encoding="utf-8")
    assert expected in error_of(lambda: load_beir(folder))


def test_a_folder_without_qrels_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "bare"
    folder.mkdir()
    (folder / "corpus.jsonl").write_text(jsonl(CORPUS), encoding="utf-8")
    (folder / "queries.jsonl").write_text(jsonl(QUERIES), encoding="utf-8")
    assert error_of(lambda: load_beir(folder)).startswith(f"{folder}/qrels: no <split>.tsv file")


# --- TREC ---------------------------------------------------------------------------------------------

TREC_DOCS = """\
<DOC>
<DOCNO> FT911-1 </DOCNO>
<HEADLINE>Wing &amp; lift</HEADLINE>
<TEXT>
Lift of a wing
in a <P>slipstream</P>.
</TEXT>
</DOC>
<DOC>
<DOCNO>FT911-2</DOCNO>
<TEXT>Heat in slabs.</TEXT>
<TEXT>Second part.</TEXT>
</DOC>
"""
TOPICS = """\
<top>
<num> Number: 051
<title> Topic: wing lift

<desc> Description:
What is known about the lift of wings?

<narr> Narrative:
A relevant document measures lift.
</top>

<top>
<num> Number: 52 </num>
<title> heat conduction </title>
<desc> Description: Heat in composite slabs. </desc>
</top>
"""
TREC_QRELS = "51 0 FT911-1 1\n51 0 FT911-2 0\n"


def trec(
    folder: Path, docs: str = TREC_DOCS, topics: str = TOPICS, qrels: str = TREC_QRELS
) -> tuple[Path, ...]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = (folder / "docs.trec", folder / "topics.txt", folder / "qrels.txt")
    for path, text in zip(paths, (docs, topics, qrels), strict=True):
        path.write_text(text, encoding="utf-8")
    return paths


def test_trec_files_give_documents_topics_and_judgments(tmp_path: Path) -> None:
    corpus, topics, qrels = trec(tmp_path)

    loaded = load_trec(corpus, topics, qrels)

    coll = loaded.collection
    assert [d.id for d in coll.documents] == ["FT911-1", "FT911-2"]
    first, second = coll.documents
    assert first.text == "Wing & lift\n\nLift of a wing\nin a slipstream ."
    assert first.metadata == {"source": "docs.trec", "title": "Wing & lift"}
    assert second.text == "Heat in slabs.\n\nSecond part." and "title" not in second.metadata
    # Topic numbers are compared without leading zeros (051 in the topics, 51 in the qrels).
    assert coll.queries == {"51": "wing lift", "52": "heat conduction"}
    assert coll.qrels == {"51": {"FT911-1": 1, "FT911-2": 0}}
    assert coll.splits == {} and loaded.left_out == 0 and loaded.warnings == []

    desc = load_trec(corpus, topics, qrels, topic_field="desc").collection.queries
    assert desc == {"51": "What is known about the lift of wings?", "52": "Heat in composite slabs."}
    both = load_trec(corpus, topics, qrels, topic_field="title+desc").collection.queries
    assert both["52"] == "heat conduction\n\nHeat in composite slabs."

    # A split names what the qrels are; only the topics they judge are kept.
    split = load_trec(corpus, topics, qrels, split="test")
    assert split.collection.splits == {"51": "test"} and list(split.collection.queries) == ["51"]
    assert split.left_out == 1


def test_a_trec_corpus_may_be_jsonl(tmp_path: Path) -> None:
    corpus, topics, qrels = trec(tmp_path, qrels="51 0 d1 1\n")
    corpus.write_text(jsonl(CORPUS), encoding="utf-8")
    coll = load_trec(corpus, topics, qrels).collection
    assert [d.id for d in coll.documents] == ["d1", "d2", "d3", "d4", "5"]


@pytest.mark.parametrize(
    ("which", "text", "expected"),
    [
        (
            "docs",
            "<DOC>\n<DOCNO>a</DOCNO>\n<TEXT>x</TEXT>\n\n<DOC>\n",
            "docs.trec:5: <DOC> inside the <DOC> of line 1",
        ),
        ("docs", "<DOC>\n<DOCNO>a</DOCNO>\n<TEXT>x</TEXT>\n", "docs.trec:1: <DOC> is never closed"),
        ("docs", "<DOC>\n<TEXT>x</TEXT>\n</DOC>\n", "docs.trec:1: <DOC> with no <DOCNO>...</DOCNO>"),
        (
            "docs",
            "<DOC><DOCNO>a</DOCNO></DOC>\nstray\n<DOC><DOCNO>b</DOCNO></DOC>\n",
            "docs.trec:2: text outside <DOC>",
        ),
        (
            "docs",
            "<DOC><DOCNO>a</DOCNO></DOC>\n<DOC><DOCNO>a</DOCNO></DOC>\n",
            "docs.trec:2: document 'a' appears twice",
        ),
        ("docs", "</DOC>\n", "docs.trec:1: </DOC> without <DOC>"),
        ("docs", "plain text\n", "docs.trec:1: neither JSONL nor TREC <DOC> blocks"),
        ("topics", "<top>\n<title> x\n</top>\n", "topics.txt:1: topic without a number"),
        (
            "topics",
            TOPICS + "<top>\n<num> Number: 51\n<title> again\n</top>\n",
            "topics.txt:17: topic 51 appears twice (first on line 1)",
        ),
        ("topics", "nothing here\n", "topics.txt:1: text outside <top>"),
        ("qrels", "51 0 FT911-1\n", "qrels.txt:1: expected `topic iteration docno grade`, got 3 field(s)"),
        (
            "qrels",
            "51 0 FT911-1 1\n51 0 FT911-2 yes\n",
            "qrels.txt:2: the grade must be an integer, got 'yes'",
        ),
    ],
)
def test_malformed_trec_files_are_one_line_errors_naming_file_and_line(
    tmp_path: Path, which: str, text: str, expected: str
) -> None:
    paths = trec(tmp_path, **{which: text})
    assert expected in error_of(lambda: load_trec(*paths))


def test_a_topic_without_the_chosen_field_is_an_error(tmp_path: Path) -> None:
    paths = trec(
        tmp_path, topics=TOPICS.replace("<desc> Description: Heat in composite slabs. </desc>\n", "")
    )
    message = error_of(lambda: load_trec(*paths, topic_field="desc"))
    assert message.startswith(f"{paths[1]}:12: topic 52 has no <desc> text")


# --- Cranfield and CISI through BEIR ------------------------------------------------------------------


def converter() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "beir_from_smart", PROJECT_ROOT / "scripts" / "beir_from_smart.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("name", "documents", "queries", "judged"), [("cranfield", 1400, 225, 225), ("cisi", 1460, 112, 76)]
)
def test_smart_collections_converted_to_beir_read_back_the_same(
    tmp_path: Path, name: str, documents: int, queries: int, judged: int
) -> None:
    require(name)
    out = tmp_path / name
    assert converter().main([name, str(out), "--data-dir", str(DATA_DIR)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["corpus.jsonl", "qrels", "queries.jsonl"]

    loaded = load_beir(out)

    original = load_collection(name, DATA_DIR)
    coll = loaded.collection
    assert loaded.warnings == [] and loaded.left_out == 0
    assert len(coll.documents) == documents and len(coll.queries) == queries and len(coll.qrels) == judged
    assert [d.id for d in coll.documents] == [d.id for d in original.documents]
    assert [d.text for d in coll.documents] == [d.text for d in original.documents]
    assert [{k: v for k, v in d.metadata.items() if k != "source"} for d in coll.documents] == [
        {k: v for k, v in d.metadata.items() if k != "source"} for d in original.documents
    ]
    assert coll.queries == original.queries and coll.qrels == original.qrels
    assert set(coll.splits.values()) == {"test"} and len(coll.splits) == judged


def test_the_converter_says_what_is_wrong_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        converter().main(["cranfield", str(tmp_path / "out"), "--data-dir", str(tmp_path / "nowhere")]) == 1
    )
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: test collection folder ") and "does not exist" in line
