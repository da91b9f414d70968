"""Benchmark: plan a day for 1,000 / 10,000 / 100,000 mailboxes on PostgreSQL.

    python -m benchmarks.bench_plan --sizes 1000 10000 100000 [--dagster]   (make bench-plan)

For each size, in a fresh database: the project's own planning time (`plan_mailboxes` over
the daily pass's batches: loading, computing and writing the jobs) and the process's peak RSS.
With `--dagster`, also the whole daily pass through Dagster on a PostgreSQL-backed
instance: the daily planning sensor's tick, then its range runs executed as the run launcher
would, at most `--parallel` at once (dagster.yaml's planner limit), bookkeeping included.

Goals: 100,000 mailboxes (about 1,000,000 jobs) planned in at most 60 s of the
project's own time and 1.5 GB; the whole daily pass within 30 minutes.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from benchmarks.bench_import import make_csv
from benchmarks.common import machine, peak_rss_mb, scratch_postgres
from warmup_dagster.clock import FixedClock
from warmup_dagster.crypto import Cipher
from warmup_dagster.db import migrate
from warmup_dagster.db.engine import make_engine
from warmup_dagster.mailboxes.importer import import_mailboxes
from warmup_dagster.settings import load_settings
from warmup_dagster.testing.deployment import dagster_env

SECRET = "benchmark-secret-key-0123456789"
# 00:00 UTC on a Wednesday, the daily pass's time; mailboxes started warming 30 days ago.
START = datetime(2026, 3, 4, tzinfo=UTC)
# Caps sized for 1,000,000 sends a day (the default caps allow about 80,000 in a 16-hour
# window).
CAPS = {
    "WARMUP_GLOBAL_SENDS_PER_MINUTE": "3000",
    "WARMUP_GLOBAL_SENDS_PER_HOUR": "150000",
    "WARMUP_USER_SENDS_PER_MINUTE": "60",
    "WARMUP_USER_SENDS_PER_HOUR": "3000",
}


def _prepare(url: str, size: int) -> list[str]:
    migrate.upgrade(url)
    engine = make_engine(url)
    import_mailboxes(
        engine,
        io.StringIO(make_csv(size, daily_limit=10)),
        cipher=Cipher(SECRET),
        clock=FixedClock(START - timedelta(days=30)),
    )
    with engine.connect() as conn:
        emails = list(conn.execute(text("SELECT email FROM mailboxes ORDER BY id")).scalars())
    engine.dispose()
    return emails


def _plan_day(url: str, emails: list[str], batch: int, at: datetime) -> tuple[float, int]:
    """One daily pass's planning, batch by batch as its runs do; (seconds, jobs)."""
    from warmup_dagster.planning.planner import plan_mailboxes

    engine = make_engine(url)
    settings = load_settings({**CAPS, "WARMUP_DATABASE_URL": url})
    started = time.perf_counter()
    planned = 0
    for i in range(0, len(emails), batch):
        plans = plan_mailboxes(
            engine,
            emails[i : i + batch],
            settings,
            FixedClock(at),
            replan=False,
            rng=random.Random(i),
        )
        planned += sum(p.planned for p in plans)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed, planned


def _run_one(args: tuple[str, dict[str, str], dict]) -> float:
    """One range run, executed in its own process as the default run launcher does."""
    home, tags, run_config = args
    import dagster as dg

    from warmup_dagster.definitions import defs

    started = time.perf_counter()
    instance = dg.DagsterInstance.from_config(home)
    job = defs.resolve_job_def("plan_mailboxes")
    result = job.execute_in_process(instance=instance, tags=tags, run_config=run_config)
    assert result.success
    instance.dispose()
    return time.perf_counter() - started


def _sync_partitions(instance, url: str, size: int) -> None:
    """The partition sync sensor's first tick over every mailbox, timed: it adds the partitions
    itself and must stay under the sensor timeout (60 s)."""
    import dagster as dg

    from warmup_dagster.resources import WarmupDatabase
    from warmup_dagster.sensors.partitions import mailbox_partitions_sensor

    started = time.perf_counter()
    resources = {"warmup_db": WarmupDatabase(database_url=url)}
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        result = mailbox_partitions_sensor(context)
    print(
        f"{size:,} mailboxes: the partition sync sensor added them in"
        f" {time.perf_counter() - started:.1f} s and asked for {len(result.run_requests)} runs"
    )


def _dagster_time(url: str, dagster_url: str, emails: list[str], parallel: int, home: str) -> float:
    import dagster as dg

    from warmup_dagster.resources import WarmupDatabase
    from warmup_dagster.sensors.planning import daily_plan_sensor

    with open(os.path.join(home, "dagster.yaml"), "w") as f:
        f.write(
            "storage:\n  postgres:\n    postgres_url: "
            f"{dagster_url}\ntelemetry:\n  enabled: false\n"
        )
    os.environ.update(
        {
            **CAPS,
            "WARMUP_DATABASE_URL": url,
            "WARMUP_SECRET_KEY": SECRET,
            "WARMUP_CLOCK_START": START.isoformat(),
        }
    )
    for name, value in dagster_env().items():  # what a deployment runs with
        os.environ.setdefault(name, value)
    started = time.perf_counter()
    instance = dg.DagsterInstance.from_config(home)
    _sync_partitions(instance, url, len(emails))
    resources = {"warmup_db": WarmupDatabase(database_url=url)}
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        requests = daily_plan_sensor(context).run_requests
    work = [(home, r.tags, r.run_config) for r in requests]
    with ProcessPoolExecutor(parallel) as pool:
        list(pool.map(_run_one, work))
    instance.dispose()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--dagster", action="store_true", help="also run the daily pass")
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    from warmup_dagster.assets.send_plan import PLAN_BATCH

    print(f"machine: {machine()}; date: {datetime.now(UTC):%Y-%m-%d}; batch {PLAN_BATCH:,}")
    for size in args.sizes:
        with scratch_postgres("warmup_bench_plan") as url:
            emails = _prepare(url, size)
            rss_before = peak_rss_mb()
            # Day 0 starts from nothing (it also plans the rest of the day in progress in
            # western zones); day 1 is the steady state every later day looks like.
            for label, at in (("first day", START), ("steady day", START + timedelta(days=1))):
                elapsed, planned = _plan_day(url, emails, PLAN_BATCH, at)
                print(
                    f"{size:,} mailboxes, {label}: {planned:,} jobs planned in {elapsed:.1f} s "
                    f"of project time ({planned / elapsed:,.0f} jobs/s); peak RSS "
                    f"{peak_rss_mb():.0f} MB (before planning {rss_before:.0f} MB)"
                )
            if args.dagster:
                with scratch_postgres("warmup_bench_dagster") as dagster_url:
                    engine = make_engine(url)
                    with engine.begin() as conn:
                        conn.execute(text("DELETE FROM warmup_jobs"))
                        conn.execute(text("DELETE FROM daily_quotas"))
                    engine.dispose()
                    import tempfile

                    with tempfile.TemporaryDirectory() as home:
                        total = _dagster_time(url, dagster_url, emails, args.parallel, home)
                    print(
                        f"{size:,} mailboxes: daily pass through Dagster in {total:.0f} s "
                        f"({total / 60:.1f} min; {args.parallel} runs at once)"
                    )


if __name__ == "__main__":
    main()
