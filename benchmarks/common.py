"""Throwaway PostgreSQL databases and machine facts for benchmarks."""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import uuid
from collections.abc import Iterator

from warmup_dagster_tests.pgserver import admin_connection, database_url


@contextlib.contextmanager
def scratch_postgres(prefix: str) -> Iterator[str]:
    """A new, empty database for one benchmark; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    conn = admin_connection()
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name)
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
