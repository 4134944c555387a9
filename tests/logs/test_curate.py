"""Curating logs into a dataset version: selection, dropped rows, corrections, duplicates (exact and by
the real all-MiniLM-L6-v2 embeddings), leakage against an eval set, scrubbing and splits, on a real store.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from honed.datasets import Case, get_dataset
from honed.datasets.registry import list_datasets, record_cases
from honed.errors import InvalidInputError, NotFoundError
from honed.logs.curate import curate_logs
from honed.logs.record import FeedbackRecord, LogRecord
from honed.store import Store
from honed.store.logs import LogFilter

T0 = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as opened:
        yield opened


@pytest.fixture
def sqlite_store(tmp_path: Any) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'honed.db'}") as opened:
        yield opened


def add_logs(store: Store, *logs: dict[str, Any]) -> list[str]:
    """Insert logs one minute apart (in the order given), returning their ids."""
    rows = []
    for n, fields in enumerate(logs):
        fields = {"model": "scripted/bot", "created_at": T0 + timedelta(minutes=n), **fields}
        rows.append(LogRecord(**fields).row())
    store.logs.insert_many(rows)
    return [r["id"] for r in rows]


def feedback(
    store: Store, log_id: str, kind: str, *, value: float | None = None, text: str | None = None
) -> None:
    store.logs.add_feedback([FeedbackRecord(log_id=log_id, kind=kind, value=value, text=text).row()])


def test_selected_logs_become_cases_with_corrections_and_drops(store: Store) -> None:
    ids = add_logs(
        store,
        {
            "id": "ok",
            "inputs": {"question": "Where is my parcel?"},
            "output": "On its way.",
            "prompt": "support",
            "prompt_version": "sha256:abc",
            "session_id": "s1",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Where is my parcel?"},
            ],
        },
        {"id": "fixed", "inputs": {"question": "Can I pay by card?"}, "output": "No.", "prompt": "support"},
        {"id": "failed", "inputs": {"question": "Hello?"}, "error": "timeout", "prompt": "support"},
        {"id": "silent", "inputs": {"question": "Anyone?"}, "output": "  ", "prompt": "support"},
        {
            "id": "chat",
            "messages": [
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "a"},
                {"role": "user", "content": "What time is it?"},
            ],
            "output": "Noon.",
            "prompt": "support",
        },
        {"id": "other", "inputs": {"question": "Not selected"}, "output": "x", "prompt": "other"},
    )
    feedback(store, "ok", "thumbs", value=1)
    feedback(store, "ok", "rating", value=5)
    feedback(store, "fixed", "correction", text="Yes, we accept all major cards.")
    store.logs.put_scores(
        [
            {
                "log_id": "ok",
                "evaluator": "judge",
                "evaluator_version": "sha256:1",
                "value": 4.0,
                "passed": True,
                "reason": None,
                "error": None,
                "created_at": T0,
            }
        ]
    )
    assert len(ids) == 6

    report = curate_logs(store, "support-train", LogFilter(prompt="support"), near_threshold=None)

    assert (report.selected, report.dropped_errors, report.dropped_empty, report.cases) == (5, 1, 1, 3)
    assert report.references_from_corrections == 1
    assert report.dataset == "support-train@v1" and report.status == "new"
    assert sum(report.splits.values()) == 3 and set(report.splits) <= {"train", "test"}
    dataset = get_dataset(store, "support-train")
    cases = {c.id: c for c in dataset.cases}
    assert list(cases) == ["ok", "fixed", "chat"]  # oldest first, one case per log, id = log id
    assert cases["fixed"].reference == "Yes, we accept all major cards."
    assert cases["fixed"].metadata["reference_from"] == "correction"
    assert cases["chat"].inputs == {"input": "What time is it?"}  # the last user message
    ok = cases["ok"]
    assert ok.reference == "On its way." and ok.metadata["reference_from"] == "output"
    assert ok.metadata["log_id"] == "ok" and ok.metadata["prompt_version"] == "sha256:abc"
    assert ok.metadata["messages"][0] == {"role": "system", "content": "Be brief."}
    assert ok.metadata["feedback"]["thumbs"] == 1.0 and ok.metadata["feedback"]["rating"] == 5.0
    assert ok.metadata["scores"] == {"judge": 4.0}
    assert ok.metadata["session_id"] == "s1"

    again = curate_logs(store, "support-train", LogFilter(prompt="support"), near_threshold=None)
    assert again.status == "unchanged" and again.dataset == "support-train@v1"


def test_a_correction_rescues_a_failed_generation(sqlite_store: Store) -> None:
    add_logs(sqlite_store, {"id": "e1", "inputs": {"q": "2+2?"}, "error": "provider down"})
    feedback(sqlite_store, "e1", "correction", text="first try")
    feedback(sqlite_store, "e1", "correction", text="4")
    report = curate_logs(sqlite_store, "math", LogFilter(), near_threshold=None, split=None)
    assert report.dropped_errors == 0 and report.cases == 1
    (case,) = get_dataset(sqlite_store, "math").cases
    assert case.reference == "4" and case.split is None  # the latest correction wins


def test_exact_duplicates_fold_case_and_whitespace_and_keep_the_oldest(sqlite_store: Store) -> None:
    add_logs(
        sqlite_store,
        {"id": "a", "inputs": {"q": "Reset  my password"}, "output": "1"},
        {"id": "b", "inputs": {"q": "reset my PASSWORD "}, "output": "2"},
        {"id": "c", "inputs": {"q": "Reset my account"}, "output": "3"},
    )
    report = curate_logs(sqlite_store, "d", LogFilter(), near_threshold=None)
    assert report.exact_duplicates == 1 and report.cases == 2
    assert [(d.log_id, d.kept) for d in report.duplicate_examples] == [("b", "a")]
    assert [c.id for c in get_dataset(sqlite_store, "d").cases] == ["a", "c"]

    kept_all = curate_logs(sqlite_store, "d2", LogFilter(), dedupe=False)
    assert kept_all.cases == 3 and kept_all.exact_duplicates == 0


@pytest.mark.slow
def test_near_duplicates_and_leakage_with_the_local_embedder(sqlite_store: Store) -> None:
    add_logs(
        sqlite_store,
        {"id": "reset", "inputs": {"q": "How do I reset my password?"}, "output": "Use the link."},
        {"id": "paraphrase", "inputs": {"q": "how can i reset my password"}, "output": "Click reset."},
        {"id": "change", "inputs": {"q": "How do I change my password?"}, "output": "Settings."},
        {"id": "hours", "inputs": {"q": "What are your opening hours on Sunday?"}, "output": "10 to 4."},
        {"id": "copied", "inputs": {"q": "CAN I GET A REFUND  for my order?"}, "output": "Yes."},
        {"id": "france", "inputs": {"q": "Whats the capital of France?"}, "output": "Paris."},
    )
    record_cases(
        sqlite_store,
        "support-eval",
        [
            Case(id="e-refund", inputs={"question": "Can I get a refund for my order?"}, reference="Yes"),
            Case(id="e-capital", inputs={"question": "What's the capital of France?"}, reference="Paris"),
            Case(id="e-other", inputs={"question": "Do you ship to Canada?"}, reference="Yes"),
        ],
    )
    report = curate_logs(sqlite_store, "train", LogFilter(), leakage_against="support-eval")
    # A paraphrase of a kept question is dropped; a different question about passwords is not.
    assert report.exact_duplicates == 0 and report.near_duplicates == 1
    (dup,) = report.duplicate_examples
    assert (dup.log_id, dup.kept) == ("paraphrase", "reset") and dup.similarity >= 0.95
    leaks = {leak.log_id: leak for leak in report.leaking}
    assert set(leaks) == {"copied", "france"} and report.leakage_dropped == 2
    assert (leaks["copied"].eval_case, leaks["copied"].match, leaks["copied"].similarity) == (
        "e-refund",
        "exact",
        1.0,
    )
    assert leaks["france"].eval_case == "e-capital" and leaks["france"].match == "near"
    assert leaks["france"].similarity >= 0.95
    assert [c.id for c in get_dataset(sqlite_store, "train").cases] == ["reset", "change", "hours"]

    allowed = curate_logs(
        sqlite_store, "train-all", LogFilter(), leakage_against="support-eval", allow_leakage=True
    )
    assert {leak.log_id for leak in allowed.leaking} == {"copied", "france"} and allowed.leakage_dropped == 0
    assert allowed.cases == 5

    # A looser threshold turns the password-change question into a duplicate too.
    loose = curate_logs(sqlite_store, "train-loose", LogFilter(), near_threshold=0.8, split=None)
    assert loose.near_duplicates == 2


def test_an_unknown_eval_set_fails_before_anything_is_written(sqlite_store: Store) -> None:
    add_logs(sqlite_store, {"inputs": {"q": "hi"}, "output": "hello"})
    with pytest.raises(NotFoundError, match="evalset"):
        curate_logs(sqlite_store, "train", LogFilter(), leakage_against="evalset", near_threshold=None)
    assert list_datasets(sqlite_store) == []


def test_nothing_selected_or_nothing_left_is_an_error_and_records_nothing(sqlite_store: Store) -> None:
    with pytest.raises(NotFoundError, match="no logged generation matches"):
        curate_logs(sqlite_store, "train", LogFilter(), near_threshold=None)
    add_logs(sqlite_store, {"inputs": {"q": "hi"}, "error": "boom"})
    with pytest.raises(InvalidInputError, match="1 with errors"):
        curate_logs(sqlite_store, "train", LogFilter(), near_threshold=None)
    with pytest.raises(InvalidInputError, match="near_threshold"):
        curate_logs(sqlite_store, "train", LogFilter(), near_threshold=1.5)
    with pytest.raises(InvalidInputError, match="bad name"):
        curate_logs(sqlite_store, "bad name", LogFilter(), near_threshold=None)
    with pytest.raises(InvalidInputError, match="split ratios"):
        curate_logs(sqlite_store, "train", LogFilter(), split="train=0.5")
    assert list_datasets(sqlite_store) == []


def test_scrub_replaces_personal_data_in_inputs_messages_and_reference(sqlite_store: Store) -> None:
    add_logs(
        sqlite_store,
        {
            "id": "pii",
            "inputs": {"q": "I am ann@example.com, call +44 20 7946 0958 about order 12345"},
            "messages": [
                {"role": "system", "content": "key sk-proj-abcdefghijklmnopqrstuvwx"},
                {"role": "user", "content": "I am ann@example.com"},
            ],
            "output": "Sure.",
        },
    )
    feedback(sqlite_store, "pii", "correction", text="We will call 415-555-0100 or mail ann@example.com")
    report = curate_logs(sqlite_store, "clean", LogFilter(), near_threshold=None, scrub=True)
    assert report.scrubbed == {"secret": 1, "email": 3, "iban": 0, "card": 0, "ssn": 0, "phone": 2, "ip": 0}
    (case,) = get_dataset(sqlite_store, "clean").cases
    assert case.inputs == {"q": "I am [EMAIL], call [PHONE] about order 12345"}
    assert case.reference == "We will call [PHONE] or mail [EMAIL]"
    assert case.metadata["messages"][0]["content"] == "key [SECRET]"
    assert "ann@example.com" not in str(case.to_dict())


def test_group_by_session_keeps_each_session_in_one_split(sqlite_store: Store) -> None:
    logs = [
        {"inputs": {"q": f"question {i}"}, "output": "a", "session_id": f"s{i % 7}" if i % 10 else None}
        for i in range(60)
    ]
    add_logs(sqlite_store, *logs)
    report = curate_logs(
        sqlite_store,
        "grouped",
        LogFilter(),
        near_threshold=None,
        group_by="session_id",
        split="train=0.5,test=0.5",
    )
    assert report.cases == 60 and set(report.splits) == {"train", "test"}
    by_session: dict[str, set[str]] = {}
    alone = 0
    for case in get_dataset(sqlite_store, "grouped").cases:
        if "session_id" in case.metadata:
            by_session.setdefault(case.metadata["session_id"], set()).add(str(case.split))
        else:
            alone += 1  # a log without a session is a group of its own
    assert len(by_session) == 7 and all(len(splits) == 1 for splits in by_session.values())
    assert alone == 6
