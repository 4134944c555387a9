"""Alembic, driven from code: no alembic.ini, so it works the same from a checkout and an installed wheel.

Migrations run on a connection we hand to Alembic (through `Config.attributes`), inside one transaction
that first takes a database-wide lock, so two processes opening a new database at once cannot both
create the tables. Alembic's `context` is a process-wide proxy, so migrations in one process are also
serialised with a thread lock.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from honed.errors import StoreError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any fixed 64-bit number; it names honed's migration lock among the server's advisory locks.
_PG_MIGRATION_LOCK = 0x686F6E6564
_process_lock = threading.Lock()


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at honed's migrations; `connection` is what env.py migrates."""
    config = Config()
    # configparser interpolates '%'; a path containing one must be escaped.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache  # the installed revision files do not change while we run
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - only if the package ships without its migrations
        raise StoreError("honed's database migrations are missing", hint="reinstall honed")
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or None for a database honed has never migrated."""
    heads = MigrationContext.configure(connection).get_current_heads()
    return heads[0] if heads else None


def check_known(revision: str | None) -> None:
    """Refuse a database migrated by a newer honed: running old code against it could corrupt it."""
    if revision is None:
        return
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
            command.upgrade(alembic_config(conn), "head")
        return head
