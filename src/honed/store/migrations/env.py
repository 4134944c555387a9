"""Alembic environment for honed.

honed runs migrations itself (`honed.store.migrate.upgrade`), passing an open connection in
`config.attributes["connection"]`. Developers writing a new revision can run Alembic's own commands with
`sqlalchemy.url` set on the config; then this file makes the engine.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from honed.store.engine import build_engine, parse_url
from honed.store.schema import metadata


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url on the Alembic config to migrate a database directly")
    engine = build_engine(parse_url(url))
    try:
        with engine.begin() as conn:
            run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("honed's migrations run online only (they contain per-dialect trigger code)")
main()
