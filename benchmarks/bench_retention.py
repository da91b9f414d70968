"""Benchmark: the hot queries with 30 days of history, and the prune that keeps it at that.

    python -m benchmarks.bench_retention [--mailboxes 100000 --per-mailbox 10 --days 30]
    (make bench-retention)

1. Two scratch PostgreSQL databases, each with `--mailboxes` mailboxes imported
   (`bench_import`'s pool: 100 per owner on `pro`, 5 timezones, daily limit 10), warming for
   60 days, and its history: one day in the first (Sunday 1 March 2026), `--days` days up to
   that Sunday in the second. On each day every mailbox sent its quota of `--per-mailbox`
   inside its window (1 job in 100 FAILED with a 550), with the rows the queue writes (jobs
   with a subject and a 200-character body, one send-log row per attempt, the day's quotas),
   generated in SQL (`INSERT ... SELECT`: faster than COPY from Python, no row crosses the
   wire). Then `VACUUM ANALYZE`, what autovacuum does soon after a bulk write.
2. Timed, holding /tmp/warmup-bench.lock exclusively (once, for everything below), on each
   database: the daily planning pass for Monday 2 March (`plan_mailboxes` over the daily
   pass's batches of 25,000 at 00:00 UTC, as `bench_plan` times it), `queue.next_due` (median
   of 5), claims of 500 jobs from 10:00 UTC, 3 clock minutes apart (`queue.claim`, median of
   5), and the Sunday's fill rate (`fill.load` and its figures, the rule audit included).
3. Timed, on the second: the prune of its two oldest days (`queue.retention.prune`,
   WARMUP_RETENTION_DAYS set so that they are past it, every date released): rows deleted
   per second and the longest batch (one transaction: the longest any of its row locks is
   held). Meanwhile a thread claims 50 jobs every 0.2 s as a sender run would (from 5 s
   before the prune), and the claims' times before and during it are reported.

Times are `perf_counter` seconds; "now" is the benchmark's `FixedClock`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import io
import statistics
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Engine

from benchmarks.bench_import import make_csv
from benchmarks.bench_plan import CAPS
from benchmarks.bench_plan import _plan_day as plan_day
from benchmarks.common import machine, peak_rss_mb
from warmup_dagster import fill, queue
from warmup_dagster.assets.send_plan import PLAN_BATCH
from warmup_dagster.clock import FixedClock
from warmup_dagster.core.content import token_key
from warmup_dagster.crypto import Cipher
from warmup_dagster.db import migrate
from warmup_dagster.db.engine import make_engine
from warmup_dagster.mailboxes.importer import import_mailboxes
from warmup_dagster.queue.retention import prune
from warmup_dagster.settings import Settings, load_settings
from warmup_dagster.testing.postgres import ScratchDatabases

SECRET = "benchmark-secret-key-0123456789"
MONDAY = date(2026, 3, 2)
SUNDAY = MONDAY - timedelta(days=1)
MIDNIGHT = datetime(2026, 3, 2, tzinfo=UTC)
TEN = MIDNIGHT.replace(hour=10)  # the windows of UTC, Berlin and Kolkata are open
LOCK = "/tmp/warmup-bench.lock"
BODY = "lorem ipsum dolor sit amet " * 7 + "consectetur"  # 200 characters

# One local day `:d` of history: each mailbox's `:n` jobs spread over its window, sent.
DAY_ROWS = [
    """
    INSERT INTO warmup_jobs (kind, mailbox_id, user_id, recipient_mailbox_id, recipient_email,
        local_date, scheduled_at, due_at, status, attempts, picked_at, worker_id, message_id,
        token, content_seed, subject, body, smtp_code, smtp_reply, error, sent_at, created_at,
        updated_at)
    SELECT 'SEND', b.id, b.user_id, r.id, r.email, :d, t.at, t.at,
           CASE WHEN t.failed THEN 'FAILED' ELSE 'SENT' END, 1, t.at, 'bench:run',
           '<' || b.id || '.' || n || '.' || :ordinal || '@' || b.domain || '>', 't' || n, n,
           'a subject of about forty characters here', :body,
           CASE WHEN t.failed THEN 550 ELSE 250 END,
           CASE WHEN t.failed THEN '550 5.1.1 no such user' ELSE '250 OK' END,
           CASE WHEN t.failed THEN 'recipient refused: 550 5.1.1 no such user' END,
           CASE WHEN t.failed THEN NULL ELSE t.at + interval '1 second' END, t.at, t.at
    FROM boxes b
    CROSS JOIN generate_series(0, :n - 1) AS n
    JOIN mailboxes r ON r.id = (b.id + n * 7919 + :ordinal) % :m + 1
    CROSS JOIN LATERAL (
        SELECT (:d + time '06:00') AT TIME ZONE b.tz + interval '16 hours' * (n + 0.5) / :n
            AS at, (b.id + n + :ordinal) % 100 = 0 AS failed) AS t
    """,
    """
    INSERT INTO send_log (job_id, mailbox_id, user_id, kind, recipient_email, message_id, status,
        attempt, smtp_code, smtp_reply, error, worker_id, claimed_at, local_date, late,
        created_at)
    SELECT id, mailbox_id, user_id, kind, recipient_email, message_id, status, 1, smtp_code,
           smtp_reply, error, worker_id, picked_at, local_date, false,
           picked_at + interval '1 second'
    FROM warmup_jobs WHERE local_date = :d
    """,
    """
    INSERT INTO daily_quotas (mailbox_id, local_date, quota, ramp, kept, planned, shortfall,
        planned_at)
    SELECT id, :d, :n, :n, 0, :n, 0, :d - 1 + time '00:00' FROM boxes
    """,
]

# Monday's plan and what its claims did, deleted to plan it again.
FORGET_MONDAY = [
    "DELETE FROM send_log WHERE local_date = :monday",
    "DELETE FROM warmup_jobs WHERE local_date = :monday",
    "DELETE FROM daily_quotas WHERE local_date = :monday",
    "DELETE FROM send_counters",
]


@contextlib.contextmanager
def bench_lock() -> Iterator[None]:
    """/tmp/warmup-bench.lock, exclusively: no test shares the cores while it is held."""
    with open(LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def set_up(engine: Engine, mailboxes: int) -> list[str]:
    started = time.perf_counter()
    summary = import_mailboxes(
        engine,
        io.StringIO(make_csv(mailboxes, daily_limit=10)),
        cipher=Cipher(SECRET),
        clock=FixedClock(MIDNIGHT - timedelta(days=60)),
    )
    print(f"import: {summary} in {time.perf_counter() - started:.1f} s")
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE boxes AS SELECT id, user_id, domain, coalesce(timezone, 'UTC') AS tz"
                " FROM mailboxes"
            )
        )
        return list(conn.execute(text("SELECT email FROM mailboxes ORDER BY id")).scalars())


def write_days(engine: Engine, days: list[date], mailboxes: int, per_mailbox: int) -> None:
    for day in days:
        started = time.perf_counter()
        values = {
            "d": day,
            "ordinal": day.toordinal(),
            "n": per_mailbox,
            "m": mailboxes,
            "body": BODY,
        }
        with engine.begin() as conn:
            for statement in DAY_ROWS:
                conn.execute(text(statement), values)
        print(f"  {day}: written in {time.perf_counter() - started:.1f} s", flush=True)


def vacuum(engine: Engine) -> None:
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        sizes = conn.execute(
            text(
                "SELECT relname, n_live_tup, pg_total_relation_size(relid) / 1048576"
                " FROM pg_stat_user_tables"
                " WHERE relname IN ('warmup_jobs', 'send_log', 'daily_quotas') ORDER BY relname"
            )
        ).all()
    print(
        f"VACUUM ANALYZE: {time.perf_counter() - started:.1f} s; "
        + ", ".join(f"{name} {rows:,} rows {mb:,} MB" for name, rows, mb in sizes),
        flush=True,
    )


def median_seconds(action, n: int = 5) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def timed_queries(
    engine: Engine, url: str, settings: Settings, emails: list[str], label: str
) -> None:
    """The planning pass of Monday (as `bench_plan` times it), `next_due`, claims and the
    Sunday's fill rate."""
    key = token_key(SECRET)
    plan_s, planned = plan_day(url, emails, PLAN_BATCH, MIDNIGHT)
    due_s = median_seconds(lambda: queue.next_due(engine))
    claimed: list[int] = []
    clock = FixedClock(TEN)  # 3 clock minutes between claims: past each mailbox's spacing
    claim_s = median_seconds(
        lambda: claimed.append(
            len(
                queue.claim(
                    engine, settings, lambda: clock.advance(minutes=3), "bench", 500, key
                ).jobs
            )
        )
    )
    started = time.perf_counter()
    day = fill.load(engine, settings, SUNDAY, TEN)
    figures = day.figures
    fill_s = time.perf_counter() - started
    print(
        f"{label}: planning pass {plan_s:.1f} s ({planned:,} jobs); next_due"
        f" {due_s * 1000:.1f} ms; claim of 500 {claim_s * 1000:.1f} ms (claimed"
        f" {min(claimed)}-{max(claimed)}); fill rate of {SUNDAY} {fill_s:.1f} s"
        f" ({figures['emails_sent']:,} sends, {figures['failed']:,} failed)",
        flush=True,
    )


def timed_prune(engine: Engine, settings: Settings, now: datetime) -> None:
    """The prune, while a thread claims 50 jobs every 0.2 s as a sender run would (for 5 s
    before the prune too, to compare)."""
    key = token_key(SECRET)
    clock = FixedClock(TEN + timedelta(hours=1))
    claims: dict[str, list[float]] = {"before": [], "during": []}
    phase = ["before"]
    done = threading.Event()

    def sender() -> None:
        while not done.is_set():
            started = time.perf_counter()
            queue.claim(engine, settings, lambda: clock.advance(seconds=6), "bench-2", 50, key)
            claims[phase[0]].append(time.perf_counter() - started)
            time.sleep(0.2)

    thread = threading.Thread(target=sender, name="claims")
    thread.start()
    time.sleep(5)
    phase[0] = "during"
    started = time.perf_counter()
    try:
        pruned = prune(engine, now, settings)
    finally:
        done.set()
        thread.join()
    seconds = time.perf_counter() - started
    print(
        f"prune of {', '.join(str(d.day) for d in pruned.days)}: {pruned.jobs:,} jobs,"
        f" {pruned.log_rows:,} send-log rows, {pruned.quotas:,} quotas, {pruned.counters:,}"
        f" counters in {seconds:.1f} s ({pruned.rows / seconds:,.0f} rows/s), {pruned.batches:,}"
        f" batches of {settings.retention_batch_rows:,} jobs, the longest"
        f" {pruned.longest_batch_seconds * 1000:.0f} ms",
        flush=True,
    )
    for label, times in claims.items():
        print(
            f"claims of 50 {label} the prune: {len(times)}, median"
            f" {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=100_000)
    parser.add_argument("--per-mailbox", type=int, default=10)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--batch", type=int, default=5_000, help="WARMUP_RETENTION_BATCH_ROWS")
    args = parser.parse_args()
    print(f"machine: {machine()}; date: {datetime.now(UTC):%Y-%m-%d}")
    print(
        f"command: python -m benchmarks.bench_retention --mailboxes {args.mailboxes}"
        f" --per-mailbox {args.per_mailbox} --days {args.days} --batch {args.batch}"
    )
    databases = ScratchDatabases("warmup_bench_retention")
    try:
        states = []
        for days in (1, args.days):
            url = databases.url(databases.create())
            migrate.upgrade(url)
            engine = make_engine(url)
            print(f"a database with {days} days of history:")
            emails = set_up(engine, args.mailboxes)
            started = time.perf_counter()
            history = [SUNDAY - timedelta(days=n) for n in range(days)]
            write_days(engine, history, args.mailboxes, args.per_mailbox)
            print(f"{days} days written in {time.perf_counter() - started:.0f} s")
            vacuum(engine)
            env = {
                **CAPS,
                "WARMUP_DATABASE_URL": url,
                "WARMUP_RETENTION_BATCH_ROWS": str(args.batch),
            }
            states.append((days, url, engine, load_settings(env)))
        with bench_lock():
            for days, url, engine, settings in states:
                timed_queries(engine, url, settings, emails, f"{days} days of history")
            days, url, engine, settings = states[-1]
            # the two oldest days are past retention
            timed_prune(engine, settings.model_copy(update={"retention_days": days - 2}), TEN)
        for _, _, engine, _ in states:
            engine.dispose()
    finally:
        databases.drop_all()
    print(f"peak memory {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
