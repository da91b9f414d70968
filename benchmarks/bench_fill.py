"""Benchmark: one local day's fill rate and audit at a million sends.

    python -m benchmarks.bench_fill [--mailboxes 100000 --per-mailbox 10]

A scratch PostgreSQL database holds a synthetic history: `--mailboxes` mailboxes (10 per
owner) with a quota of `--per-mailbox` on Monday 2 March 2026, each of its jobs sent once
inside the 06-22 UTC window, at least 140 s apart (the day's send_log, jobs and quotas), plus
the same again on the Sunday before and the Tuesday after (history that must not be read).
The rows are written with COPY straight into the tables: they stand for what the sender
writes, made fast. The caps are raised to what a million a day needs.

Timed with perf_counter, each step once: reading the day's rows (`fill.load`), the figures
(per mailbox and per day, `Day.figures`, which includes the rule audit), and the checks
without the counter audit (no counters are written here). The history is written by a
process of its own: the peak memory is the fill rate's.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import random
import time
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text

from benchmarks.common import machine, peak_rss_mb, scratch_postgres
from warmup_dagster import fill
from warmup_dagster.clock import RealClock
from warmup_dagster.db import migrate
from warmup_dagster.db.dialect import copy_csv, raw_cursor
from warmup_dagster.db.engine import make_engine
from warmup_dagster.fill.checks import evaluate
from warmup_dagster.settings import load_settings

MONDAY = date(2026, 3, 2)
NOW = datetime(2026, 3, 3, 12, tzinfo=UTC)  # every window of the Monday closed
# The caps a million sends a day in a 16-hour window need (about 1,050 a minute on average).
CAPS = {
    "WARMUP_GLOBAL_SENDS_PER_MINUTE": "5000",
    "WARMUP_GLOBAL_SENDS_PER_HOUR": "200000",
    "WARMUP_USER_SENDS_PER_MINUTE": "100",
    "WARMUP_USER_SENDS_PER_HOUR": "2000",
}


def _copy(conn, table: str, columns: list[str], rows: list[tuple]) -> None:
    out = io.StringIO()
    for row in rows:
        out.write(",".join("" if v is None else str(v) for v in row) + "\n")
    cursor = raw_cursor(conn)
    try:
        copy_csv(cursor, table, columns, out.getvalue())
    finally:
        cursor.close()


def write_history(url: str, mailboxes: int, per_mailbox: int) -> None:
    """The pool, and three days of jobs, sends and quotas."""
    engine = make_engine(url)
    rng = random.Random(7)
    created = "2026-02-01T00:00:00+00:00"
    with engine.begin() as conn:
        plan = conn.scalar(text("SELECT id FROM plans WHERE name = 'enterprise'"))
        users = [(u, f"owner{u}", plan, created) for u in range(1, mailboxes // 10 + 2)]
        _copy(conn, "users", ["id", "name", "plan_id", "created_at"], users)
        boxes = []
        for m in range(1, mailboxes + 1):
            email = f"m{m}@d{m % 5000}.example"
            boxes.append(
                (m, email, email.split("@")[1], m // 10 + 1, "127.0.0.1", 25, "NONE", email, "x",
                 "127.0.0.1", 143, "NONE", email, "x", "ACTIVE", 40, 2, 2, 0.3, "false",
                 "2026-02-01", created, created)
            )  # fmt: skip
        _copy(
            conn,
            "mailboxes",
            ["id", "email", "domain", "user_id", "smtp_host", "smtp_port", "smtp_security",
             "smtp_username", "smtp_password_enc", "imap_host", "imap_port", "imap_security",
             "imap_username", "imap_password_enc", "state", "daily_limit", "ramp_start",
             "ramp_step", "reply_rate", "weekdays_only", "warmup_start_date", "created_at",
             "updated_at"],
            boxes,
        )  # fmt: skip
        job_id = 0
        for day in (MONDAY - timedelta(days=1), MONDAY, MONDAY + timedelta(days=1)):
            opens = datetime(day.year, day.month, day.day, 6, tzinfo=UTC)
            jobs, log, quotas = [], [], []
            for m in range(1, mailboxes + 1):
                at = opens + timedelta(seconds=rng.uniform(0, 3600))
                quotas.append((m, day, per_mailbox, per_mailbox, 0, per_mailbox, 0, created))
                for _ in range(per_mailbox):
                    job_id += 1
                    claimed = at + timedelta(seconds=rng.uniform(0, 60))
                    jobs.append(
                        (job_id, "SEND", m, m // 10 + 1, f"r{job_id}@x.example", day,
                         at.isoformat(), at.isoformat(), "SENT", 1, claimed.isoformat(),
                         f"<j{job_id}@x>", created, created)
                    )  # fmt: skip
                    log.append(
                        (job_id, m, m // 10 + 1, "SEND", f"r{job_id}@x.example", f"<j{job_id}@x>",
                         "SENT", 1, 250, claimed.isoformat(), day,
                         (claimed + timedelta(seconds=1)).isoformat())
                    )  # fmt: skip
                    at += timedelta(seconds=rng.uniform(200, 5000))
            _copy(
                conn,
                "warmup_jobs",
                ["id", "kind", "mailbox_id", "user_id", "recipient_email", "local_date",
                 "scheduled_at", "due_at", "status", "attempts", "sent_at", "message_id",
                 "created_at", "updated_at"],
                jobs,
            )  # fmt: skip
            _copy(
                conn,
                "send_log",
                ["job_id", "mailbox_id", "user_id", "kind", "recipient_email", "message_id",
                 "status", "attempt", "smtp_code", "claimed_at", "local_date", "created_at"],
                log,
            )  # fmt: skip
            _copy(
                conn,
                "daily_quotas",
                ["mailbox_id", "local_date", "quota", "ramp", "kept", "planned", "shortfall",
                 "planned_at"],
                quotas,
            )  # fmt: skip
        conn.execute(text("ANALYZE"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=100_000)
    parser.add_argument("--per-mailbox", type=int, default=10)
    args = parser.parse_args()
    print(f"machine: {machine()}; date: {RealClock().now():%Y-%m-%d}")
    print(
        f"command: python -m benchmarks.bench_fill --mailboxes {args.mailboxes}"
        f" --per-mailbox {args.per_mailbox}"
    )
    with scratch_postgres("bench_fill") as url:
        migrate.upgrade(url)
        started = time.perf_counter()
        # in a process of its own, so the peak memory below is the fill rate's alone
        writer = multiprocessing.Process(
            target=write_history, args=(url, args.mailboxes, args.per_mailbox)
        )
        writer.start()
        writer.join()
        if writer.exitcode:
            raise SystemExit(f"writing the history failed (exit code {writer.exitcode})")
        sends = args.mailboxes * args.per_mailbox
        print(
            f"history written: 3 days of {sends:,} sends in {time.perf_counter() - started:.0f} s"
        )
        settings = load_settings({"WARMUP_DATABASE_URL": url, **CAPS})
        engine = make_engine(url)
        t0 = time.perf_counter()
        day = fill.load(engine, settings, MONDAY, NOW)
        t1 = time.perf_counter()
        figures = day.figures
        t2 = time.perf_counter()
        verdicts = evaluate(day, [])
        t3 = time.perf_counter()
        engine.dispose()
    print(f"read the Monday's rows: {t1 - t0:.1f} s ({len(day.rows.log):,} send-log rows)")
    print(f"figures and the rule audit: {t2 - t1:.1f} s ({figures['rule_violations']} breaks)")
    print(f"checks (without the counter audit): {t3 - t2:.1f} s")
    print(f"total: {t3 - t0:.1f} s; peak memory {peak_rss_mb():.0f} MB")
    print(
        f"emails sent {figures['emails_sent']:,}, mean fill {figures['mean_fill']},"
        f" peak per hour {figures['peak_sends_per_hour']:,}; checks: "
        + ", ".join(f"{v.name} {'passed' if v.passed else 'failed'}" for v in verdicts)
    )


if __name__ == "__main__":
    main()
