"""The `finetune_jobs` and `finetune_events` tables: fine-tuning jobs and their history.

A job row is written by the process that creates it and then by its worker (status, pid, result) and by
anyone who cancels it (`cancel_requested`). The worker also touches `updated_at` as a heartbeat, which is
how a job on another machine is known to be alive. Events are numbered per job (`seq`, from 1) so a reader
can follow a job with `events(after_seq=...)`.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from honed.errors import NotFoundError, StoreError
from honed.secrets import mask
from honed.store.prefixes import resolve_prefix
from honed.store.schema import finetune_events, finetune_jobs, utcnow

if TYPE_CHECKING:
    from honed.store.database import Store

#: what a job's `status` column may hold (`interrupted` is derived by readers, never stored)
STORED_STATUSES = frozenset({"queued", "running", "succeeded", "failed", "cancelled"})
_UPDATABLE = frozenset({"status", "model", "result", "error", "pid", "cancel_requested"})


@dataclass(frozen=True, slots=True)
class JobRow:
    """One `finetune_jobs` row as stored."""

    id: str
    backend: str
    status: str
    spec: dict[str, Any]
    model: str | None
    result: dict[str, Any] | None
    error: str | None
    pid: int | None
    cancel_requested: bool
    created_at: datetime
    updated_at: datetime


def _row(r: Any) -> JobRow:
    return JobRow(
        id=r.id,
        backend=r.backend,
        status=r.status,
        spec=dict(r.spec),
        model=r.model,
        result=dict(r.result) if r.result is not None else None,
        error=r.error,
        pid=r.pid,
        cancel_requested=bool(r.cancel_requested),
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


def _not_found(job_id: str) -> NotFoundError:
    return NotFoundError(f"no fine-tuning job {job_id!r}", hint="see `honed finetune list` for job ids")


class JobRepository:
    """Safe to share between threads and processes (each call is its own transaction)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(self, job_id: str, backend: str, spec: dict[str, Any], *, status: str = "queued") -> JobRow:
        now = utcnow()
        values: dict[str, Any] = {
            "id": job_id,
            "backend": backend,
            "status": status,
            "spec": spec,
            "model": None,
            "result": None,
            "error": None,
            "pid": None,
            "cancel_requested": False,
            "created_at": now,
            "updated_at": now,
        }
        with self._store.write() as conn:
            conn.execute(finetune_jobs.insert(), values)
        return JobRow(**values)

    def get(self, job_id: str) -> JobRow:
        """The job `job_id` (or the one whose id starts with it); NotFoundError if there is none."""
        with self._store.read() as conn:
            found = resolve_prefix(conn, finetune_jobs.c.id, job_id, plural="fine-tuning jobs")
            row = (
                None
                if found is None
                else conn.execute(select(finetune_jobs).where(finetune_jobs.c.id == found)).first()
            )
        if row is None:
            raise _not_found(job_id)
        return _row(row)

    def list(self, *, limit: int | None = None, status: str | None = None) -> builtins.list[JobRow]:
        """Jobs, newest first."""
        stmt = select(finetune_jobs).order_by(finetune_jobs.c.created_at.desc(), finetune_jobs.c.id)
        if status is not None:
            stmt = stmt.where(finetune_jobs.c.status == status)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._store.read() as conn:
            return [_row(r) for r in conn.execute(stmt)]

    def update(self, job_id: str, *, only_if_status: frozenset[str] | None = None, **values: Any) -> bool:
        """Set columns of a job (and `updated_at`). With `only_if_status`, only while its status is one of
        those; returns whether a row changed."""
        unknown = set(values) - _UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        if "status" in values and values["status"] not in STORED_STATUSES:
            raise ValueError(f"not a stored status: {values['status']!r}")
        if values.get("error"):
            values["error"] = mask(values["error"])
        stmt = update(finetune_jobs).where(finetune_jobs.c.id == job_id)
        if only_if_status is not None:
            stmt = stmt.where(finetune_jobs.c.status.in_(sorted(only_if_status)))
        with self._store.write() as conn:
            changed = conn.execute(stmt.values(**values, updated_at=utcnow())).rowcount
            if not changed and only_if_status is None:
                raise _not_found(job_id)
        return bool(changed)

    def heartbeat(self, job_id: str) -> None:
        """Mark the job's worker as alive now."""
        with self._store.write() as conn:
            conn.execute(
                update(finetune_jobs).where(finetune_jobs.c.id == job_id).values(updated_at=utcnow())
            )

    def cancel_requested(self, job_id: str) -> bool:
        with self._store.read() as conn:
            value = conn.execute(
                select(finetune_jobs.c.cancel_requested).where(finetune_jobs.c.id == job_id)
            ).scalar_one_or_none()
        if value is None:
            raise _not_found(job_id)
        return bool(value)

    # -- events -----------------------------------------------------------------------------------------

    def add_event(
        self, job_id: str, kind: str, message: str | None = None, data: dict[str, Any] | None = None
    ) -> int:
        """Append an event to the job's history; returns its `seq`."""
        # Two writers (the worker, a cancelling shell) can pick the same next seq on PostgreSQL, where the
        # write transaction is not a lock: the loser's insert violates the key and simply tries again.
        for attempt in range(5):
            try:
                with self._store.write() as conn:
                    last = conn.execute(
                        select(func.max(finetune_events.c.seq)).where(finetune_events.c.job_id == job_id)
                    ).scalar_one()
                    seq = int(last or 0) + 1
                    conn.execute(
                        finetune_events.insert(),
                        {
                            "job_id": job_id,
                            "seq": seq,
                            "kind": kind,
                            "message": message,
                            "data": data,
                            "created_at": utcnow(),
                        },
                    )
                return seq
            except StoreError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def events(
        self, job_id: str, *, after_seq: int = 0, kind: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """The job's events after `after_seq`, oldest first (each: seq, kind, message, data, created_at)."""
        stmt = (
            select(finetune_events)
            .where(finetune_events.c.job_id == job_id, finetune_events.c.seq > after_seq)
            .order_by(finetune_events.c.seq)
        )
        if kind is not None:
            stmt = stmt.where(finetune_events.c.kind == kind)
        with self._store.read() as conn:
            return [
                {k: v for k, v in dict(r).items() if k != "job_id"} for r in conn.execute(stmt).mappings()
            ]
