"""The PostgreSQL server of the tests and benchmarks, and throwaway databases on it.

The server is `WARMUP_TEST_POSTGRES_URL` (default: the local one on 127.0.0.1:5432); its user
must be allowed to create and drop databases. For tests and benchmarks only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg2
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get(
    "WARMUP_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


def admin_connection() -> psycopg2.extensions.connection:
    """An autocommit connection to the server's admin database, to create and drop databases."""
    url = make_url(PG_ADMIN_URL)
    conn = psycopg2.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname=url.database,
        connect_timeout=5,
    )
    conn.autocommit = True
    return conn


def database_url(name: str) -> str:
    """The SQLAlchemy URL of database `name` on the same server, password included."""
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


class ScratchDatabases:
    """Creates throwaway databases on the server and drops every one of them at the end.

    Args:
        prefix: Start of the database names; a random part follows, so concurrent suites and
            benchmarks on one server never collide.
    """

    def __init__(self, prefix: str = "wdt") -> None:
        self.prefix = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.created: list[str] = []

    def url(self, name: str) -> str:
        """The URL of database `name` (see `database_url`)."""
        return database_url(name)

    def create(self, template: str | None = None) -> str:
        """Create a new empty database, or a copy of `template`; returns its name."""
        name = f"{self.prefix}_{len(self.created)}"
        conn = admin_connection()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
                )
        finally:
            conn.close()
        self.created.append(name)
        return name

    def drop_all(self) -> None:
        """Drop every database this object created, even with connections still open."""
        conn = admin_connection()
        try:
            with conn.cursor() as cur:
                for name in self.created:
                    cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()
        self.created.clear()


class OwnCluster:
    """A throwaway PostgreSQL cluster of a test's own, which it may stop and restart at will.

    Made with the installed server's `initdb` and `pg_ctl` (`/usr/lib/postgresql/*/bin`, the
    newest version), in a temporary directory, on a free loopback
    port, trust authentication. Never the machine's own server: restarting that would break
    every other test and engineer on it. PostgreSQL refuses to run as root, so as root the
    cluster belongs to the `postgres` user.

    Use as a context manager: the cluster is stopped and its directory removed at exit.
    """

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.port = _free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="warmup-pg-")
        self.root = Path(self._tmp.name)
        self.data = self.root / "data"
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            shutil.chown(self.root, self._user, self._user)

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of one of the cluster's databases."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create database `name` (a copy of `template` if given); returns its URL."""
        conn = psycopg2.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres"
        )
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(
                    f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
                )
        finally:
            conn.close()
        return self.url(name)

    def _pg(self, tool: str, *args: str) -> None:
        subprocess.run(
            [str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            user=self._user,
            group=self._user,
            timeout=60,
        )

    def init(self) -> None:
        """Create the cluster (`initdb`, no fsync: its data is thrown away) and start it."""
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        log = str(self.root / "server.log")
        self._pg("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` ends every connection at once; `immediate` is a crash."""
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def __enter__(self) -> OwnCluster:
        self.init()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        self._tmp.cleanup()


def _pg_bin() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    if not found:
        raise RuntimeError("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin")
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
