"""The audit log: who changed what and when, newest first, paged by keyset, on SQLite and PostgreSQL."""

from __future__ import annotations

from honed.store import Store


def test_events_are_recorded_and_paged_newest_first(database_url: str) -> None:
    with Store.open(database_url) as store:
        for i in range(5):
            store.audit.record("alice" if i % 2 else "bob", "label.move", "prompt", f"p{i % 2}", {"to": i})
        first, cursor = store.audit.page(3)
        rest, end = store.audit.page(3, cursor)
        only = store.audit.page(10, kind="prompt", name="p1")[0]
    assert [e.detail["to"] for e in first + rest] == [4, 3, 2, 1, 0]
    assert end is None and cursor is not None
    assert [e.user for e in only] == ["alice", "alice"] and {e.name for e in only} == {"p1"}
    assert first[0].to_dict()["at"].endswith("+00:00")
