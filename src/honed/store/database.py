"""`Store`: one open database, its schema version, and the repositories over it.

A Store is cheap to share: it holds an engine (a thread-safe connection pool) and stateless repositories,
so a background writer thread and the main thread use the same instance. Each `read()`/`write()` block is
one transaction on a pooled connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.engine import URL, Connection

from honed.closing import Closing
from honed.errors import StoreError
from honed.store import migrate as migrations
from honed.store.audit import AuditLog
from honed.store.cache import ResponseCache
from honed.store.embeddings import EmbeddingCache
from honed.store.engine import WRITE_OPTION, build_engine, mask_url, parse_url, translate_errors
from honed.store.jobs import JobRepository
from honed.store.kb import KnowledgeBaseRepository
from honed.store.logs import LogRepository
from honed.store.names import NamedVersions
from honed.store.objects import ObjectRepository
from honed.store.review import ReviewQueues
from honed.store.runs import RunRepository
from honed.store.spans import SpanRepository
from honed.store.tokens import TokenRepository


class Store(Closing):
    """An open honed database (SQLite file or PostgreSQL). Create it with `Store.open(url)`."""

    def __init__(self, engine: Engine, url: URL) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._url = url
        self._closed = False
        self.objects = ObjectRepository(self)
        self.cache = ResponseCache(self)
        self.embeddings = EmbeddingCache(self)
        self.names = NamedVersions(self)
        self.runs = RunRepository(self)
        self.kb = KnowledgeBaseRepository(self)
        self.logs = LogRepository(self)
        self.jobs = JobRepository(self)
        self.tokens = TokenRepository(self)
        self.audit = AuditLog(self)
        self.review = ReviewQueues(self)
        self.spans = SpanRepository(self)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect to `url` and, if `migrate`, bring its schema to the newest revision.

        Accepts `sqlite:///path` (the folder is created) and `postgresql+psycopg://`, `postgresql://` or
        `postgres://`. A new, empty database gets the schema; an older SQLite file is upgraded; an older
        shared PostgreSQL database is left for `honed db upgrade`; one from a newer honed is refused.
        With `migrate=False` the schema is left alone (for `honed db`).
        Raises StoreError with a one-line message if the database cannot be reached.
        """
        parsed = parse_url(url)
        store = cls(build_engine(parsed), parsed)
        try:
            with store.read():
                pass  # fail here, with a clear message, if the database cannot be reached
            if migrate:
                revision = store.current_revision()
                head = migrations.head_revision()
                if revision is not None and revision != head and store.dialect == "postgresql":
                    # A shared server is migrated on purpose, never as a side effect of one user's command:
                    # the other clients of that database may still be on the older honed.
                    migrations.check_known(revision)
                    raise StoreError(
                        f"the database at {store.url} is at schema revision {revision}, "
                        f"this honed needs {head}",
                        hint="run `honed db upgrade` once for everyone who shares it",
                    )
                if revision != head:
                    store.upgrade()
        except BaseException:
            store.close()
            raise
        return store

    @property
    def url(self) -> str:
        """The database URL with any password masked: safe to print and log."""
        return mask_url(self._url)

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self._engine.dialect.name

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for repositories built elsewhere in honed. Prefer `read`/`write`."""
        return self._engine

    @contextmanager
    def read(self, *, snapshot: bool = False) -> Iterator[Connection]:
        """A connection in a transaction for reading; driver errors become StoreError. With `snapshot`,
        every statement of the block sees the same data: SQLite's read transactions always do, and on
        PostgreSQL (READ COMMITTED by default: a snapshot per statement) it runs at REPEATABLE READ."""
        self._check_open()
        engine = self._engine
        if snapshot and self.dialect == "postgresql":
            engine = engine.execution_options(isolation_level="REPEATABLE READ")
        with translate_errors(self._url), engine.begin() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection in a write transaction, committed at the end of the block (rolled back on error).

        On SQLite it takes the write lock at the start, waiting up to busy_timeout for other writers.
        """
        self._check_open()
        with translate_errors(self._url), self._writer.begin() as conn:
            yield conn

    def upgrade(self) -> str:
        """Migrate the schema to the newest revision (idempotent); returns that revision."""
        self._check_open()
        with translate_errors(self._url):
            return migrations.upgrade(self._engine, write_option=WRITE_OPTION)

    def current_revision(self) -> str | None:
        """The schema revision the database is at, or None if honed has never migrated it."""
        with self.read() as conn:
            return migrations.current_revision(conn)

    @staticmethod
    def head_revision() -> str:
        """The newest schema revision this version of honed knows."""
        return migrations.head_revision()

    def close(self) -> None:
        """Close the pooled connections. Idempotent."""
        self._closed = True
        self._engine.dispose()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store for {self.url} is closed", hint="open a new one with Store.open")

    def __repr__(self) -> str:
        return f"Store({self.url!r})"
