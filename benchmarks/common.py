"""Throwaway PostgreSQL databases and machine facts for benchmarks."""

from __future__ import annotations

import contextlib
import os
import platform
import resource
from collections.abc import Iterator

from warmup_dagster.testing.postgres import ScratchDatabases


@contextlib.contextmanager
def scratch_postgres(prefix: str) -> Iterator[str]:
    """A new, empty database for one benchmark; dropped afterwards."""
    databases = ScratchDatabases(prefix)
    try:
        yield databases.url(databases.create())
    finally:
        databases.drop_all()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
