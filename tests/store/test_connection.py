"""Opening databases: URLs, errors a person can act on, SQLite tuning, and use from several threads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

import honed.store
from honed.errors import StoreError
from honed.store import Store
from tests.support.postgres import PASSWORD_ROLE, free_port


def test_public_api() -> None:
    assert honed.store.__all__ == [
        "CacheRow",
        "NamedVersions",
        "ObjectRepository",
        "ResponseCache",
        "Store",
        "Version",
    ]
    assert all(hasattr(honed.store, name) for name in honed.store.__all__)


def test_unreachable_postgres_is_a_one_line_error_without_the_password() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(StoreError) as info:
        Store.open(f"postgresql://alice:s3cret-pw@127.0.0.1:{port}/honed")
    message = info.value.one_line()
    assert message == str(info.value)  # already one line
    assert f"cannot connect to PostgreSQL at 127.0.0.1:{port}: connection refused" in message
    assert "HONED_DATABASE_URL" in message
    assert "s3cret-pw" not in message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "not a database URL"),
        ("mysql://bob:hunter2@db.example/honed", "unsupported database URL"),
        ("postgresql+psycopg2://bob:hunter2@db.example/honed", "unsupported database URL"),
        ("sqlite://", "in-memory SQLite is not supported"),
    ],
)
def test_bad_urls_are_explained(url: str, expected: str) -> None:
    with pytest.raises(StoreError, match=expected) as info:
        Store.open(url)
    assert "hunter2" not in str(info.value)
    assert "\n" not in str(info.value)


def test_sqlite_creates_the_folder(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "honed.db"
    with Store.open(f"sqlite:///{path}") as store:
        assert store.dialect == "sqlite"
        assert store.url == f"sqlite:///{path}"
    assert path.is_file()


def test_sqlite_folder_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(StoreError, match="cannot create the database folder"):
        Store.open(f"sqlite:///{tmp_path / 'a-file' / 'honed.db'}")


def test_sqlite_pragmas_are_set_on_every_connection(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'honed.db'}") as store, store.read() as one, store.read() as two:
        for conn in (one, two):  # two connections checked out at once: two distinct pooled connections
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert one.connection.dbapi_connection is not two.connection.dbapi_connection


@pytest.mark.postgres
def test_postgres_url_spellings_all_use_psycopg(fresh_postgres_url: str) -> None:
    rest = fresh_postgres_url.split("://", 1)[1]
    for scheme in ("postgresql+psycopg", "postgresql", "postgres"):
        with Store.open(f"{scheme}://{rest}") as store:
            assert store.engine.dialect.driver == "psycopg"
            assert store.current_revision() == Store.head_revision()


@pytest.mark.postgres
def test_postgres_password_is_masked(fresh_postgres_url: str) -> None:
    url = fresh_postgres_url.replace("postgres@", "postgres:hunter2@")  # the test server trusts anyone
    with Store.open(url) as store:
        assert "hunter2" not in store.url
        assert "hunter2" not in repr(store)
        assert "***" in store.url


@pytest.mark.postgres
def test_wrong_postgres_password_is_explained_without_the_password(postgres_url: str) -> None:
    url = postgres_url.replace("postgres@", f"{PASSWORD_ROLE}:wrong-pw-123@")
    with pytest.raises(StoreError) as info:
        Store.open(url)
    message = str(info.value)
    assert f'password authentication failed for user "{PASSWORD_ROLE}"' in message
    assert message.startswith("cannot connect to PostgreSQL at 127.0.0.1:")
    assert "wrong-pw-123" not in message
    assert "\n" not in message


@pytest.mark.postgres
def test_missing_postgres_database_is_explained(postgres_url: str) -> None:
    url = postgres_url.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(StoreError) as info:
        Store.open(url)
    assert 'database "no_such_db" does not exist' in str(info.value)
    assert "\n" not in str(info.value)


def test_a_closed_store_refuses_work(database_url: str) -> None:
    store = Store.open(database_url)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        store.cache.count()


def test_two_stores_in_two_threads_write_concurrently(database_url: str) -> None:
    """Two writers (think: a runner's background thread and the CLI) on one database, opened at once."""
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(name: str) -> None:
        try:
            start.wait()
            with Store.open(database_url) as store:  # both open (and migrate) a new database at once
                for n in range(100):
                    store.objects.put("prompt", {"writer": name, "n": n})
                    store.objects.put("prompt", {"shared": n})  # both writers store the same versions
                    store.cache.put(f"{name}:{n}", "m", {"n": n}, {"r": n})
                    with store.write() as conn:  # read, then write, in one transaction
                        total = conn.execute(sa.text("SELECT count(*) FROM response_cache")).scalar_one()
                        conn.execute(sa.text("DELETE FROM response_cache WHERE key = :k"), {"k": f"x{total}"})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("main", "background")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Store.open(database_url) as store:
        assert len(store.objects.list("prompt")) == 300
        assert store.cache.count() == 200
