"""A bulk plan refreshes PostgreSQL's planner statistics and visibility map itself, with
autovacuum off: the claims that start right after it must not plan their queries as if the
day's jobs were not there, and the metrics' count of the queued jobs must read them from the
index alone, without visiting every fresh row's page."""

import io

import pytest
from sqlalchemy import event, text

from warmup_dagster.db.dialect import REFRESH_AFTER_ROWS, scanning
from warmup_dagster.mailboxes.importer import import_mailboxes
from warmup_dagster.queue.metrics import queue_depth
from warmup_dagster_tests.mailboxes.csvdata import csv_text
from warmup_dagster_tests.planning.conftest import pool_rows

DUE = "SELECT id FROM warmup_jobs WHERE status IN ('PENDING', 'RETRY')"


def _estimate(engine, sql: str) -> float:
    with engine.connect() as conn:
        (plan,) = conn.execute(text(f"EXPLAIN (FORMAT JSON) {sql}")).scalar()
    return plan["Plan"]["Plan Rows"]


def _stale_then_planned(engine, cipher, clock, plan) -> int:
    """100 mailboxes imported and the database analysed as autovacuum leaves a quiet spell
    (the queue empty), autovacuum off on the tables; then a plan of their day. Returns the
    jobs planned."""
    with engine.begin() as conn:
        for table in ("warmup_jobs", "daily_quotas", "mailboxes", "users"):
            conn.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = false)"))
    rows = pool_rows(owners=10, per_owner=10, daily_limit=15, ramp_start=15)
    import_mailboxes(engine, io.StringIO(csv_text(rows)), cipher=cipher, clock=clock)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    assert _estimate(engine, DUE) < 10
    planned = sum(p.planned for p in plan([r["email"] for r in rows], replan=False))
    assert planned >= REFRESH_AFTER_ROWS
    return planned


def _nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_bulk_plan_leaves_fresh_statistics_for_the_claims(engine, cipher, clock, plan):
    planned = _stale_then_planned(engine, cipher, clock, plan)

    assert planned / 2 <= _estimate(engine, DUE) <= planned * 2


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_bulk_plan_leaves_its_pages_all_visible_for_the_scrape(engine, cipher, clock, plan):
    planned = _stale_then_planned(engine, cipher, clock, plan)

    # The visibility map, as the refresh's vacuum counted it: every page of the jobs and the
    # quotas all-visible (a plain ANALYZE counts the map too, and finds none of the new ones).
    with engine.connect() as conn:
        for table in ("warmup_jobs", "daily_quotas"):
            pages, visible = conn.execute(
                text("SELECT relpages, relallvisible FROM pg_class WHERE relname = :t"),
                {"t": table},
            ).one()
            assert pages > 0 and visible == pages, (table, pages, visible)

    # The scrape's count of the queued jobs, run as the scrape runs it and explained: it reads
    # the (status, due_at) index and visits no row's page to check that the row is visible.
    statements = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    with scanning(engine) as conn:
        # The pool's jobs fill a few pages, which PostgreSQL would rather read whole; the
        # 1,000,000 of a day at 100,000 mailboxes it counts from the index.
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        conn.execute(text("SET LOCAL enable_bitmapscan = off"))
        event.listen(conn, "before_cursor_execute", capture)
        try:
            depth = queue_depth(conn, clock.now())
        finally:
            event.remove(conn, "before_cursor_execute", capture)
        ((statement, parameters),) = statements
        (explained,) = conn.exec_driver_sql(
            f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}", parameters
        ).scalar()

    assert sum(n for (status, _), n in depth.items() if status == "PENDING") == planned
    (scan,) = [n for n in _nodes(explained["Plan"]) if n.get("Relation Name") == "warmup_jobs"]
    assert scan["Node Type"] == "Index Only Scan", scan
    assert scan["Index Name"] == "ix_warmup_jobs_status_due_at"
    assert scan["Actual Rows"] == planned
    assert scan["Heap Fetches"] == 0, scan
