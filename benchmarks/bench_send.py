"""Benchmark: sending, in one run on one machine, against a local aiosmtpd sink.

    python -m benchmarks.bench_send   (make bench-send)

1. Raw SMTP blast: aiosmtplib straight at the sink, one connection per message, as many at
   once as the sender runs' total concurrency: the ceiling.
2. The full path: one due job per mailbox in PostgreSQL, the Dagster daemon on a
   PostgreSQL-backed instance (production's dagster.yaml), its dispatch sensor launching
   sender runs through the run queue, outcomes recorded in the send log.
3. The same full path against a sink that takes 1 s per message, as real providers do.

Rates are sends per minute between the first and the last send (the daemon's and runs' start-up
is reported separately). A sender run's peak memory is the largest its runs reported.
The sink runs in its own process, as a provider would. The SMTP server's own work shares the
machine's cores with the sender, so these figures are lower bounds for a remote server.

Goals: the full path at least 10,000 sends/min and at least a third of the raw blast;
with the 1 s sink at least 90% of what the concurrency allows; a sender run at most 250 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import dagster as dg
from sqlalchemy import func, select, update

from benchmarks.bench_import import make_csv
from benchmarks.common import machine, scratch_postgres
from warmup_dagster.clock import FixedClock
from warmup_dagster.core.slots import local_day
from warmup_dagster.crypto import Cipher
from warmup_dagster.db import migrate
from warmup_dagster.db.engine import make_engine
from warmup_dagster.db.models import JobKind, JobStatus, Mailbox, Security, SendLog, WarmupJob
from warmup_dagster.mailboxes.importer import import_mailboxes
from warmup_dagster.queue.enqueue import NewJob, enqueue
from warmup_dagster.testing.deployment import DagsterDeployment

SECRET = "benchmark-secret-key-0123456789"
# The benchmark's clock: real speed from a fixed instant, so its figures are the same at any
# hour (a Monday noon, inside every mailbox's day; the dispatch and the runs read it too).
START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


class Sink:
    """The SMTP sink in a subprocess."""

    def __init__(self, delay: float) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.sink", str(self.port), str(delay)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the sink did not start")

    def stop(self) -> str:
        self.process.terminate()
        out, _ = self.process.communicate(timeout=30)
        return out.strip()


async def _blast(port: int, count: int, concurrency: int) -> int:
    sessions = asyncio.Semaphore(concurrency)
    sent = 0

    async def one(i: int) -> None:
        nonlocal sent
        async with sessions:
            message = EmailMessage()
            message["From"], message["To"] = f"a{i}@bench.example", f"b{i}@bench.example"
            message["Subject"], message["Message-ID"] = f"raw {i}", f"<raw{i}@bench.example>"
            message.set_content("A short plain-text warmup-sized message.\n" * 8)
            await aiosmtplib.send(
                message, hostname="127.0.0.1", port=port, local_hostname="bench.local"
            )
            sent += 1

    await asyncio.gather(*(one(i) for i in range(count)))
    return sent


def raw_blast(port: int, count: int, concurrency: int) -> float:
    started = time.monotonic()
    sent = asyncio.run(_blast(port, count, concurrency))
    return sent / (time.monotonic() - started) * 60


def _prepare(url: str, count: int, port: int) -> None:
    """`count` mailboxes on the sink, one job each, all due now."""
    migrate.upgrade(url)
    engine = make_engine(url)
    now = START
    import_mailboxes(
        engine, io.StringIO(make_csv(count)), cipher=Cipher(SECRET), clock=FixedClock(now)
    )
    with engine.begin() as conn:
        conn.execute(
            update(Mailbox).values(
                smtp_host="127.0.0.1", smtp_port=port, smtp_security=Security.NONE
            )
        )
        boxes = list(conn.execute(select(Mailbox.id, Mailbox.user_id, Mailbox.timezone)))
        due = now - timedelta(minutes=1)
        # Planned sends, as planning enqueues them: the Message-ID is derived at the first attempt.
        enqueue(
            conn,
            now,
            (
                NewJob(
                    kind=JobKind.SEND,
                    mailbox_id=box,
                    user_id=user,
                    local_date=local_day(due, timezone),
                    recipient_email=f"peer{i}@sink.example",
                    due_at=due,
                    content_seed=i,
                )
                for i, (box, user, timezone) in enumerate(boxes)
            ),
        )
    engine.dispose()


def full_path(count: int, port: int, runs: int, concurrency: int, per_run: int) -> dict:
    with scratch_postgres("bench_send_app") as app_url, scratch_postgres("bench_send_dg") as dg_url:
        _prepare(app_url, count, port)
        env = {
            "WARMUP_DATABASE_URL": app_url,
            "WARMUP_SECRET_KEY": SECRET,
            "WARMUP_CLOCK_START": START.isoformat(),
            "WARMUP_SCHEDULER_INTERVAL_MS": "1000",
            "WARMUP_WORKER_COUNT": str(runs),
            "WARMUP_WORKER_CONCURRENCY": str(concurrency),
            "WARMUP_JOBS_PER_SCHEDULER_RUN": str(per_run),
            "WARMUP_SEND_WINDOW_START_HOUR": "0",
            "WARMUP_SEND_WINDOW_END_HOUR": "24",
            # Caps out of the way: this measures the path, the caps are tested elsewhere.
            "WARMUP_GLOBAL_SENDS_PER_MINUTE": "1000000",
            "WARMUP_GLOBAL_SENDS_PER_HOUR": "10000000",
            "WARMUP_USER_SENDS_PER_MINUTE": "100000",
            "WARMUP_USER_SENDS_PER_HOUR": "1000000",
        }
        engine = make_engine(app_url)

        def sent() -> int:
            with engine.connect() as conn:
                return conn.scalar(select(func.count()).where(WarmupJob.status == JobStatus.SENT))

        with tempfile.TemporaryDirectory() as home:
            deployment = DagsterDeployment(
                Path(home),
                dg_url,
                env,
                sender_limit=runs,
                stopped_sensors=(
                    "mailbox_partitions_sensor",
                    "daily_plan_sensor",
                ),
            )
            started = time.monotonic()
            with deployment:
                deployment.wait_for(lambda: sent() >= count, 1800, f"{count} sends")
                wall = time.monotonic() - started
                deployment.drain(("dispatch_sensor",), 600)
                instance = deployment.instance()
                peaks, run_count = _runs(instance)
        with engine.connect() as conn:
            first, last, attempts = conn.execute(
                select(func.min(SendLog.created_at), func.max(SendLog.created_at), func.count())
            ).one()
        engine.dispose()
    span = (last - first).total_seconds()
    return {
        "sends": count,
        "attempts": attempts,
        "rate": count / span * 60,
        "span_s": span,
        "wall_s": wall,
        "runs": run_count,
        "peak_mb": max(peaks, default=0),
    }


def _runs(instance: dg.DagsterInstance) -> tuple[list[float], int]:
    runs = instance.get_runs(dg.RunsFilter(job_name="send_mail"))
    peaks = []
    for run in runs:
        for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_OUTPUT):
            metadata = record.dagster_event.event_specific_data.metadata
            if "peak memory (MB)" in metadata:
                peaks.append(metadata["peak memory (MB)"].value)
    return peaks, len(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw", type=int, default=20_000, help="messages of the raw blast")
    parser.add_argument("--jobs", type=int, default=30_000, help="full path, fast sink")
    parser.add_argument("--slow-jobs", type=int, default=6_000, help="full path, 1 s sink")
    parser.add_argument("--runs", type=int, default=5, help="WARMUP_WORKER_COUNT")
    parser.add_argument("--concurrency", type=int, default=10, help="WARMUP_WORKER_CONCURRENCY")
    parser.add_argument("--per-run", type=int, default=500, help="WARMUP_JOBS_PER_SCHEDULER_RUN")
    args = parser.parse_args()
    # Stopped from outside (a timeout): unwind, so the daemon and the sink are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sessions = args.runs * args.concurrency
    print(f"machine: {machine()}; {args.runs} sender runs x {args.concurrency} sessions")

    sink = Sink(delay=0.0)
    try:
        raw = raw_blast(sink.port, args.raw, sessions)
        print(f"1. raw blast: {args.raw:,} messages at {raw:,.0f}/min ({sessions} at once)")
        fast = full_path(args.jobs, sink.port, args.runs, args.concurrency, args.per_run)
    finally:
        print(f"   sink: {sink.stop()}")
    print(
        f"2. full path: {fast['sends']:,} sends at {fast['rate']:,.0f}/min"
        f" over {fast['span_s']:.1f} s"
        f" ({fast['wall_s']:.1f} s with the daemon's start), {fast['runs']} sender runs,"
        f" peak {fast['peak_mb']:.0f} MB per run; {fast['rate'] / raw:.0%} of the raw blast"
    )

    sink = Sink(delay=1.0)
    try:
        slow = full_path(args.slow_jobs, sink.port, args.runs, args.concurrency, args.per_run)
    finally:
        print(f"   sink: {sink.stop()}")
    allowed = sessions * 60
    print(
        f"3. 1 s sink: {slow['sends']:,} sends at {slow['rate']:,.0f}/min"
        f" over {slow['span_s']:.1f} s ({slow['wall_s']:.1f} s with the daemon's start);"
        f" the concurrency allows {allowed:,}/min:"
        f" {slow['rate'] / allowed:.0%}; peak {slow['peak_mb']:.0f} MB per run"
    )


if __name__ == "__main__":
    main()
