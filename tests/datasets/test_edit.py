"""Editing or adding a case records a new dataset version and leaves the old one as it was; a stale edit
is refused; the change is audited; text search finds cases by any field. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from honed.datasets import Case, get_dataset, record_cases
from honed.datasets.registry import EDIT_ACTION, find_cases, save_case
from honed.errors import InvalidInputError, NotFoundError
from honed.store import Store

CASES = [
    Case(id="a", inputs={"q": "Capital of France?"}, reference="Paris", split="test"),
    Case(id="b", inputs={"q": "2+2"}, reference={"n": 4}),
]


def test_an_edit_is_a_new_version_and_the_old_one_stays(store: Store) -> None:
    record_cases(store, "qa", CASES)
    edited = save_case(
        store,
        "qa",
        Case(id="a", inputs={"q": "Capital of France?"}, reference="Paris, France"),
        replaces="a",
        based_on=1,
        by="ana",
    )
    assert edited.status == "new" and edited.dataset.number == 2
    assert get_dataset(store, "qa@v1").cases == tuple(CASES)
    assert get_dataset(store, "qa@v2").cases[0].reference == "Paris, France"
    added = save_case(store, "qa", Case(id="c", inputs={"q": "new"}), based_on=2, by="bo")
    assert [c.id for c in added.dataset.cases] == ["a", "b", "c"] and added.dataset.number == 3
    events, _ = store.audit.page(10, kind="dataset", name="qa")
    assert [(e.user, e.action, e.detail["action"], e.detail["from"], e.detail["to"]) for e in events] == [
        ("bo", EDIT_ACTION, "add", 2, 3),
        ("ana", EDIT_ACTION, "edit", 1, 2),
    ]


def test_stale_missing_and_duplicate_edits_are_refused(store: Store) -> None:
    record_cases(store, "qa", CASES)
    save_case(store, "qa", Case(id="c", inputs={"q": "x"}), based_on=1)
    with pytest.raises(InvalidInputError, match="changed since you opened v1"):
        save_case(store, "qa", Case(id="d", inputs={"q": "y"}), based_on=1)
    with pytest.raises(InvalidInputError, match="already has a case 'a'"):
        save_case(store, "qa", Case(id="a", inputs={"q": "y"}))
    with pytest.raises(NotFoundError, match="no case 'zz'"):
        save_case(store, "qa", Case(id="zz", inputs={"q": "y"}), replaces="zz")
    assert len(get_dataset(store, "qa")) == 3


def test_a_case_added_to_a_new_name_creates_the_dataset(store: Store) -> None:
    result = save_case(store, "golden", Case(id="g", inputs={"q": "hi"}, reference="hello"), by="ana")
    assert result.dataset.ref == "golden@v1" and result.dataset.cases[0].reference == "hello"


def test_find_cases_searches_every_field_and_splits(store: Store) -> None:
    dataset = record_cases(store, "qa", CASES).dataset
    assert [c.id for c in find_cases(dataset, "paris")] == ["a"]
    assert [c.id for c in find_cases(dataset, '"n": 4')] == ["b"]
    assert [c.id for c in find_cases(dataset, None, split="test")] == ["a"]
    assert [c.id for c in find_cases(dataset, "", split="(none)")] == ["b"]
    assert find_cases(dataset, "nothing like it") == []
