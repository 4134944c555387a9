"""The `audit_events` table: who changed what, and when (append-only).

A change made in the web UI or through the API records one event with the user (an API token's name, or
`local` for the one user of an open loopback server), an action (`label.move`, `prompt.save`,
`dataset.edit`, `queue.create`, ...), what it applies to (`kind`, `name`) and a JSON `detail` (e.g. the
version a label moved from and to). Listings are newest first with keyset pagination.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select

from honed.store.schema import audit_events, utcnow

if TYPE_CHECKING:
    from honed.store.database import Store

#: Where a page of events ends: (at, id) of its last event.
AuditCursor = tuple[datetime, str]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: str
    at: datetime
    user: str
    action: str
    kind: str
    name: str
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in self.__slots__}, "at": self.at.isoformat()}


class AuditLog:
    def __init__(self, store: Store) -> None:
        self._store = store

    def record(
        self, user: str, action: str, kind: str, name: str, detail: Mapping[str, Any] | None = None
    ) -> AuditEvent:
        event = AuditEvent(uuid.uuid4().hex[:16], utcnow(), user, action, kind, name, dict(detail or {}))
        with self._store.write() as conn:
            conn.execute(audit_events.insert().values(**{k: getattr(event, k) for k in event.__slots__}))
        return event

    def page(
        self,
        limit: int,
        after: AuditCursor | None = None,
        *,
        kind: str | None = None,
        name: str | None = None,
    ) -> tuple[builtins.list[AuditEvent], AuditCursor | None]:
        """Up to `limit` events, newest first (of one `kind`, and `name`, when given), after the cursor a
        previous page returned; with the next page's cursor, None at the end."""
        c = audit_events.c
        stmt = select(audit_events).order_by(c.at.desc(), c.id.desc()).limit(limit + 1)
        if kind is not None:
            stmt = stmt.where(c.kind == kind)
        if name is not None:
            stmt = stmt.where(c.name == name)
        if after is not None:
            at, event_id = after
            stmt = stmt.where(or_(c.at < at, and_(c.at == at, c.id < event_id)))
        with self._store.read() as conn:
            rows = [AuditEvent(**r) for r in conn.execute(stmt).mappings()]
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, ((rows[-1].at, rows[-1].id) if more and rows else None)
