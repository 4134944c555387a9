"""pytest plugin: a real, throwaway PostgreSQL server for the test session.

Store tests run against PostgreSQL for real, not a mock: the server is started from Debian's
`postgresql` package binaries into a temporary folder, listens only on 127.0.0.1 on a free port with
trust authentication, runs with durability off for speed, and is killed and deleted at the end.

Fixtures:
    postgres_url        session: URL of a database on the server (trust auth: no password needed)
    fresh_postgres_url  function: URL of a new, empty database, dropped after the test
    database_url        function: a new, empty database URL, parametrized over sqlite and postgres
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

PG_ROOT = Path("/usr/lib/postgresql")
MISSING = (
    "PostgreSQL server binaries not found: install Debian's postgresql package (scripts/test.sh does this)"
)
SERVER_USER = "postgres"  # the system user Debian's package creates; also the database superuser we make
PASSWORD_ROLE = "honed_pw"  # the one role whose password the server checks: it is PASSWORD_ROLE_SECRET
PASSWORD_ROLE_SECRET = "right-password"


def find_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin with initdb in it, else wherever PATH has initdb."""

    def version(bin_dir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name)) or (0,)

    found = sorted((p.parent for p in PG_ROOT.glob("*/bin/initdb")), key=version)
    if found:
        return found[-1]
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    bin_dir: Path
    root: Path
    run_as: str | None  # the user to run the server as, when we are root (initdb refuses root)
    port: int = 0

    @property
    def data(self) -> Path:
        return self.root / "data"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        # cwd: the server user may not be allowed into the test's current folder.
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        return subprocess.run(cmd, cwd=self.root, env=env, capture_output=True, text=True, check=False)

    def init(self) -> None:
        options = ["-U", SERVER_USER, "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"]
        done = self.run("initdb", "-D", str(self.data), *options)
        if done.returncode != 0:
            pytest.fail(f"initdb failed:\n{done.stdout}\n{done.stderr}", pytrace=False)
        # Everyone is trusted except PASSWORD_ROLE, so that tests can also meet a real password check.
        hba = self.data / "pg_hba.conf"
        hba.write_text(f"host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())

    def start(self) -> None:
        # The port is free when chosen but could be taken before the server binds it: retry a few times.
        for _ in range(3):
            self.port = free_port()
            options = (
                f"-F -c fsync=off -c full_page_writes=off -c synchronous_commit=off "
                f"-c listen_addresses=127.0.0.1 -p {self.port} -k {shlex.quote(str(self.root))}"
            )
            log = self.root / "server.log"
            done = self.run(
                "pg_ctl", "-D", str(self.data), "-l", str(log), "-w", "-t", "60", "-o", options, "start"
            )
            if done.returncode == 0:
                return
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        pytest.fail(f"pg_ctl start failed:\n{done.stdout}\n{done.stderr}\n{tail}", pytrace=False)

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SERVER_USER}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run `sql` (CREATE/DROP DATABASE: not allowed in a transaction) on the maintenance database."""
        conninfo = f"host=127.0.0.1 port={self.port} user={SERVER_USER} dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql)


def _fast_tmp() -> str | None:
    """A memory-backed folder if there is a roomy one: it makes initdb 3x and CREATE DATABASE 10x faster."""
    shm = Path("/dev/shm")
    try:
        roomy = shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free >= 1 << 30
    except OSError:
        roomy = False
    return str(shm) if roomy else None  # None: the system's default temporary folder


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        pytest.fail(
            f"tests run as root, but initdb refuses root and there is no '{SERVER_USER}' system user to run "
            "the server as: install Debian's postgresql package (it creates the user) or run as non-root",
            pytrace=False,
        )
    return SERVER_USER


@pytest.fixture(scope="session")
def _postgres_server() -> Iterator[Server]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.fail(MISSING, pytrace=False)
    run_as = _run_as()
    # Not under pytest's tmp folder: that is private to root, and the server user must reach its data.
    root = Path(tempfile.mkdtemp(prefix="honed-pg-", dir=_fast_tmp()))
    server = Server(bin_dir, root, run_as)
    try:
        if run_as:
            entry = pwd.getpwnam(run_as)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(_postgres_server: Server) -> str:
    """A database on the session's throwaway PostgreSQL server (shared by the tests that use it)."""
    _postgres_server.admin("CREATE DATABASE honed_test")
    _postgres_server.admin(f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{PASSWORD_ROLE_SECRET}'")
    return _postgres_server.url("honed_test")


@pytest.fixture
def fresh_postgres_url(_postgres_server: Server) -> Iterator[str]:
    """A new, empty database on the session's server, dropped after the test."""
    name = f"t_{secrets.token_hex(6)}"
    _postgres_server.admin(f"CREATE DATABASE {name}")
    yield _postgres_server.url(name)
    # FORCE: a test that failed before closing its Store must not make teardown fail too.
    _postgres_server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database of each kind: the test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'honed.db'}"
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url
