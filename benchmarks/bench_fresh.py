"""Benchmark: plan a pool, then send at once, on PostgreSQL with autovacuum off.

    python -m benchmarks.bench_fresh   (make bench-fresh)

What a new day looks like to the query planner. A scratch database with autovacuum off on
every table; a small pool (48 mailboxes) imported, planned, its day sent (set SENT) and
analysed, as autovacuum would leave a quiet deployment after its day; then `--mailboxes`
more imported into it and their day planned on a clock at `--speed` from 06:00 UTC on a fixed
Monday (every window open, `daily_limit` due that day). Right after the plan, with nothing
else run in between:

1. the planner's estimate of the jobs due within the hour against their true number (EXPLAIN
   ANALYZE), and how long `next_due`, `due_count` and a claim of 200 take;
2. one sender run (in process, real SMTP to a loopback server) for `--send-seconds` real
   seconds: messages sent per second against the rate the plan needs.

The figures depend on the statistics the project's own writes leave behind; before they
refreshed them, the estimate was a few rows for every due job of the day.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql

from benchmarks.bench_day import pool_csv
from benchmarks.common import machine, scratch_postgres
from warmup_dagster import queue
from warmup_dagster.clock import RealClock, clock_from_settings
from warmup_dagster.core.content import token_key
from warmup_dagster.crypto import Cipher
from warmup_dagster.db import migrate
from warmup_dagster.db.engine import make_engine
from warmup_dagster.db.models import WarmupJob
from warmup_dagster.mailboxes.importer import import_mailboxes
from warmup_dagster.planning.planner import plan_mailboxes
from warmup_dagster.queue.due import claimable, due_jobs
from warmup_dagster.sending.worker import Sender
from warmup_dagster.settings import load_settings
from warmup_dagster.testing.smtp_server import FaultySmtpServer

SECRET = "benchmark-secret-key-0123456789"
# 06:00 UTC on a fixed Monday: every UTC window is open, the figures do not depend on the hour.
START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
TABLES = ("users", "mailboxes", "warmup_jobs", "send_log", "send_counters", "daily_quotas")
# Caps sized for 1,000,000 sends a day, as in bench-plan.
CAPS = {
    "WARMUP_GLOBAL_SENDS_PER_MINUTE": "3000",
    "WARMUP_GLOBAL_SENDS_PER_HOUR": "150000",
    "WARMUP_USER_SENDS_PER_MINUTE": "60",
    "WARMUP_USER_SENDS_PER_HOUR": "3000",
}


def _timed(call: Callable[[], object], times: int) -> str:
    took = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        took.append(time.perf_counter() - started)
    return f"p50 {statistics.median(took) * 1000:.0f} ms, max {max(took) * 1000:.0f} ms"


def _estimate(engine, at: datetime) -> tuple[float, float]:
    """The planner's estimate and the true count of the jobs due by `at`."""
    query = due_jobs().where(*claimable(at)).order_by(WarmupJob.due_at)
    sql = query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        (plan,) = conn.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar()
    node = plan["Plan"]
    while node.get("Node Type") in ("Sort", "Limit"):
        (node,) = node["Plans"]
    return node["Plan Rows"], node["Actual Rows"]


def run(args: argparse.Namespace) -> list[str]:
    lines = []
    with scratch_postgres("bench_fresh") as url, FaultySmtpServer(keep_messages=False) as smtp:
        migrate.upgrade(url)
        engine = make_engine(url)
        with engine.begin() as conn:
            for table in TABLES:
                conn.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = false)"))
        env = {
            **CAPS,
            "WARMUP_DATABASE_URL": url,
            "WARMUP_CLOCK_START": START.isoformat(),
            "WARMUP_CLOCK_SPEED": str(args.speed),
            "WARMUP_DAILY_VARIANCE": "0",
        }
        settings = load_settings(env)
        clock = clock_from_settings(settings, engine)
        cipher = Cipher(SECRET)

        def add_and_plan(count: int, per_owner: int, prefix: str) -> tuple[float, int]:
            """Import `count` mailboxes named `prefix`..., plan every mailbox's day."""
            pool = argparse.Namespace(
                mailboxes=count,
                per_owner=per_owner,
                daily_limit=args.daily_limit,
                timezones=["UTC"],
            )
            header, *rows = pool_csv(pool, smtp.port).splitlines(keepends=True)
            named = [r.replace("box", prefix).replace(",user", f",{prefix}user") for r in rows]
            started = time.perf_counter()
            import_mailboxes(
                engine, io.StringIO(header + "".join(named)), cipher=cipher, clock=clock
            )
            with engine.connect() as conn:
                emails = list(conn.scalars(text("SELECT email FROM mailboxes ORDER BY id")))
            plans = plan_mailboxes(engine, emails, settings, clock, replan=False)
            return time.perf_counter() - started, sum(p.planned for p in plans)

        add_and_plan(48, 6, "quiet")
        with engine.begin() as conn:  # the quiet pool's day is over: all of it went out
            conn.execute(text("UPDATE warmup_jobs SET status = 'SENT', sent_at = due_at"))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))  # what autovacuum leaves after a quiet day
        took, planned = add_and_plan(args.mailboxes, args.per_owner, "new")
        lines.append(
            f"imported {args.mailboxes:,} mailboxes into the 48 and planned {planned:,} new jobs"
            f" in {took:.1f} s"
        )
        now = clock.now()
        estimate, actual = _estimate(engine, now + timedelta(hours=1))
        lines.append(
            f"due within the hour: the planner estimates {estimate:,.0f} rows, there are"
            f" {actual:,.0f}"
        )
        lines.append(f"next_due: {_timed(lambda: queue.next_due(engine), 5)}")
        lines.append(f"due_count: {_timed(lambda: queue.due_count(engine, now, 5000), 5)}")
        key = token_key(SECRET)
        claim = lambda: queue.claim(engine, settings, clock.now, "probe", 200, key)  # noqa: E731
        lines.append(f"claim of 200: {_timed(claim, 5)}")

        sender = Sender(
            engine,
            clock,
            settings,
            cipher,
            key,
            "bench",
            max_seconds=args.send_seconds * args.speed,
        )
        started, before = clock.now(), smtp.transactions
        sender.run()
        span = (clock.now() - started).total_seconds()
        with engine.connect() as conn:
            due = conn.scalar(
                select(func.count())
                .select_from(WarmupJob)
                .where(WarmupJob.scheduled_at >= started, WarmupJob.scheduled_at < clock.now())
            )
        real = span / args.speed
        lines.append(
            f"one sender run, {real:.0f} real s ({span / 60:.0f} clock min): sent"
            f" {(smtp.transactions - before) / real:.1f}/s; the plan's slots in that span need"
            f" {due / real:.1f}/s"
        )
        engine.dispose()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=10_000)
    parser.add_argument("--per-owner", type=int, default=100)
    parser.add_argument("--daily-limit", type=int, default=10)
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--send-seconds", type=float, default=60.0, help="real seconds")
    args = parser.parse_args()
    print(f"machine: {machine()}; date: {RealClock().now():%Y-%m-%d}")
    print(
        f"command: python -m benchmarks.bench_fresh --mailboxes {args.mailboxes} --per-owner"
        f" {args.per_owner} --daily-limit {args.daily_limit} --speed {args.speed:g}"
        f" --send-seconds {args.send_seconds:g}"
    )
    for line in run(args):
        print(line, flush=True)


if __name__ == "__main__":
    main()
