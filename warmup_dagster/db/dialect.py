"""What SQLite and PostgreSQL do differently, in one place; callers stay dialect-free.

Bulk inserts by COPY, upserts, the epoch minute of a time column in SQL, id lists the
PostgreSQL planner can't look into, a lock held across processes, and the vacuum and planner
statistics refreshed after bulk writes.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Integer, Table, any_, bindparam, cast, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import ColumnElement

from warmup_dagster.db.engine import chunks, writing


def is_postgresql(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[Connection]:
    """A transaction that holds the lock `name` until it ends, across processes and machines.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: the database's write lock, taken at
    BEGIN (there is only one writer anyway).
    """
    with writing(engine) as conn:
        hold_lock(conn, name)
        yield conn


def hold_lock(conn: Connection, name: str) -> None:
    """Hold the lock `name` until `conn`'s transaction ends: an advisory lock on PostgreSQL;
    on SQLite a writing transaction (`db.engine.writing`) holds the only lock there is."""
    if is_postgresql(conn):
        key = zlib.crc32(name.encode())
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


# Rows written in one go after which the planner's statistics of the table are refreshed.
REFRESH_AFTER_ROWS = 1_000


def refresh_statistics(engine: Engine, tables: Sequence[str], written: int) -> None:
    """Vacuum and analyze `tables` after a committed write of `written` rows, if it was a bulk
    write: on PostgreSQL `VACUUM (ANALYZE, INDEX_CLEANUP OFF, TRUNCATE OFF)`.

    ANALYZE: PostgreSQL plans a query from statistics that only ANALYZE updates. Autovacuum
    runs it after a delay, or never where it is off, and until then a day's freshly planned
    jobs are invisible to the planner (it estimated 1 job due within the hour for 6,239): a
    join it believes tiny can become a nested loop over every row. It samples a bounded number
    of rows (about 0.1-0.5 s).

    VACUUM: until a vacuum marks a fresh row's page all-visible in the visibility map, a count
    read from an index alone (the metrics' queued jobs, from `(status, due_at)`) visits the
    row's page to check that the row is visible, and the first scrapes after a 1,000,000-job
    plan took up to 3 s, against 0.2-0.4 s once vacuumed. So the writer marks its pages itself:
    - It reads only the pages the visibility map does not mark all-visible yet (those just
      written, and whatever changed since the last vacuum), not the whole table.
    - It marks the rows of transactions that ended before every snapshot still open in the
      database: a transaction open since before the write's commit leaves those pages to the
      next vacuum (and the reads visit them until then, as they did before).
    - `INDEX_CLEANUP OFF`: it scans no index. Removing the index entries of dead rows reads
      every index of the table whole (of 30 days of jobs, at full scale), and that stays
      autovacuum's job. The space of the dead rows (a prune's, an update's old versions) is
      still freed in their pages and reusable at once, but their line pointers and index
      entries wait for autovacuum, and until then no page holding them, nor the rows written
      into their space, is marked all-visible.
    - `TRUNCATE OFF`: giving empty pages at the end of a table back to the file system takes
      an ACCESS EXCLUSIVE lock, which blocks every reader (after a delete at the end of a
      table the vacuum waited 5 s for it behind one reader, and then freed nothing: the dead
      line pointers keep those pages). That too is autovacuum's.

    Locks: like ANALYZE, it takes each table's SHARE UPDATE EXCLUSIVE lock in turn, which
    blocks no read or write, only schema changes and another vacuum or analyze of the table: two
    writers' refreshes of a table wait for each other, as they did with ANALYZE. Not
    `SKIP_LOCKED`: a refresh skipped would leave the statistics stale. VACUUM cannot run in a
    transaction, so this runs on a connection of its own in autocommit after the write's
    transaction has committed, holding none of its locks.

    The options need PostgreSQL 12 or later (`INDEX_CLEANUP`, `TRUNCATE`); the project is
    measured and tested on 15. SQLite has no statistics until ANALYZE is run once, and this
    project never runs it, so its planner keeps choosing by the indexes alone: nothing is run.
    """
    if written < REFRESH_AFTER_ROWS or engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM (ANALYZE, INDEX_CLEANUP OFF, TRUNCATE OFF) {', '.join(tables)}"))


@contextmanager
def scanning(engine: Engine) -> Iterator[Connection]:
    """A transaction for reads that go over whole ranges (the metrics' scrape).

    On PostgreSQL, with nested loops and JIT off for it: a range written since the last
    ANALYZE (a day's new quotas) is estimated at a few rows, and the planner then loops over
    one side for every row of the other; and JIT compiling the plan cost more (0.3 s) than
    running it. Elsewhere (SQLite) a plain transaction.
    """
    with engine.connect() as conn, conn.begin():
        if is_postgresql(conn):
            conn.execute(text("SET LOCAL enable_nestloop = off"))
            conn.execute(text("SET LOCAL jit = off"))
        yield conn


def among(
    conn: Connection, column: ColumnElement, values: Collection
) -> Iterator[ColumnElement[bool]]:
    """`column IN values` as conditions to run one query each: together they select `values`.

    On PostgreSQL one condition for all values, `column = ANY(ARRAY(SELECT unnest(:values)))`:
    an array the query planner can't look into. With the values in sight it estimated each
    day's new jobs (dates past its statistics) as a few rows, chose the local-date index and
    filtered millions of rows, ten times slower than the mailbox index. Elsewhere (SQLite)
    IN lists of `IN_LIST_CHUNK`.
    """
    values = list(values)
    if not values:
        return
    if not is_postgresql(conn):
        for part in chunks(values):
            yield column.in_(part)
        return
    array = bindparam(None, values, type_=ARRAY(column.type), expanding=False)
    yield column == any_(func.array(select(func.unnest(array)).scalar_subquery()))


def epoch_minute_sql(conn: Connection, column: Any) -> ColumnElement[int]:
    """The epoch minute of a time column, in SQL (`core.slots.epoch_minute` in Python)."""
    if is_postgresql(conn):
        return cast(func.floor(func.extract("epoch", column) / 60), Integer)
    # `//`: integer division on SQLite too (`/` would render as true division there).
    return cast(func.strftime("%s", column), Integer) // 60


def upsert(
    conn: Connection,
    table: Table,
    keys: Sequence[str],
    updates: Callable[[Any], Mapping[str, Any]],
) -> Any:
    """An INSERT that updates the row with the same `keys` instead of failing.

    `updates` gets the statement's `excluded` (the row that was to be inserted) and returns
    the columns to set on a conflict.
    """
    statement = (pg_insert if is_postgresql(conn) else sqlite_insert)(table)
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_=dict(updates(statement.excluded))
    )


def insert_if_absent(
    conn: Connection, table: Table, keys: Sequence[str], values: Mapping[str, Any]
):
    """Insert one row unless a row with the same `keys` exists (then leave that one alone)."""
    statement = (pg_insert if is_postgresql(conn) else sqlite_insert)(table).values(**values)
    conn.execute(statement.on_conflict_do_nothing(index_elements=list(keys)))


def raw_cursor(conn: Connection) -> Any:
    """The driver's cursor on `conn`'s connection (for COPY); the caller closes it."""
    return conn.connection.dbapi_connection.cursor()


def copy_csv(cursor: Any, table: str, columns: Sequence[str], data: str) -> None:
    """COPY CSV `data` into `columns` of `table` (PostgreSQL, psycopg2's raw cursor).

    In one read: psycopg2 reads the file holding the GIL, and with its default 8 KB reads a
    copy running in a thread queued for the GIL hundreds of times per chunk.
    """
    quoted = ", ".join(f'"{c}"' for c in columns)
    cursor.copy_expert(
        f"COPY {table} ({quoted}) FROM STDIN WITH (FORMAT csv)",
        io.StringIO(data),
        max(len(data), 8192),
    )
