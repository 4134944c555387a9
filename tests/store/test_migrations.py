"""Schema management: auto-migration, explicit upgrade, revisions, and migrations == metadata."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from honed.errors import StoreError
from honed.store import Store
from honed.store.migrate import MIGRATIONS_DIR, alembic_config
from honed.store.schema import metadata


def table_names(store: Store) -> set[str]:
    with store.read() as conn:
        return set(sa.inspect(conn).get_table_names())


def test_opening_a_new_database_migrates_it_to_head(database_url: str) -> None:
    with Store.open(database_url) as store:
        assert store.current_revision() == Store.head_revision() == "0011"
        assert {"objects", "response_cache", "alembic_version"} <= table_names(store)


def test_migrate_false_leaves_an_empty_database_alone_until_upgrade(database_url: str) -> None:
    with Store.open(database_url, migrate=False) as store:
        assert store.current_revision() is None
        assert table_names(store) == set()
        assert store.upgrade() == Store.head_revision()
        assert store.current_revision() == Store.head_revision()


def test_upgrade_is_idempotent_and_keeps_data(database_url: str) -> None:
    with Store.open(database_url) as store:
        key = store.objects.put("prompt", {"template": "hi"})
        assert store.upgrade() == Store.head_revision()
        assert store.upgrade() == Store.head_revision()
        assert store.objects.get(key) == {"template": "hi"}
    with Store.open(database_url) as reopened:  # reopening an up-to-date database migrates nothing
        assert reopened.objects.get(key) == {"template": "hi"}


def test_migrated_schema_equals_the_metadata(database_url: str) -> None:
    with Store.open(database_url) as store, store.read() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_schema_comparison_would_notice_a_difference(database_url: str) -> None:
    # Guards the test above against passing vacuously (e.g. if nothing were compared at all).
    changed = sa.MetaData()
    for table in metadata.tables.values():
        table.to_metadata(changed)
    sa.Table("objects", changed, sa.Column("extra", sa.Integer), extend_existing=True)
    with Store.open(database_url) as store, store.read() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), changed)
    assert [entry[0] for entry in diff] == ["add_column"]


def test_a_database_from_a_newer_honed_is_refused(database_url: str) -> None:
    with Store.open(database_url) as store, store.write() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff_future'"))
    with pytest.raises(StoreError) as info:
        Store.open(database_url)
    assert "ffff_future" in str(info.value)
    assert "upgrade honed" in str(info.value)
    with Store.open(database_url, migrate=False) as store:  # still inspectable, e.g. by `honed db current`
        assert store.current_revision() == "ffff_future"


def test_migrations_ship_without_an_ini_file() -> None:
    # Alembic is configured in code, so an installed wheel needs only these files.
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()
    assert not list(MIGRATIONS_DIR.parent.glob("*.ini"))


def _migrate(store: Store, revision: str, *, down: bool = False) -> None:
    with store.write() as conn:
        (command.downgrade if down else command.upgrade)(alembic_config(conn), revision)


def _columns(store: Store, table: str) -> set[str]:
    with store.read() as conn:
        return {c["name"] for c in sa.inspect(conn).get_columns(table)}


def test_0006_and_0007_add_queue_time_and_the_latency_probe_keeping_rows(database_url: str) -> None:
    from honed.store.schema import utcnow

    with Store.open(database_url, migrate=False) as store:
        _migrate(store, "0005")
        now = utcnow()
        with store.write() as conn:  # rows as honed 0005 wrote them: latency_s only
            conn.execute(
                sa.text(
                    "INSERT INTO runs (id, spec, spec_hash, status, created_at, updated_at) "
                    "VALUES ('r1', '{}', 'h', 'completed', :t, :t)"
                ),
                {"t": now},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO results (run_id, variant, case_id, sample_index, request_key, dataset_hash, "
                    "model, params, input_tokens, output_tokens, latency_s, cached, created_at) VALUES "
                    "('r1', 'v', 'c', 0, 'k', 'd', 'm', '{}', 1, 2, 406.1, false, :t)"
                ),
                {"t": now},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO logs (id, created_at, source, model, params, latency_s, metadata) "
                    "VALUES ('log-1', :t, 'app', 'm', '{}', 0.5, '{}')"
                ),
                {"t": now},
            )
        assert "queue_s" not in _columns(store, "results") | _columns(store, "logs")

        # through 0008 (audit_events), 0009 (review queues), 0010 (runs.created_by) and 0011 (spans)
        assert store.upgrade() == "0011"
        assert store.runs.get("r1").created_by is None  # 0010: an old run's author is unknown
        assert store.runs.get("r1").latency_probe is None  # 0007: no probe was made for an old run
        store.runs.set_latency_probe("r1", {"calls": 1, "variants": {"v": [0.25]}})
        assert store.runs.get("r1").latency_probe == {"calls": 1, "variants": {"v": [0.25]}}
        assert "queue_s" in _columns(store, "results") and "queue_s" in _columns(store, "logs")
        (result,) = store.runs.results("r1")
        assert (result["latency_s"], result["queue_s"]) == (406.1, None)  # not known for an old row
        assert store.logs.get("log-1").log["queue_s"] is None
        store.runs.put_results([{**result, "queue_s": 405.8, "latency_s": 0.3}])
        (result,) = store.runs.results("r1")
        assert (result["latency_s"], result["queue_s"]) == (0.3, 405.8)

        _migrate(store, "0005", down=True)  # and back, keeping the rows
        assert "queue_s" not in _columns(store, "results") | _columns(store, "logs")
        with store.read() as conn:
            assert conn.execute(sa.text("SELECT latency_s FROM results")).scalar_one() == 0.3
            assert conn.execute(sa.text("SELECT count(*) FROM logs")).scalar_one() == 1
