"""Throwaway PostgreSQL databases and machine facts for benchmarks."""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import uuid
from collections.abc import Iterator

import psycopg2
from sqlalchemy.engine import make_url

ADMIN_URL = os.environ.get(
    "WARMUP_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


def _admin() -> psycopg2.extensions.connection:
    url = make_url(ADMIN_URL)
    conn = psycopg2.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname=url.database,
    )
    conn.autocommit = True
    return conn


@contextlib.contextmanager
def scratch_postgres(prefix: str) -> Iterator[str]:
    """A new, empty database for one benchmark; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    conn = _admin()
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
