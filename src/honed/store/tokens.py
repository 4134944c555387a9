"""The `api_tokens` table: who may call `honed serve`, stored so that a database leak leaks no token.

A token reads `hnd_<id>_<secret>`. Only `sha256(token)` is kept: the secret is 32 random bytes, so a plain
hash cannot be reversed by guessing (a slow password hash would buy nothing and cost every request). The
id in the token finds the row by primary key, and the hashes are compared in constant time, so a wrong
token takes as long to refuse as a nearly right one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from honed.errors import InvalidInputError, NotFoundError
from honed.store.schema import api_tokens

if TYPE_CHECKING:
    from honed.store.database import Store

#: What a token may do in the web UI, each scope including the ones before it (see `honed.ui.session`).
UI_SCOPES: tuple[str, ...] = ("read", "annotate", "write", "admin")
#: What a token may do: `ingest` (POST /v1/logs, /v1/feedback, GET /v1/logs/ID), `inference` (/v1/chat/...),
#: and sign in to the web UI with one of `UI_SCOPES`.
SCOPES: tuple[str, ...] = ("ingest", "inference", *UI_SCOPES)
PREFIX = "hnd_"
_TOKEN = re.compile(r"^hnd_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A token's public record (never its secret)."""

    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "scopes": list(self.scopes),
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "active": self.active,
        }


def token_hash(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes, deduplicated in canonical order; an unknown or missing scope is an InvalidInputError."""
    given = list(scopes)
    unknown = [s for s in given if s not in SCOPES]
    if unknown:
        raise InvalidInputError(f"unknown token scope {unknown[0]!r}", hint=f"scopes: {', '.join(SCOPES)}")
    if not given:
        raise InvalidInputError(
            "a token needs at least one scope",
            hint="add --scope ingest, --scope inference, or a web UI scope (read, annotate, write, admin)",
        )
    return tuple(s for s in SCOPES if s in given)


class TokenRepository:
    """Create, list, revoke and verify API tokens. Safe to share between threads."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(self, name: str, scopes: Iterable[str]) -> tuple[ApiToken, str]:
        """A new token and its secret, which exists only in this return value: show it to the user once."""
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInputError("a token needs a name of 1 to 200 characters", hint="e.g. `chat-app`")
        ordered = check_scopes(scopes)
        token_id = secrets.token_hex(8)
        secret = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        record = ApiToken(token_id, name, ordered, datetime.now(UTC), None, None)
        with self._store.write() as conn:
            conn.execute(
                api_tokens.insert().values(
                    id=record.id,
                    name=record.name,
                    hash=token_hash(secret),
                    scopes=list(record.scopes),
                    created_at=record.created_at,
                    last_used_at=None,
                    revoked_at=None,
                )
            )
        return record, secret

    def list(self, *, include_revoked: bool = True) -> list[ApiToken]:
        stmt = select(api_tokens).order_by(api_tokens.c.created_at, api_tokens.c.id)
        if not include_revoked:
            stmt = stmt.where(api_tokens.c.revoked_at.is_(None))
        with self._store.read() as conn:
            return [_record(r) for r in conn.execute(stmt).mappings()]

    def get(self, token_id: str) -> ApiToken:
        found = self.find(token_id)
        if found is None:
            raise NotFoundError(f"no API token with id {token_id!r}", hint="see `honed tokens list`")
        return found

    def find(self, token_id: str) -> ApiToken | None:
        """The token with this id, revoked or not; None when there is none."""
        with self._store.read() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).mappings().first()
        return None if row is None else _record(row)

    def revoke(self, token_id: str) -> ApiToken:
        """Revoke a token (idempotent: revoking twice keeps the first time). NotFoundError if unknown."""
        with self._store.write() as conn:
            conn.execute(
                update(api_tokens)
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        return self.get(token_id)

    def active_count(self) -> int:
        stmt = select(func.count()).select_from(api_tokens).where(api_tokens.c.revoked_at.is_(None))
        with self._store.read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def verify(self, token: str) -> ApiToken | None:
        """The active token `token` is the secret of, else None (malformed, unknown, wrong or revoked)."""
        match = _TOKEN.match(token)
        if match is None:
            return None
        with self._store.read() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.id == match.group(1))).mappings().first()
        if row is None or not hmac.compare_digest(str(row["hash"]), token_hash(token)):
            return None
        record = _record(row)
        return record if record.active else None

    def touch(self, token_id: str, when: datetime | None = None) -> None:
        """Record that the token was used (callers throttle this: it is a write)."""
        with self._store.write() as conn:
            conn.execute(
                update(api_tokens)
                .where(api_tokens.c.id == token_id)
                .values(last_used_at=when or datetime.now(UTC))
            )


def _record(row: Any) -> ApiToken:
    return ApiToken(
        id=row["id"],
        name=row["name"],
        scopes=tuple(row["scopes"]),
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )
