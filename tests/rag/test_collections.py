"""The Cranfield and CISI test collections as read from ../shared/data, and the SMART reader's rules on
small damaged copies."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from honed.errors import InvalidInputError
from honed.rag.evaluate.collections import Collection, load_collection
from honed.rag.evaluate.metrics import Ranking, evaluate
from tests.support.realdata import DATA_DIR, require


def _load(name: str) -> Collection:
    require(name)
    return load_collection(name, DATA_DIR)


def _ideal(collection: Collection) -> Ranking:
    """Each judged query's judged docs first, best grade first, then every other doc."""
    ranking: Ranking = {}
    n = len(collection.documents)
    for qid, judged in collection.qrels.items():
        scores = {d.id: 0.0 for d in collection.documents}
        for doc_id, gain in judged.items():
            scores[doc_id] = float(n + gain)
        ranking[qid] = scores
    return ranking


def _reversed(ranking: Ranking) -> Ranking:
    return {q: {d: -s for d, s in docs.items()} for q, docs in ranking.items()}


def test_cranfield_counts_and_spot_values() -> None:
    cran = _load("cranfield")
    assert cran.name == "cranfield"
    assert [d.id for d in cran.documents] == [str(i) for i in range(1, 1401)]
    assert list(cran.queries) == [str(i) for i in range(1, 226)]
    assert len(cran.qrels) == 225 and sum(len(j) for j in cran.qrels.values()) == 1837
    # gain = 5 - code: 353 code-1, 387 code-2, 734 code-3 and 363 code-4 pairs in cranqrel
    assert Counter(g for j in cran.qrels.values() for g in j.values()) == {4: 353, 3: 387, 2: 734, 1: 363}

    first = cran.documents[0]
    title = "experimental investigation of the aerodynamics of a wing in a slipstream ."
    assert first.metadata == {
        "source": "cranfield/cran.all.1400",
        "title": title,
        "author": "brenckman,m.",
        "bib": "j. ae. scs. 25, 1958, 324.",
    }
    assert first.text.startswith(title + "\n\n") and first.text.endswith(
        "the specific configuration of the experiment ."
    )
    # Record 576 is damaged in the original: its second .W is kept, not lost.
    assert "ionization level can be increased" in cran.documents[575].text
    assert "limit characteristics" in cran.documents[575].text
    # Records 471 and 995 are empty in the original; they are kept, with empty text.
    assert [d.id for d in cran.documents if not d.text] == ["471", "995"]

    assert cran.queries["1"].startswith("what similarity laws must be obeyed when constructing aeroelastic")
    assert cran.qrels["1"]["184"] == 3  # `1 184 2` in cranqrel
    assert cran.documents[183].metadata["title"] == "scale models for thermo-aeroelastic research ."


def test_cranfield_queries_are_numbered_in_file_order_as_the_qrels_are() -> None:
    cran = _load("cranfield")
    # The last query is `.I 365` in cran.qry; the qrels call it 225, and its judged docs are about it.
    assert cran.queries["225"].startswith(
        "what design factors can be used to control lift-drag ratios at mach"
    )
    titles = {d.id: d.metadata.get("title", "") for d in cran.documents}
    judged = [titles[doc_id] for doc_id, gain in cran.qrels["225"].items() if gain >= 3]
    assert sum("hypersonic" in t for t in judged) >= 2
    assert "365" not in cran.qrels and "3" in cran.qrels  # cran.qry's .I 004 is query 3


def test_cisi_counts_and_spot_values() -> None:
    cisi = _load("cisi")
    assert [d.id for d in cisi.documents] == [str(i) for i in range(1, 1461)]
    assert list(cisi.queries) == [str(i) for i in range(1, 113)]
    assert len(cisi.qrels) == 76 and sum(len(j) for j in cisi.qrels.values()) == 3114
    assert {g for j in cisi.qrels.values() for g in j.values()} == {1}
    unjudged = [q for q in cisi.queries if q not in cisi.qrels]
    assert len(unjudged) == 36 and unjudged[:3] == ["36", "38", "40"]

    first = cisi.documents[0]
    assert first.metadata == {
        "source": "cisi/CISI.ALL",
        "title": "18 Editions of the Dewey Decimal Classifications",
        "author": "Comaromi, J.P.",
    }
    assert first.text.startswith("18 Editions of the Dewey Decimal Classifications\n\nThe present study is")
    assert cisi.documents[32].metadata["author"] == "Burton, R.E.; Kebler, R.W."  # two .A fields
    assert cisi.queries["3"] == "What is information science?  Give definitions where possible."
    assert cisi.queries["58"].startswith(
        "Directions in Library Networking\n\nBibliographic control before and"
    )
    assert len(cisi.qrels["1"]) == 46 and "28" in cisi.qrels["1"]


@pytest.mark.parametrize("name", ["cranfield", "cisi"])
def test_ids_line_up_with_evaluate(name: str) -> None:
    collection = _load(name)
    ideal = _ideal(collection)
    best = evaluate(ideal, collection.qrels, ["MAP", "nDCG@10", "R-prec"])
    assert best.aggregate == {"MAP": 1.0, "nDCG@10": 1.0, "R-prec": 1.0}
    assert best.num_queries == len(collection.qrels)
    worst = evaluate(_reversed(ideal), collection.qrels, ["MAP", "nDCG@10"])
    assert worst.aggregate["nDCG@10"] == 0.0 and worst.aggregate["MAP"] < 0.05


def test_unknown_name_and_missing_data(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="unknown test collection 'trec'") as info:
        load_collection("trec", tmp_path)
    assert "cranfield" in (info.value.hint or "")
    with pytest.raises(InvalidInputError) as info:
        load_collection("cisi", tmp_path)
    assert str(tmp_path / "cisi") in str(info.value) and "HONED_DATA_DIR" in (info.value.hint or "")
    (tmp_path / "cisi").mkdir()
    (tmp_path / "cisi" / "CISI.ALL").write_text(".I 1\n.W\ntext\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"CISI\.QRY is missing"):
        load_collection("cisi", tmp_path)


def _cranfield_copy(tmp_path: Path, docs: str, queries: str, qrels: str) -> Path:
    folder = tmp_path / "cranfield"
    folder.mkdir()
    (folder / "cran.all.1400").write_text(docs, encoding="utf-8")
    (folder / "cran.qry").write_bytes(queries.replace("\n", "\r\n").encode())  # CRLF, as the original
    (folder / "cranqrel").write_text(qrels, encoding="utf-8")
    return tmp_path


DOCS = (
    ".I 1\n.T\na title\non two lines\n.A\nsmith,j.\n.B\nj. x. 1, 1950.\n.W\nfirst body\n"
    ".I 2\n.W\nsecond\n.W\nmore\n.I\n"
)
QUERIES = ".I 007\n.W\nfirst question\non two lines\n.I 009\n.W\nsecond question\n.I\n"


def test_smart_reader_rules_on_a_small_copy(tmp_path: Path) -> None:
    data = _cranfield_copy(tmp_path, DOCS, QUERIES, "1 1 1\n2 2 4\n2 1 5\n")
    small = load_collection("Cranfield", data)
    assert [d.text for d in small.documents] == ["a title on two lines\n\nfirst body", "second\nmore"]
    assert small.documents[0].metadata["author"] == "smith,j." and "title" not in small.documents[1].metadata
    assert small.queries == {"1": "first question on two lines", "2": "second question"}
    assert small.qrels == {"1": {"1": 4}, "2": {"2": 1, "1": 0}}  # code 5 (no interest) -> judged, gain 0


@pytest.mark.parametrize(
    ("docs", "qrels", "message"),
    [
        ("stray text\n" + DOCS, "1 1 1\n", "cran.all.1400:1: text outside a field"),
        (DOCS + ".W\norphan\n", "1 1 1\n", "cran.all.1400:17: field .W outside a record"),
        (DOCS.replace(".I 2", ".I 1"), "1 1 1\n", "cran.all.1400:11: .I 1 appears twice (first on line 1)"),
        (DOCS.replace(".I 2", ".I two"), "1 1 1\n", "cran.all.1400:11: `.I` needs a record number"),
        (DOCS, "1 1\n", "cranqrel:1: expected `query doc code`"),
        (DOCS, "1 1 1\n1 1 2\n", "cranqrel:2: query 1 judges doc 1 twice"),
        (DOCS, "1 3 1\n", "the qrels of query 1 name doc 3, which is not in the collection"),
        (DOCS, "3 1 1\n", "the qrels judge query 3, which has no text"),
    ],
)
def test_damaged_files_are_reported_with_file_and_line(
    tmp_path: Path, docs: str, qrels: str, message: str
) -> None:
    data = _cranfield_copy(tmp_path, docs, QUERIES, qrels)
    with pytest.raises(InvalidInputError) as info:
        load_collection("cranfield", data)
    assert message in str(info.value)
