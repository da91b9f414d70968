"""The PostgreSQL server of the tests and benchmarks, and throwaway databases on it.

The server is `WARMUP_TEST_POSTGRES_URL` (default: the local one on 127.0.0.1:5432); its user
must be allowed to create and drop databases. For tests and benchmarks only.
"""

from __future__ import annotations

import os
import uuid

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
