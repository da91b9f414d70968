"""Benchmark: scraping `warmup metrics-server` at 100,000 mailboxes and a day of 1,000,000 sends.

    python -m benchmarks.bench_metrics   (make bench-metrics)

1. 100,000 mailboxes imported (`bench_import`'s pool: 1,000 owners on `pro`, 5 timezones).
2. Monday 2026-03-02 at 18:00 UTC, every mailbox on that local day: each has a quota of 10 and
   has sent all 10, between its window's opening and now (1,000,000 SENT jobs, their send log
   rows, the counters and totals the queue keeps for them), and its 10 jobs of Tuesday are
   planned (1,000,000 PENDING). The rows are generated in SQL with every column the queue
   writes, so the setup takes a minute, not a day. Then, as the planner does after its
   write, `db.dialect.refresh_statistics` of the jobs and the quotas (a vacuum without index
   cleanup, and ANALYZE); the sender writes its rows through the day and refreshes nothing.
3. `warmup metrics-server` in its own process on the benchmark's clock (that Monday 18:00,
   all but standing still: the same figures at any hour), scraped over HTTP: 3 scrapes right
   after the day's writes and the planner's refresh, then `--scrapes` (20) after `VACUUM
   ANALYZE` of every table (what autovacuum adds soon after a day's writes: the sender's
   tables vacuumed too, and the indexes cleaned). Then a second server whose clock says
   20:00, when the Kolkata mailboxes are on Tuesday already: each mailbox's day is then read
   per local date (two reads instead of one). Each scrape is timed from the request to the
   last byte (`perf_counter`), holding /tmp/warmup-bench.lock exclusively, so no test shares
   the cores.

Goal: a scrape under one second.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import io
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from benchmarks.bench_import import make_csv
from benchmarks.common import machine, scratch_postgres
from warmup_dagster.clock import FixedClock
from warmup_dagster.crypto import Cipher
from warmup_dagster.db import migrate
from warmup_dagster.db.dialect import refresh_statistics
from warmup_dagster.db.engine import make_engine
from warmup_dagster.db.models import DailyQuota, WarmupJob
from warmup_dagster.mailboxes.importer import import_mailboxes

SECRET = "benchmark-secret-key-0123456789"
DAY = date(2026, 3, 2)
NOW = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)
PER_MAILBOX = 10
LOCK = "/tmp/warmup-bench.lock"
WARMUP = Path(sys.executable).parent / "warmup"

# One day's sends and the next day's plan, written as the queue writes them (`:day` is the
# Monday, `:now` its 18:00 UTC). Each mailbox's 10 sends spread over its window so far.
SETUP = [
    """
    INSERT INTO daily_quotas (mailbox_id, local_date, quota, ramp, kept, planned, shortfall,
                              planned_at)
    SELECT id, d, :n, :n, 0, :n, 0, :now FROM mailboxes, (VALUES (:day), (:day + 1)) AS v(d)
    """,
    """
    CREATE TEMP TABLE spans AS
    SELECT m.id, m.user_id, m.domain,
           (:day + time '06:00') AT TIME ZONE coalesce(m.timezone, 'UTC') AS opens,
           least((:day + time '22:00') AT TIME ZONE coalesce(m.timezone, 'UTC'), :now) AS ends,
           (:day + 1 + time '06:00') AT TIME ZONE coalesce(m.timezone, 'UTC') AS tomorrow
    FROM mailboxes m
    """,
    """
    INSERT INTO warmup_jobs (kind, mailbox_id, user_id, recipient_mailbox_id, recipient_email,
        local_date, scheduled_at, due_at, status, attempts, picked_at, worker_id, message_id,
        token, content_seed, subject, body, smtp_code, smtp_reply, sent_at, created_at,
        updated_at)
    SELECT 'SEND', s.id, s.user_id, r.id, r.email, :day, t.at, t.at, 'SENT', 1, t.at,
           'bench:run', '<' || s.id || '.' || n || '@' || s.domain || '>', 't' || s.id || n,
           n, 'subject', 'body', 250, '250 OK', t.at + interval '1 second', :now, :now
    FROM spans s
    CROSS JOIN generate_series(0, :n - 1) AS n
    JOIN mailboxes r ON r.id = (s.id + n * 7919) % :m + 1
    CROSS JOIN LATERAL (SELECT s.opens + (s.ends - s.opens) * (n + 0.5) / :n AS at) AS t
    """,
    """
    INSERT INTO send_log (job_id, mailbox_id, user_id, kind, recipient_email, message_id, status,
        attempt, smtp_code, smtp_reply, worker_id, claimed_at, local_date, late, created_at)
    SELECT id, mailbox_id, user_id, kind, recipient_email, message_id, status, 1, 250, '250 OK',
           worker_id, picked_at, local_date, false, sent_at
    FROM warmup_jobs
    """,
    """
    INSERT INTO warmup_jobs (kind, mailbox_id, user_id, recipient_mailbox_id, recipient_email,
        local_date, scheduled_at, due_at, status, attempts, content_seed, created_at, updated_at)
    SELECT 'SEND', s.id, s.user_id, r.id, r.email, :day + 1,
           s.tomorrow + interval '90 minutes' * n, s.tomorrow + interval '90 minutes' * n,
           'PENDING', 0, n, :now, :now
    FROM spans s
    CROSS JOIN generate_series(0, :n - 1) AS n
    JOIN mailboxes r ON r.id = (s.id + n * 104729) % :m + 1
    """,
    """
    INSERT INTO send_counters (scope, subject_id, period, used)
    SELECT 'MAILBOX_DAY', mailbox_id, :ordinal, count(*) FROM send_log GROUP BY mailbox_id
    UNION ALL
    SELECT 'USER_DAY', user_id, :ordinal, count(*) FROM send_log GROUP BY user_id
    """,
    """
    CREATE TEMP TABLE minutes AS
    SELECT user_id, floor(extract(epoch FROM claimed_at) / 60)::int AS minute, count(*) AS n
    FROM send_log GROUP BY 1, 2
    """,
    """
    INSERT INTO send_counters (scope, subject_id, period, used)
    SELECT 'USER_MINUTE', user_id, minute, n FROM minutes
    UNION ALL SELECT 'USER_HOUR', user_id, minute / 60, sum(n) FROM minutes GROUP BY 2, 3
    UNION ALL SELECT 'GLOBAL_MINUTE', 0, minute, sum(n) FROM minutes GROUP BY 3
    UNION ALL SELECT 'GLOBAL_HOUR', 0, minute / 60, sum(n) FROM minutes GROUP BY 3
    """,
    """
    INSERT INTO send_totals (metric, label, value)
    VALUES ('SENT', 'send', :sends), ('CYCLE', '1.0', :sends), ('CYCLE_SECONDS', '', :sends)
    """,
]


def set_up(url: str, mailboxes: int) -> None:
    engine = make_engine(url)
    started = time.perf_counter()
    summary = import_mailboxes(
        engine,
        io.StringIO(make_csv(mailboxes, daily_limit=PER_MAILBOX)),
        cipher=Cipher(SECRET),
        clock=FixedClock(NOW - timedelta(days=30)),
    )
    print(f"import: {summary} in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    values = {
        "day": DAY,
        "now": NOW,
        "n": PER_MAILBOX,
        "ordinal": DAY.toordinal(),
        "sends": mailboxes * PER_MAILBOX,
        "m": mailboxes,
    }
    with engine.begin() as conn:
        for statement in SETUP:
            conn.execute(text(statement), values)
        counts = {
            table: conn.scalar(text(f"SELECT count(*) FROM {table}"))
            for table in ("warmup_jobs", "send_log", "send_counters", "daily_quotas")
        }
    print(f"the day written in {time.perf_counter() - started:.1f} s: {counts}")
    # What the planner runs once its write has committed (`planning.planner`), for its jobs.
    started = time.perf_counter()
    planned = mailboxes * PER_MAILBOX
    refresh_statistics(engine, [WarmupJob.__tablename__, DailyQuota.__tablename__], planned)
    print(
        f"the planner's refresh (warmup_jobs, daily_quotas): {time.perf_counter() - started:.1f} s"
    )
    engine.dispose()


def scrape(url: str) -> tuple[float, str]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read().decode()
    return time.perf_counter() - started, body


def timed_scrapes(url: str, n: int) -> tuple[list[float], str]:
    with open(LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # until nobody is testing; then keep them out
        try:
            results = [scrape(url) for _ in range(n)]
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return [seconds for seconds, _ in results], results[-1][1]


def report(label: str, seconds: list[float]) -> None:
    print(
        f"{label}: {len(seconds)} scrapes, p50 {statistics.median(seconds) * 1000:.0f} ms, "
        f"max {max(seconds) * 1000:.0f} ms"
    )


def check(body: str, mailboxes: int) -> None:
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
    sends = mailboxes * PER_MAILBOX
    assert samples["warmup_emails_sent_total", (("kind", "send"),)] == sends
    assert samples["warmup_emails_per_mailbox_gsum", ()] == sends
    assert samples["warmup_emails_per_mailbox_gcount", ()] == mailboxes
    assert samples["warmup_quota_fill_rate_bucket", (("le", "0.9"),)] == 0
    depth = samples["warmup_queue_depth", (("due", "false"), ("status", "pending"))]
    assert depth == sends, depth
    print(f"exposition: {len(samples)} samples, {len(body):,} bytes; values check out")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=100_000)
    parser.add_argument("--scrapes", type=int, default=20)
    args = parser.parse_args()
    print(f"machine: {machine()}; date: {datetime.now(UTC):%Y-%m-%d}")
    with scratch_postgres("warmup_bench_metrics") as db_url:
        migrate.upgrade(db_url)
        set_up(db_url, args.mailboxes)
        with metrics_server(db_url, NOW) as url:
            seconds, body = timed_scrapes(url, 3)
            report("right after the writes and the planner's refresh", seconds)
            engine = make_engine(db_url)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                started = time.perf_counter()
                conn.execute(text("VACUUM ANALYZE"))
                print(f"VACUUM ANALYZE of every table: {time.perf_counter() - started:.1f} s")
            engine.dispose()
            seconds, body = timed_scrapes(url, args.scrapes)
            report("after VACUUM ANALYZE of every table", seconds)
            check(body, args.mailboxes)
        with metrics_server(db_url, NOW.replace(hour=20)) as url:
            seconds, _ = timed_scrapes(url, args.scrapes)
            report("at 20:00 UTC, two local dates (after VACUUM ANALYZE)", seconds)


@contextlib.contextmanager
def metrics_server(db_url: str, at: datetime) -> Iterator[str]:
    """`warmup metrics-server` on a clock all but standing still at `at`; yields its URL."""
    env = {
        **os.environ,
        "WARMUP_DATABASE_URL": db_url,
        "WARMUP_SECRET_KEY": SECRET,
        "WARMUP_CLOCK_START": at.isoformat(),
        "WARMUP_CLOCK_SPEED": "0.0001",
    }
    server = subprocess.Popen(
        [str(WARMUP), "metrics-server", "--port", "0"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        yield server.stdout.readline().strip().removeprefix("serving metrics on ")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
