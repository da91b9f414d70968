"""Engines for the two storage profiles, configured so one code path serves both."""

from __future__ import annotations

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

# A writer waits this long for SQLite's single write lock before "database is locked".
SQLITE_BUSY_TIMEOUT_S = 30


def make_engine(url: str) -> Engine:
    """Create an engine for a normalized URL (see `settings.normalize_database_url`).

    SQLite gets WAL (readers never block the writer), a busy timeout and foreign keys.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    # values_plus_batch: executemany of UPDATE or upsert goes out in pages, not row by row.
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        executemany_mode="values_plus_batch",
    )
