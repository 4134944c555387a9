"""Content-addressed, immutable versions: prompts, datasets, evaluators, knowledge bases, model references.

A version's name is `content_hash(body)`, so storing the same content twice is a no-op and a name always
means the same content. There is deliberately no update: a change is a new version, and a trigger in the
database rejects UPDATEs that bypass this class.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from honed.errors import ImmutableVersionError, InvalidInputError, NotFoundError
from honed.hashing import canonical_json, content_hash, short
from honed.store.schema import insert_ignore, objects, utcnow

if TYPE_CHECKING:
    from honed.store.database import Store


class ObjectRepository:
    """The `objects` table. Safe to share between threads (it holds no connection)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def put(self, kind: str, body: dict[str, Any]) -> str:
        """Store `body` as a version of `kind` and return its hash; storing it again changes nothing.

        Raises ImmutableVersionError if the same content is already stored as another kind.
        """
        try:
            key = content_hash(body)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"a {kind} version must be plain JSON: {exc}",
                hint="use only dicts, lists, strings, finite numbers, booleans and None",
            ) from None
        # Look before taking the write lock: re-putting existing versions is the common case.
        with self._store.read() as conn:
            if self._check_same(conn, key, kind, body):
                return key
        with self._store.write() as conn:
            # RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT DO NOTHING.
            stmt = insert_ignore(objects, conn.dialect.name).returning(objects.c.hash)
            inserted = conn.execute(stmt, {"hash": key, "kind": kind, "body": body, "created_at": utcnow()})
            # Another writer may have stored it between our read and our write.
            if inserted.first() is None:
                self._check_same(conn, key, kind, body)
        return key

    def _check_same(self, conn: Connection, key: str, kind: str, body: dict[str, Any]) -> bool:
        row = conn.execute(select(objects.c.kind, objects.c.body).where(objects.c.hash == key)).first()
        if row is None:
            return False
        if row.kind != kind or canonical_json(row.body) != canonical_json(body):
            raise ImmutableVersionError(
                f"{key} is already stored as a {row.kind!r} version, so it cannot be stored as {kind!r}",
                hint="versions are immutable and named by their content; make the content differ",
            )
        return True

    def get(self, key: str) -> dict[str, Any]:
        """The body stored under `key`. Raises NotFoundError if there is none."""
        with self._store.read() as conn:
            body = conn.execute(select(objects.c.body).where(objects.c.hash == key)).scalar_one_or_none()
        if body is None:
            raise _not_found(key)
        assert isinstance(body, dict)
        return body

    def get_kind(self, key: str) -> str:
        """The kind the version `key` was stored as. Raises NotFoundError if there is none."""
        with self._store.read() as conn:
            kind = conn.execute(select(objects.c.kind).where(objects.c.hash == key)).scalar_one_or_none()
        if kind is None:
            raise _not_found(key)
        return str(kind)

    def exists(self, key: str) -> bool:
        with self._store.read() as conn:
            found = conn.execute(select(objects.c.hash).where(objects.c.hash == key)).first()
        return found is not None

    def list(self, kind: str) -> builtins.list[tuple[str, datetime]]:
        """`(hash, created_at)` of every version of `kind`, newest first."""
        stmt = (
            select(objects.c.hash, objects.c.created_at)
            .where(objects.c.kind == kind)
            .order_by(objects.c.created_at.desc(), objects.c.hash)
        )
        with self._store.read() as conn:
            return [(row.hash, row.created_at) for row in conn.execute(stmt)]


def _not_found(key: str) -> NotFoundError:
    if not key.startswith("sha256:") or len(key) != len("sha256:") + 64:
        hint = "a version hash is the full 'sha256:' followed by 64 hex digits"
    else:
        hint = f"check the hash; nothing stored here starts with {short(key)}"
    return NotFoundError(f"no stored version {key!r}", hint=hint)
