"""The review queue tables: queues, their items, and labels as events (`review_queues`, `review_items`,
`review_labels`).

A label is written as an event: the reviewer's whole label of the item after the change, so a reviewer's
current label is their latest event not undone, and an undo marks that event undone (the one before it is
current again). Each reviewer writes rows of their own, so two people labelling one queue at once never
overwrite each other.

A label also lands where the rest of honed reads human judgments, in the same transaction: on a run's item
it is the run's `human` score (the row `honed review --run` writes; the latest current label of any
reviewer decides it, and it is deleted when no label is left), on a log it is feedback rows as
`honed logs feedback` writes them (thumbs, rating, correction, comment; an undo deletes the rows its event
added). The item's row is locked first (SELECT ... FOR UPDATE on PostgreSQL; SQLite's write transaction
already holds the database's write lock), so labels of the same item are applied one after the other.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, func, or_, select

from honed.errors import InvalidInputError, NotFoundError
from honed.hashing import content_hash
from honed.store.runs import SCORE_KEY
from honed.store.schema import feedback, review_items, review_labels, review_queues, scores, upsert, utcnow

if TYPE_CHECKING:
    from honed.store.database import Store

#: The evaluator name of human labels in a run's scores (`honed.experiments.review.HUMAN`).
HUMAN = "human"
#: The scales a queue labels on: what the human score's value is (the other fields are kept beside it).
SCALES = ("pass_fail", "1-5")
QueueCursor = tuple[datetime, str]
#: The parts of a label a reviewer sets.
LABEL_FIELDS = ("passed", "rating", "correction", "comment")


@dataclass(frozen=True, slots=True)
class Queue:
    id: str
    name: str
    kind: str  # run | logs
    run_id: str | None
    source: dict[str, Any]
    scale: str
    assignee: str | None
    created_by: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            **{f.name: getattr(self, f.name) for f in fields(self)},
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One thing to label: a run's result (`variant`, `case_id`, `sample_index`) or a log (`log_id`)."""

    queue_id: str
    position: int
    variant: str | None
    case_id: str | None
    sample_index: int | None
    log_id: str | None
    input: Any
    output: str | None
    reference: Any

    @property
    def title(self) -> str:
        if self.log_id is not None:
            return self.log_id
        return f"{self.case_id} · {self.variant}" + (
            f" · sample {self.sample_index}" if self.sample_index else ""
        )


@dataclass(frozen=True, slots=True)
class ItemLabel:
    """A reviewer's label of one item (an event: the whole label after one change)."""

    id: str
    queue_id: str
    position: int
    reviewer: str
    passed: bool | None
    rating: int | None
    correction: str | None
    comment: str | None
    at: datetime
    undone_at: datetime | None = None

    def value(self, scale: str) -> float | None:
        """The label as the score's value on `scale`; None when the label lacks it (only a comment)."""
        if scale == "pass_fail":
            return None if self.passed is None else float(self.passed)
        return None if self.rating is None else float(self.rating)

    def words(self) -> str:
        parts = [] if self.passed is None else ["pass" if self.passed else "fail"]
        parts += [] if self.rating is None else [f"{self.rating}/5"]
        parts += [] if self.correction is None else ["correction"]
        parts += [] if self.comment is None else ["comment"]
        return ", ".join(parts) or "nothing"


def _label(row: Mapping[Any, Any]) -> ItemLabel:
    return ItemLabel(**{f.name: row[f.name] for f in fields(ItemLabel)})


def current_labels(events: Iterable[ItemLabel]) -> dict[tuple[int, str], ItemLabel]:
    """(position, reviewer) -> the current label, from events in the order they were written."""
    out: dict[tuple[int, str], ItemLabel] = {}
    for event in events:
        if event.undone_at is None:
            out[(event.position, event.reviewer)] = event
    return out


class ReviewQueues:
    """Safe to share between threads (each call is its own transaction)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- queues -----------------------------------------------------------------------------------------

    def create(self, queue: Queue, items: Sequence[Mapping[str, Any]]) -> Queue:
        """Store a queue and its items (dicts of `QueueItem`'s fields but `queue_id` and `position`, in
        review order), all or nothing."""
        if queue.scale not in SCALES:
            raise InvalidInputError(f"unknown scale {queue.scale!r}", hint=f"one of {', '.join(SCALES)}")
        with self._store.write() as conn:
            conn.execute(
                review_queues.insert().values(**{f.name: getattr(queue, f.name) for f in fields(queue)})
            )
            rows = [{**dict(item), "queue_id": queue.id, "position": i} for i, item in enumerate(items)]
            for start in range(0, len(rows), 1000):
                conn.execute(review_items.insert(), rows[start : start + 1000])
        return queue

    def get(self, queue_id: str) -> Queue:
        with self._store.read() as conn:
            row = conn.execute(select(review_queues).where(review_queues.c.id == queue_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no review queue {queue_id!r}", hint="see the queues at /review")
        return Queue(**row)

    def page(
        self, limit: int, after: QueueCursor | None = None
    ) -> tuple[builtins.list[Queue], QueueCursor | None]:
        """Up to `limit` queues, newest first, after a previous page's cursor; with the next one's (None
        at the end)."""
        c = review_queues.c
        stmt = select(review_queues).order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1)
        if after is not None:
            stmt = stmt.where(or_(c.created_at < after[0], and_(c.created_at == after[0], c.id < after[1])))
        with self._store.read() as conn:
            found = [Queue(**r) for r in conn.execute(stmt).mappings()]
        more = len(found) > limit
        found = found[:limit]
        return found, ((found[-1].created_at, found[-1].id) if more and found else None)

    def assign(self, queue_id: str, assignee: str | None) -> None:
        with self._store.write() as conn:
            done = conn.execute(
                review_queues.update().where(review_queues.c.id == queue_id).values(assignee=assignee)
            )
        if done.rowcount == 0:
            raise NotFoundError(f"no review queue {queue_id!r}", hint="see the queues at /review")

    # -- items ------------------------------------------------------------------------------------------

    def size(self, queue_id: str) -> int:
        stmt = select(func.count()).select_from(review_items).where(review_items.c.queue_id == queue_id)
        with self._store.read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def sizes(self, queue_ids: Sequence[str]) -> dict[str, int]:
        """Queue id -> how many items it holds."""
        c = review_items.c
        stmt = select(c.queue_id, func.count()).where(c.queue_id.in_(list(queue_ids))).group_by(c.queue_id)
        with self._store.read() as conn:
            return {**dict.fromkeys(queue_ids, 0), **{q: int(n) for q, n in conn.execute(stmt).tuples()}}

    def item(self, queue_id: str, position: int) -> QueueItem:
        c = review_items.c
        with self._store.read() as conn:
            row = (
                conn.execute(select(review_items).where(c.queue_id == queue_id, c.position == position))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"queue {queue_id!r} has no item {position + 1}", hint="see the queue's page")
        return QueueItem(**row)

    def items(self, queue_id: str, *, offset: int = 0, limit: int | None = None) -> builtins.list[QueueItem]:
        c = review_items.c
        stmt = select(review_items).where(c.queue_id == queue_id).order_by(c.position).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._store.read() as conn:
            return [QueueItem(**r) for r in conn.execute(stmt).mappings()]

    # -- labels -----------------------------------------------------------------------------------------

    def events(
        self,
        queue_id: str,
        *,
        position: int | None = None,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> builtins.list[ItemLabel]:
        """A queue's label events (of one item when `position` is given), undone ones included."""
        c = review_labels.c
        order = (c.at.desc(), c.id.desc()) if newest_first else (c.at, c.id)
        stmt = select(review_labels).where(c.queue_id == queue_id).order_by(*order)
        if position is not None:
            stmt = stmt.where(c.position == position)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._store.read() as conn:
            return [_label(r) for r in conn.execute(stmt).mappings()]

    def labels(self, queue_id: str) -> dict[tuple[int, str], ItemLabel]:
        """(position, reviewer) -> each reviewer's current label of each item."""
        return current_labels(self.events(queue_id))

    def labelled_counts(self, queue_ids: Sequence[str], scale_of: Mapping[str, str]) -> dict[str, int]:
        """Queue id -> items with a current label carrying the queue scale's value (by anyone).

        A reviewer's events form a stack, each the one before with a change applied, so an item has such
        a label exactly when some event of it not undone carries the value; no replay is needed."""
        c = review_labels.c
        out = dict.fromkeys(queue_ids, 0)
        with self._store.read() as conn:
            for scale in set(scale_of[q] for q in queue_ids):
                ids = [q for q in queue_ids if scale_of[q] == scale]
                has = c.passed.is_not(None) if scale == "pass_fail" else c.rating.is_not(None)
                stmt = (
                    select(c.queue_id, func.count(c.position.distinct()))
                    .where(c.queue_id.in_(ids), c.undone_at.is_(None), has)
                    .group_by(c.queue_id)
                )
                out.update({q: int(n) for q, n in conn.execute(stmt).tuples()})
        return out

    def label(self, queue_id: str, position: int, reviewer: str, change: Mapping[str, Any]) -> ItemLabel:
        """Apply `change` (some of `LABEL_FIELDS`; a text of "" clears it) to the reviewer's current label
        of the item, as a new event, and bring the run's human score or the log's feedback along."""
        unknown = set(change) - set(LABEL_FIELDS)
        if unknown:
            raise InvalidInputError(
                f"unknown label fields {sorted(unknown)}", hint=f"use {', '.join(LABEL_FIELDS)}"
            )
        now = utcnow()
        with self._store.write() as conn:
            queue, item = self._lock(conn, queue_id, position)
            before = self._current(conn, queue_id, position).get(reviewer)
            state: dict[str, Any] = {f: getattr(before, f) if before else None for f in LABEL_FIELDS}
            state.update({k: (v or None) if k in ("correction", "comment") else v for k, v in change.items()})
            event = ItemLabel(uuid.uuid4().hex[:20], queue_id, position, reviewer, at=now, **state)
            added = _feedback_rows(item, before, event) if item.log_id is not None else []
            if added:
                conn.execute(feedback.insert(), added)
            conn.execute(
                review_labels.insert().values(
                    **{f.name: getattr(event, f.name) for f in fields(event)},
                    feedback_ids=[r["id"] for r in added],
                )
            )
            if item.log_id is None:
                self._sync_score(conn, queue, item)
        return event

    def undo(self, queue_id: str, reviewer: str) -> ItemLabel | None:
        """Undo the reviewer's latest label in the queue (the one before it is current again); None when
        they have nothing left to undo."""
        c = review_labels.c
        latest = (
            select(review_labels)
            .where(c.queue_id == queue_id, c.reviewer == reviewer, c.undone_at.is_(None))
            .order_by(c.at.desc(), c.id.desc())
            .limit(1)
        )
        with self._store.write() as conn:
            while True:
                row = conn.execute(latest).mappings().first()
                if row is None:
                    return None
                # The item first, as `label` locks it, then the event again: the latest may have changed
                # while the item's lock was awaited.
                queue, item = self._lock(conn, queue_id, int(row["position"]))
                again = conn.execute(latest.with_for_update()).mappings().first()
                if again is not None and again["id"] == row["id"]:
                    break
            now = utcnow()
            conn.execute(review_labels.update().where(c.id == row["id"]).values(undone_at=now))
            if row["feedback_ids"]:
                conn.execute(feedback.delete().where(feedback.c.id.in_(list(row["feedback_ids"]))))
            if item.log_id is None:
                self._sync_score(conn, queue, item)
        return replace(_label(row), undone_at=now)

    # -- inside a write transaction ---------------------------------------------------------------------

    @staticmethod
    def _lock(conn: Connection, queue_id: str, position: int) -> tuple[Queue, QueueItem]:
        c = review_items.c
        row = (
            conn.execute(
                select(review_items).where(c.queue_id == queue_id, c.position == position).with_for_update()
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFoundError(f"queue {queue_id!r} has no item {position + 1}", hint="see the queue's page")
        queue = conn.execute(select(review_queues).where(review_queues.c.id == queue_id)).mappings().one()
        return Queue(**queue), QueueItem(**row)

    @staticmethod
    def _current(conn: Connection, queue_id: str, position: int) -> dict[str, ItemLabel]:
        c = review_labels.c
        stmt = (
            select(review_labels).where(c.queue_id == queue_id, c.position == position).order_by(c.at, c.id)
        )
        return {
            r: label
            for (_, r), label in current_labels(_label(x) for x in conn.execute(stmt).mappings()).items()
        }

    def _sync_score(self, conn: Connection, queue: Queue, item: QueueItem) -> None:
        """Make the item's `human` score the latest current label carrying the scale's value, or delete
        it when no label carries one."""
        assert queue.run_id is not None and item.case_id is not None and item.variant is not None
        key = {
            "run_id": queue.run_id,
            "variant": item.variant,
            "case_id": item.case_id,
            "sample_index": item.sample_index or 0,
            "evaluator": HUMAN,
        }
        valued = [
            x
            for x in self._current(conn, queue.id, item.position).values()
            if x.value(queue.scale) is not None
        ]
        if not valued:
            conn.execute(scores.delete().where(*[scores.c[k] == v for k, v in key.items()]))
            return
        chosen = max(valued, key=lambda x: (x.at, x.id))
        value = chosen.value(queue.scale)
        row = {
            **key,
            # The same version `honed review --run` gives labels on this scale.
            "evaluator_version": content_hash({"type": HUMAN, "scale": queue.scale}),
            "value": value,
            "passed": chosen.passed if queue.scale == "pass_fail" else None,
            "reason": f"labelled {chosen.words()!r} by {chosen.reviewer}",
            "error": None,
            "raw": None,
            "details": {
                "scale": queue.scale,
                "reviewer": chosen.reviewer,
                "at": chosen.at.isoformat(),
                "queue": queue.id,
                "rating": chosen.rating,
                "correction": chosen.correction,
                "comment": chosen.comment,
                "reviewers": len(valued),
            },
            "created_at": chosen.at,
        }
        assert tuple(key) == SCORE_KEY
        conn.execute(upsert(scores, SCORE_KEY, conn.dialect.name), [row])


def _feedback_rows(item: QueueItem, before: ItemLabel | None, after: ItemLabel) -> list[dict[str, Any]]:
    """The feedback rows (as `honed logs feedback` writes them) for what changed from `before` to `after`:
    a later thumbs supersedes an earlier one wherever honed reads feedback, so a change is a new row."""
    rows: list[dict[str, Any]] = []

    def add(kind: str, value: float | None = None, text: str | None = None) -> None:
        rows.append(
            {
                "id": "fb-" + uuid.uuid4().hex[:20],
                "log_id": item.log_id,
                "kind": kind,
                "value": value,
                "text": text,
                "source": after.reviewer,
                "created_at": after.at,
            }
        )

    if after.passed is not None and (before is None or before.passed != after.passed):
        add("thumbs", float(after.passed))
    if after.rating is not None and (before is None or before.rating != after.rating):
        add("rating", float(after.rating))
    if after.correction and (before is None or before.correction != after.correction):
        add("correction", text=after.correction)
    if after.comment and (before is None or before.comment != after.comment):
        add("comment", text=after.comment)
    return rows
