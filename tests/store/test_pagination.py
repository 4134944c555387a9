"""Keyset pages of runs, of a run's results and of logs, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import update

from honed.logs.record import LogRecord
from honed.store import Store
from honed.store.logs import LogFilter
from honed.store.schema import runs
from tests.store.test_run_queries import result as result_row

C = TypeVar("C")
T = TypeVar("T")
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as opened:
        yield opened


def all_pages(fetch: Callable[[C | None], tuple[list[T], C | None]]) -> tuple[list[list[T]], list[C]]:
    """Every page `fetch` gives, following its cursors to the end, and the cursors it returned."""
    pages, cursors = [], []
    rows, cursor = fetch(None)
    pages.append(rows)
    while cursor is not None:
        cursors.append(cursor)
        rows, cursor = fetch(cursor)
        pages.append(rows)
    return pages, cursors


def make_runs(store: Store, times: list[datetime]) -> list[str]:
    ids = []
    for i, at in enumerate(times):
        run_id = store.runs.create({"n": i}, f"sha256:{i}").id
        with store.write() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(created_at=at))
        ids.append(run_id)
    return ids


def test_runs_page_newest_first_across_equal_created_at(store: Store) -> None:
    # five runs in the same instant between an older and a newer one: pages of two cut through the tie
    times = [T0 - timedelta(seconds=1), *([T0] * 5), T0 + timedelta(seconds=1)]
    ids = make_runs(store, times)
    expected = [ids[-1], *sorted(ids[1:-1], reverse=True), ids[0]]
    pages, cursors = all_pages(lambda after: store.runs.page(2, after))
    assert [len(p) for p in pages] == [2, 2, 2, 1]
    assert [r.id for p in pages for r in p] == expected
    # the cursors in the middle of the tie carry the shared instant, told apart by the id
    assert [c[0] for c in cursors] == [T0, T0, T0]
    assert cursors[0][1] == expected[1]


def test_runs_page_ends_without_an_empty_page(store: Store) -> None:
    assert store.runs.page(3) == ([], None)
    ids = make_runs(store, [T0 + timedelta(seconds=i) for i in range(4)])
    first, cursor = store.runs.page(2)
    assert [r.id for r in first] == ids[:1:-1] and cursor is not None
    second, end = store.runs.page(2, cursor)
    assert [r.id for r in second] == ids[1::-1] and end is None
    everything, none = store.runs.page(10)
    assert [r.id for r in everything] == ids[::-1] and none is None
    with pytest.raises(ValueError, match="at least one"):
        store.runs.page(0)


def test_a_run_created_between_pages_neither_shifts_nor_repeats_rows(store: Store) -> None:
    ids = make_runs(store, [T0 + timedelta(seconds=i) for i in range(4)])
    first, cursor = store.runs.page(2)
    make_runs(store, [T0 + timedelta(seconds=10)])  # newer than every run already listed
    second, _ = store.runs.page(2, cursor)
    assert [r.id for r in [*first, *second]] == ids[::-1]


def result(run_id: str, variant: str, case: str, sample: int) -> dict[str, Any]:
    """A result row whose output names its key (so a page's rows can be told apart by content too)."""
    return result_row(run_id, variant, case, sample, output=f"{variant}/{case}/{sample}")


def test_results_page_walks_variant_case_sample_order(store: Store) -> None:
    run = store.runs.create({}, "sha256:s")
    other = store.runs.create({}, "sha256:o")
    keys = [(v, c, s) for v in ("a", "b") for c in ("c1", "c2", "c3") for s in range(2)]
    store.runs.put_results([result(run.id, *k) for k in reversed(keys)])
    store.runs.put_results([result(other.id, "a", "c1", 0)])
    for limit in (1, 4, 5, 12, 13):
        pages, cursors = all_pages(lambda after, n=limit: store.runs.results_page(run.id, n, after))
        got = [(r["variant"], r["case_id"], r["sample_index"]) for p in pages for r in p]
        assert got == keys, limit
        assert all(len(p) == limit for p in pages[:-1]) and 0 < len(pages[-1]) <= limit
        assert cursors == [got[(i + 1) * limit - 1] for i in range(len(cursors))]
    # a cursor cutting between two samples of one case, and one between two variants
    rows, cursor = store.runs.results_page(run.id, 2, ("a", "c2", 0))
    assert [r["output"] for r in rows] == ["a/c2/1", "a/c3/0"] and cursor == ("a", "c3", 0)
    rows, cursor = store.runs.results_page(run.id, 10, ("a", "c3", 1))
    assert [r["output"] for r in rows] == [f"b/{c}/{s}" for c in ("c1", "c2", "c3") for s in range(2)]
    assert cursor is None
    assert store.runs.results_page("nope", 5) == ([], None)


def add_logs(store: Store, times: list[datetime], **extra: Any) -> list[str]:
    records = [
        LogRecord(id=f"log-{i:02d}", created_at=at, model="m", inputs={"i": i}, **extra)
        for i, at in enumerate(times)
    ]
    store.logs.insert_many([r.row() for r in records])
    return [r.id for r in records]


@pytest.mark.parametrize("newest_first", [True, False])
def test_logs_page_follows_the_query_order_across_equal_created_at(store: Store, newest_first: bool) -> None:
    times = [T0 - timedelta(seconds=1), *([T0] * 5), T0 + timedelta(seconds=1)]
    add_logs(store, times)
    where = LogFilter(newest_first=newest_first, limit=1)  # a page ignores the filter's own limit
    expected = [r["id"] for r in store.logs.query(LogFilter(newest_first=newest_first))]
    pages, cursors = all_pages(lambda after: store.logs.page(where, limit=2, after=after))
    assert [len(p) for p in pages] == [2, 2, 2, 1]
    assert [r["id"] for p in pages for r in p] == expected
    assert sum(c[0] == T0 for c in cursors) >= 2  # at least two cuts fall inside the tie


def test_logs_page_keeps_the_filter(store: Store) -> None:
    add_logs(store, [T0 + timedelta(seconds=i) for i in range(6)])
    store.logs.insert_many(
        [LogRecord(id=f"other-{i}", created_at=T0, model="other", inputs={}).row() for i in range(3)]
    )
    pages, _ = all_pages(lambda after: store.logs.page(LogFilter(model="m"), limit=4, after=after))
    assert [[r["id"] for r in p] for p in pages] == [
        ["log-05", "log-04", "log-03", "log-02"],
        ["log-01", "log-00"],
    ]
    assert store.logs.page(LogFilter(model="none"), limit=4) == ([], None)
