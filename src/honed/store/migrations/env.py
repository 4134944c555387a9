"""Alembic environment for honed.

honed runs migrations itself (`honed.store.migrate.upgrade`), passing an open connection in
`config.attributes["connection"]`. Developers writing a new revision run Alembic's commands with
`sqlalchemy.url` set instead, and this file makes the engine:

    cfg = honed.store.migrate.alembic_config()
    cfg.set_main_option("sqlalchemy.url", "sqlite:///dev.db")  # a database migrated to head
    alembic.command.revision(cfg, "add labels", autogenerate=True, rev_id="0002")
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
