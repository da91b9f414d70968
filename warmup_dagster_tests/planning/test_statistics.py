"""A bulk plan refreshes PostgreSQL's planner statistics itself, with autovacuum off: the claims
that start right after it must not plan their queries as if the day's jobs were not there."""

import io

import pytest
from sqlalchemy import text

from warmup_dagster.db.dialect import REFRESH_AFTER_ROWS
from warmup_dagster.mailboxes.importer import import_mailboxes
from warmup_dagster_tests.mailboxes.csvdata import csv_text
from warmup_dagster_tests.planning.conftest import pool_rows

DUE = "SELECT id FROM warmup_jobs WHERE status IN ('PENDING', 'RETRY')"


def _estimate(engine, sql: str) -> float:
    with engine.connect() as conn:
        (plan,) = conn.execute(text(f"EXPLAIN (FORMAT JSON) {sql}")).scalar()
    return plan["Plan"]["Plan Rows"]


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_bulk_plan_leaves_fresh_statistics_for_the_claims(engine, cipher, clock, plan):
    with engine.begin() as conn:
        for table in ("warmup_jobs", "daily_quotas", "mailboxes", "users"):
            conn.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = false)"))
    rows = pool_rows(owners=10, per_owner=10, daily_limit=15, ramp_start=15)
    import_mailboxes(engine, io.StringIO(csv_text(rows)), cipher=cipher, clock=clock)
    # What autovacuum leaves after a quiet spell: statistics of a queue with nothing in it.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    assert _estimate(engine, DUE) < 10

    planned = sum(p.planned for p in plan([r["email"] for r in rows], replan=False))

    assert planned >= REFRESH_AFTER_ROWS
    assert planned / 2 <= _estimate(engine, DUE) <= planned * 2
