"""Failure attribution: was a wrong answer retrieval's fault or generation's?"""

from __future__ import annotations

import pytest

from honed.errors import InvalidInputError
from honed.evals.stats import wilson_interval
from honed.rag.evaluate.attribution import Attribution, attribute, doc_part, gold_rank, summarise

RETRIEVED = ["manual.pdf#3", "faq.md#0", "notes#draft#2", "policy.md#1"]


@pytest.mark.parametrize(
    ("correct", "gold", "k", "kind", "rank"),
    [
        (True, {"faq.md"}, None, "ok", 2),
        (True, {"nowhere.md"}, None, "ok", None),  # right without the gold: still ok, rank says so
        (True, set(), None, "ok", None),
        (False, {"nowhere.md"}, None, "retrieval_miss", None),
        (False, {"policy.md"}, 3, "retrieval_miss", None),  # retrieved, but below k
        (False, {"policy.md"}, 4, "generation_miss", 4),
        (False, {"policy.md", "manual.pdf"}, None, "generation_miss", 1),
        (False, set(), None, "unknown", None),
        (None, {"faq.md"}, None, "unknown", 2),
    ],
)
def test_attribute(correct: bool | None, gold: set[str], k: int | None, kind: str, rank: int | None) -> None:
    a = attribute(RETRIEVED, gold, correct, k=k)
    assert (a.kind, a.gold_rank) == (kind, rank)
    assert a.reason and a.to_dict() == {"kind": kind, "gold_rank": rank, "reason": a.reason}


def test_reasons_say_what_happened() -> None:
    assert attribute(RETRIEVED, {"x"}, False, k=2).reason == "wrong and no gold id in the top 2"
    assert (
        attribute(RETRIEVED, {"faq.md"}, False).reason == "wrong although a gold id was retrieved at rank 2"
    )
    assert "no gold ids" in attribute(RETRIEVED, [], False).reason


def test_gold_ids_match_chunks_by_their_document_part() -> None:
    assert doc_part("manual.pdf#3") == "manual.pdf"
    assert doc_part("notes#draft#2") == "notes#draft"  # a '#' inside a doc id is kept
    assert doc_part("notes#draft") is None and doc_part("#3") is None and doc_part("plain") is None
    assert gold_rank(RETRIEVED, {"notes#draft"}) == 3
    assert gold_rank(RETRIEVED, {"notes"}) is None  # not a prefix match
    assert gold_rank(RETRIEVED, {"faq.md#0"}) == 2  # a gold chunk id matches that chunk
    assert gold_rank(RETRIEVED, {"faq.md#1"}) is None  # ... and no other chunk of its document
    assert gold_rank(["faq.md"], {"faq.md"}) == 1  # document-level retrieval matches exactly


def test_bad_arguments_are_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="k must be at least 1"):
        attribute(RETRIEVED, {"faq.md"}, False, k=0)
    with pytest.raises(InvalidInputError, match="retrieved_ids must be a collection of ids, not one string"):
        attribute("faq.md#0", {"faq.md"}, False)
    with pytest.raises(InvalidInputError, match="gold_ids must be"):
        attribute(RETRIEVED, "faq.md", False)


def test_summarise_counts_fractions_and_wilson_intervals() -> None:
    cases = (
        [attribute(RETRIEVED, {"faq.md"}, True)] * 5
        + [attribute(RETRIEVED, {"x"}, False)] * 3
        + [attribute(RETRIEVED, {"faq.md"}, False)]
        + [attribute(RETRIEVED, set(), None)]
    )
    out = summarise(cases)
    assert out["n"] == 10
    assert {k: v["count"] for k, v in out["kinds"].items()} == {
        "ok": 5,
        "retrieval_miss": 3,
        "generation_miss": 1,
        "unknown": 1,
    }
    miss = out["kinds"]["retrieval_miss"]
    ci = wilson_interval(3, 10)
    assert ci is not None and miss["fraction"] == pytest.approx(0.3)
    assert (miss["ci_low"], miss["ci_high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert miss["ci_low"] == pytest.approx(0.1078, abs=1e-4) and miss["ci_high"] == pytest.approx(
        0.6032, abs=1e-4
    )
    failures = out["failures"]
    assert failures["n"] == 4 and failures["retrieval_miss"]["fraction"] == pytest.approx(0.75)
    assert failures["generation_miss"]["count"] == 1


def test_summarise_nothing_has_no_fractions() -> None:
    out = summarise(iter([Attribution("ok", 1, "correct")]))
    assert out["failures"] == {
        "n": 0,
        "retrieval_miss": {"count": 0, "fraction": None, "ci_low": None, "ci_high": None},
        "generation_miss": {"count": 0, "fraction": None, "ci_low": None, "ci_high": None},
    }
    empty = summarise([])
    assert empty["n"] == 0 and empty["kinds"]["ok"]["fraction"] is None
