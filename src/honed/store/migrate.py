"""Alembic, driven from code: no alembic.ini, so it works the same from a checkout and an installed wheel.

Migrations run on a connection we hand to Alembic (through `Config.attributes`), inside one transaction
that first takes a database-wide lock, so two processes opening a new database at once cannot both
create the tables. Alembic's `context` is a process-wide proxy, so migrations in one process are also
serialised with a thread lock.
"""

from __future__ import annotations

import functools
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import Connection

from honed.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any fixed 64-bit number; it names honed's migration lock among the server's advisory locks.
_PG_MIGRATION_LOCK = 0x686F6E6564
_process_lock = threading.Lock()


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at honed's migrations; `connection` is what env.py migrates."""
    from alembic.config import Config

    config = Config()
    # configparser interpolates '%'; a path containing one must be escaped.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


# Every command opens the store, and a store at the newest revision (nearly always) needs nothing of
# Alembic, whose import costs ~0.2 s: the head is read from the revision files' own `revision` and
# `down_revision` lines and the database's revision from Alembic's table. Alembic itself is imported only
# to migrate, or when the files do not form one line of revisions.
_REVISION_LINE = re.compile(
    r'^(revision|down_revision)\s*(?::[^=]*)?=\s*(?:"([^"]*)"|None)\s*$', re.MULTILINE
)


@functools.cache  # the installed revision files do not change while we run
def head_revision() -> str:
    head = _head_from_files() or alembic_head_revision()
    if head is None:  # pragma: no cover - only if the package ships without its migrations
        raise StoreError("honed's database migrations are missing", hint="reinstall honed")
    return head


def alembic_head_revision() -> str | None:
    """The head revision as Alembic computes it (imports Alembic and every revision file)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _head_from_files() -> str | None:
    """The one revision no other revision names as its `down_revision`; None when that is not clear."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = dict((m.group(1), m.group(2)) for m in _REVISION_LINE.finditer(path.read_text("utf-8")))
        if not found.get("revision") or "down_revision" not in found:
            return None
        revisions.add(found["revision"])
        if found["down_revision"] is not None:
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or None for a database honed has never migrated."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    heads = [row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))]
    return heads[0] if heads else None


def check_known(revision: str | None) -> None:
    """Refuse a database migrated by a newer honed: running old code against it could corrupt it."""
    if revision is None:
        return
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    except CommandError:
        raise StoreError(
            f"the database is at schema revision {revision!r}, which this version of honed does not know "
            f"(its newest is {head_revision()!r})",
            hint="upgrade honed (pip install -U honed) on this machine",
        ) from None


def upgrade(engine: Engine, *, write_option: str) -> str:
    """Migrate the database to the newest revision; a no-op when it is there already."""
    with _process_lock, engine.execution_options(**{write_option: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        # Read the revision only now, under the lock: another process may have just migrated.
        revision = current_revision(conn)
        check_known(revision)
        head = head_revision()
        if revision != head:
            from alembic import command

            command.upgrade(alembic_config(conn), "head")
        return head
