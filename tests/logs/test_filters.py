"""Selecting logs by what people said about them, on SQLite and PostgreSQL: `approved` keeps what a person
vouched for (latest thumbs up, or a correction); the latest thumbs wins when someone changes their mind."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from honed.logs.record import FeedbackRecord, LogRecord
from honed.store import Store
from honed.store.logs import LogFilter

T0 = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as opened:
        yield opened


def test_approved_means_latest_thumbs_up_or_corrected(store: Store) -> None:
    names = ["up", "down", "down-corrected", "up-then-down", "down-then-up", "silent", "comment-only"]
    store.logs.insert_many(
        [
            LogRecord(id=name, model="scripted/bot", inputs={"q": name}, output="o", created_at=T0).row()
            for name in names
        ]
    )

    def fb(log_id: str, kind: str, minutes: int, **fields: object) -> dict[str, object]:
        return FeedbackRecord(
            log_id=log_id, kind=kind, created_at=T0 + timedelta(minutes=minutes), **fields
        ).row()

    store.logs.add_feedback(
        [
            fb("up", "thumbs", 1, value=1),
            fb("down", "thumbs", 1, value=0),
            fb("down-corrected", "thumbs", 1, value=0),
            fb("down-corrected", "correction", 2, text="the right answer"),
            fb("up-then-down", "thumbs", 1, value=1),
            fb("up-then-down", "thumbs", 2, value=0),
            fb("down-then-up", "thumbs", 1, value=0),
            fb("down-then-up", "thumbs", 2, value=1),
            fb("comment-only", "comment", 1, text="hmm"),
        ]
    )
    approved = {r["id"] for r in store.logs.query(LogFilter(approved=True))}
    assert approved == {"up", "down-corrected", "down-then-up"}
    assert {r["id"] for r in store.logs.query(LogFilter(thumbs=0))} == {
        "down",
        "down-corrected",
        "up-then-down",
    }
    assert store.logs.count(LogFilter(approved=True, feedback="correction")) == 1
