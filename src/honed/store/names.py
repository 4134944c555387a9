"""Names over content-addressed versions: history, references and movable labels.

Prompts, datasets and evaluators are immutable `objects`; a name ("qa", "faq") collects the versions
recorded under it. A reference to one version of a name can be written as:

    latest        the newest version (also what no reference means)
    v3            the third version recorded under the name (1-based, in recording order)
    production    a label
    sha256:ab12.. a full hash, or a prefix of at least 6 hex digits that is unique under the name
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, func, select

from honed.errors import InvalidInputError, NotFoundError
from honed.hashing import content_hash, short
from honed.store.prefixes import resolve_prefix
from honed.store.schema import insert_ignore, labels, utcnow, versions

if TYPE_CHECKING:
    from honed.store.database import Store

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,99}$")
_ORDINAL = re.compile(r"^v([1-9][0-9]*)$")
RESERVED_LABELS = frozenset({"latest"})


@dataclass(frozen=True, slots=True)
class Version:
    """One version of a name: its hash, its number under the name (1-based), when and why it was recorded."""

    kind: str
    name: str
    hash: str
    number: int
    created_at: datetime
    note: str | None
    labels: tuple[str, ...] = ()


def check_name(kind: str, name: str) -> None:
    if not _NAME.match(name):
        raise InvalidInputError(
            f"{name!r} is not a valid {kind} name",
            hint="use letters, digits, '.', '_' and '-', starting with a letter or digit (200 at most)",
        )


#: `set_label(expect=ANY)`: move the label wherever it points now.
ANY = object()


class NamedVersions:
    """The `versions` and `labels` tables. Safe to share between threads (it holds no connection)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def record(
        self, kind: str, name: str, body: dict[str, Any], *, note: str | None = None
    ) -> tuple[Version, bool]:
        """Store `body` as a version of `name`. Returns the version and whether it is new under the name
        (recording content the name already has is a no-op that returns the existing version)."""
        check_name(kind, name)
        key = self._store.objects.put(kind, body)
        with self._store.write() as conn:
            # RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT DO NOTHING.
            stmt = insert_ignore(versions, conn.dialect.name).returning(versions.c.hash)
            inserted = conn.execute(
                stmt, {"kind": kind, "name": name, "hash": key, "note": note, "created_at": utcnow()}
            )
            created = inserted.first() is not None
        return self._version(kind, name, key), created

    def prospective(
        self, kind: str, name: str, body: dict[str, Any], *, note: str | None = None, pending: list[str]
    ) -> Version:
        """The version `record` would give `body`, without storing anything: the existing version if the
        name has this content, else the next number after the hashes in `pending` (contents about to be
        recorded first, in order; `body`'s hash is appended if new). Lets a command validate everything
        before it writes."""
        check_name(kind, name)
        key = content_hash(body)
        history = self.history(kind, name)
        for version in history:
            if version.hash == key:
                return version
        if key not in pending:
            pending.append(key)
        return Version(kind, name, key, len(history) + pending.index(key) + 1, utcnow(), note)

    def history(self, kind: str, name: str) -> list[Version]:
        """Every version of `name`, oldest first (so `vN` is the N-th). Empty if the name is unknown."""
        with self._store.read() as conn:
            rows = conn.execute(
                select(versions.c.hash, versions.c.created_at, versions.c.note)
                .where(versions.c.kind == kind, versions.c.name == name)
                .order_by(versions.c.created_at, versions.c.hash)
            ).all()
            by_hash = self._labels_by_hash(conn, kind, name)
        return [
            Version(kind, name, r.hash, i, r.created_at, r.note, tuple(sorted(by_hash.get(r.hash, []))))
            for i, r in enumerate(rows, 1)
        ]

    def names(self, kind: str) -> list[tuple[str, int, datetime]]:
        """`(name, number of versions, last recorded)` for every name of `kind`, by name."""
        stmt = (
            select(versions.c.name, func.count(), func.max(versions.c.created_at))
            .where(versions.c.kind == kind)
            .group_by(versions.c.name)
            .order_by(versions.c.name)
        )
        with self._store.read() as conn:
            return [(row[0], int(row[1]), row[2]) for row in conn.execute(stmt)]

    def resolve(self, kind: str, name: str, ref: str | None = None, *, noun: str | None = None) -> Version:
        """The version `ref` names under `name` (see the module docstring). Raises NotFoundError, whose
        message calls the thing `noun` (default: `kind`, which for some kinds is an internal term)."""
        history = self.history(kind, name)
        noun = noun or kind
        if not history:
            known = ", ".join(n for n, _, _ in self.names(kind)[:10]) or "none yet"
            raise NotFoundError(f"no {noun} named {name!r}", hint=f"known {noun}s: {known}")
        ref = ref or "latest"
        if ref == "latest":
            return history[-1]
        m = _ORDINAL.match(ref)
        if m:
            n = int(m.group(1))
            if n > len(history):
                raise NotFoundError(
                    f"{noun} {name!r} has {len(history)} version(s), not {n}", hint=f"use v1..v{len(history)}"
                )
            return history[n - 1]
        labelled = [v for v in history if ref in v.labels]
        if labelled:
            return labelled[0]
        prefix = ref.removeprefix("sha256:")
        if len(prefix) >= 6 and re.fullmatch(r"[0-9a-f]+", prefix):
            with self._store.read() as conn:
                key = resolve_prefix(
                    conn,
                    versions.c.hash,
                    f"sha256:{prefix}",
                    plural=f"versions of {noun} {name!r}",
                    where=[versions.c.kind == kind, versions.c.name == name],
                )
            if key is not None:
                return next(v for v in history if v.hash == key)
        labels_known = sorted({lb for v in history for lb in v.labels})
        raise NotFoundError(
            f"{noun} {name!r} has no version or label {ref!r}",
            hint=f"use latest, v1..v{len(history)}, a hash prefix"
            + (f", or a label: {', '.join(labels_known)}" if labels_known else ""),
        )

    def get(
        self, kind: str, name: str, ref: str | None = None, *, noun: str | None = None
    ) -> tuple[Version, dict[str, Any]]:
        version = self.resolve(kind, name, ref, noun=noun)
        return version, self._store.objects.get(version.hash)

    def set_label(
        self, kind: str, name: str, label: str, ref: str, *, expect: str | object | None = ANY
    ) -> tuple[str | None, Version]:
        """Point `label` at the version `ref` names (moving it if it pointed elsewhere). Returns the hash
        it pointed at before (None: it was new), read in the same transaction as the move. With `expect`
        (a hash, or None for "no such label yet"), the move is refused if the label points elsewhere:
        someone moved it since the caller looked."""
        if not _LABEL.match(label) or label in RESERVED_LABELS or _ORDINAL.match(label):
            raise InvalidInputError(
                f"{label!r} cannot be a label",
                hint="start with a letter; use letters, digits, '.', '_', '-'; not 'latest' or vN",
            )
        version = self.resolve(kind, name, ref)
        where = (labels.c.kind == kind, labels.c.name == name, labels.c.label == label)
        with self._store.write() as conn:
            before = conn.execute(select(labels.c.hash).where(*where)).scalar_one_or_none()
            if expect is not ANY and before != expect:
                now = "was removed" if before is None else f"now points at {short(before)}"
                raise InvalidInputError(
                    f"label {label!r} of {name} changed since you looked: it {now}",
                    hint="reload to see where it is, then move it again",
                )
            conn.execute(delete(labels).where(*where))
            conn.execute(
                labels.insert(),
                {"kind": kind, "name": name, "label": label, "hash": version.hash, "updated_at": utcnow()},
            )
        return before, self.resolve(kind, name, version.hash)

    def remove_label(self, kind: str, name: str, label: str) -> None:
        with self._store.write() as conn:
            gone = conn.execute(
                delete(labels).where(labels.c.kind == kind, labels.c.name == name, labels.c.label == label)
            ).rowcount
        if not gone:
            raise NotFoundError(f"{kind} {name!r} has no label {label!r}")

    def _version(self, kind: str, name: str, key: str) -> Version:
        for v in self.history(kind, name):
            if v.hash == key:
                return v
        raise NotFoundError(f"{kind} {name!r} has no version {short(key)}")  # pragma: no cover - just written

    @staticmethod
    def _labels_by_hash(conn: Connection, kind: str, name: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        rows = conn.execute(
            select(labels.c.label, labels.c.hash).where(labels.c.kind == kind, labels.c.name == name)
        )
        for label, key in rows:
            out.setdefault(key, []).append(label)
        return out
