"""Benchmark: one whole virtual day through the daemon, audited at the SMTP server.

    python -m benchmarks.bench_day   (make bench-day)

The daemon runs with production's `dagster.yaml` and every sensor on (partition sync, the
daily pass, dispatch) against scratch PostgreSQL databases, global caps sized for the pool
(`pool_caps`), and the project's clock runs `--speed` times real time from 00:00 UTC on a fixed
Monday. Once the partitions sensor has ticked, the pool is imported (`bench_import`'s
mailboxes, their SMTP at a `FaultySmtpServer` on loopback, `daily_limit` reached on day one, no
daily variance); the benchmark times the import to every mailbox planned, then runs until
every mailbox's window of that Monday has closed (`--plan-only`: stops there, and sends
nothing: the dispatch sensor stays off). Then the sensors
are stopped and the runs drained.

The audit (`benchmarks/day_audit.py`) is the server's: what arrived, when (in clock time), from
whom. The project's tables give only what was planned (`daily_quotas`), each message's planned
slot and local day (`warmup_jobs`, by Message-ID) and each sender's owner and timezone; the
send log is read only for the last line, the project's own counts beside the server's.

At a high speed a real second is many clock seconds: an arrival lags its claim by the SMTP
exchange, so at a boundary (a window's end, the spacing, a minute) the server may see a message
a few clock seconds past what its claim decided.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import signal
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import InstrumentedAttribute

from benchmarks.bench_import import TIMEZONES, make_csv
from benchmarks.common import machine, scratch_postgres
from benchmarks.day_audit import Arrival, Plan, Planned, Sender, audit
from warmup_dagster.clock import Clock, RealClock, clock_from_settings
from warmup_dagster.core.slots import send_window
from warmup_dagster.crypto import Cipher
from warmup_dagster.db import migrate
from warmup_dagster.db.engine import make_engine
from warmup_dagster.db.models import DailyQuota, JobStatus, Mailbox, SendLog, WarmupJob
from warmup_dagster.jobs import plan_job, send_job
from warmup_dagster.mailboxes.importer import import_mailboxes
from warmup_dagster.settings import Settings, load_settings
from warmup_dagster.testing.deployment import DagsterDeployment
from warmup_dagster.testing.smtp_server import FaultySmtpServer

SECRET = "benchmark-secret-key-0123456789"
# A fixed Monday at 00:00 UTC: the figures do not depend on the hour the benchmark starts.
MONDAY = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
SENSORS = ("dispatch_sensor", "daily_plan_sensor", "mailbox_partitions_sensor")


def pool_csv(args: argparse.Namespace, smtp_port: int) -> str:
    """`bench_import`'s mailboxes, sending to the local server, at their daily limit at once."""
    text = make_csv(args.mailboxes, args.per_owner, args.daily_limit)
    rows = list(csv.DictReader(io.StringIO(text)))
    for i, row in enumerate(rows):
        row.update(
            smtp_host="127.0.0.1",
            smtp_port=str(smtp_port),
            smtp_security="none",
            ramp_start=str(args.daily_limit),
            timezone=args.timezones[i % len(args.timezones)],
        )
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def pool_caps(args: argparse.Namespace) -> dict[str, str]:
    """Global caps sized for the pool (the defaults, 100 a minute and 5,000 an hour, carry
    about 80,000 sends in a 16-hour window): an hour may take an eighth of the day's mail,
    a minute a thirtieth of that. Never below the defaults."""
    per_hour = max(5000, -(-args.mailboxes * args.daily_limit // 8))
    return {
        "WARMUP_GLOBAL_SENDS_PER_HOUR": str(per_hour),
        "WARMUP_GLOBAL_SENDS_PER_MINUTE": str(max(100, -(-per_hour // 30))),
    }


def day_end(timezones: Iterable[str], settings: Settings) -> datetime:
    """When the last mailbox's window of the benchmark's Monday closes."""
    start, end = settings.send_window_start_hour, settings.send_window_end_hour
    return max(send_window(MONDAY.date(), tz, start, end).end for tz in set(timezones))


def read_plan(engine: Engine, settings: Settings) -> Plan:
    with engine.connect() as conn:
        senders = {
            # an envelope sender's case is not significant, so the audit compares lower case
            email.lower(): Sender(user, timezone or settings.send_window_timezone)
            for email, user, timezone in conn.execute(
                select(Mailbox.email, Mailbox.user_id, Mailbox.timezone)
            )
        }
        attempted = select(WarmupJob.message_id, WarmupJob.local_date, WarmupJob.scheduled_at)
        slots = {
            message_id: (day, slot)
            for message_id, day, slot in conn.execute(
                attempted.where(WarmupJob.message_id.is_not(None))
            )
        }
        days = {
            day: Planned(*figures)
            for day, *figures in conn.execute(
                select(
                    DailyQuota.local_date,
                    func.count(),
                    func.sum(DailyQuota.quota),
                    func.sum(DailyQuota.kept + DailyQuota.planned),
                    func.sum(DailyQuota.shortfall),
                ).group_by(DailyQuota.local_date)
            )
        }
    return Plan(MONDAY.date(), senders, slots, days)


def project_view(engine: Engine) -> tuple[str, datetime | None]:
    """The project's own counts (the one place the send log is read) and its first job."""

    def by_status(conn: Connection, column: InstrumentedAttribute[JobStatus]) -> str:
        rows = conn.execute(select(column, func.count()).group_by(column))
        return ", ".join(f"{status.name.lower()} {n}" for status, n in sorted(rows, key=str))

    with engine.connect() as conn:
        line = (
            f"the project's own view: jobs {by_status(conn, WarmupJob.status)};"
            f" send-log attempts {by_status(conn, SendLog.status)}"
        )
        timezone = func.coalesce(Mailbox.timezone, "default")
        reason = func.substr(func.coalesce(WarmupJob.error, ""), 1, 60)
        failed = conn.execute(
            select(timezone, reason, func.count())
            .join(Mailbox, Mailbox.id == WarmupJob.mailbox_id)
            .where(WarmupJob.status == JobStatus.FAILED)
            .group_by(timezone, reason)
            .order_by(func.count().desc())
        ).all()
        if failed:
            line += "; failed jobs by timezone and reason: " + "; ".join(
                f"{n} {tz} ({why or 'no reason'})" for tz, why, n in failed
            )
        return line, conn.scalar(select(func.min(WarmupJob.created_at)))


def duplicate_trail(engine: Engine, arrivals: list[Arrival]) -> list[str]:
    """For each Message-ID that arrived more than once: its arrivals and its send-log rows
    (attempt, status, late, run, claim and log times), so a duplicate can be explained."""
    seen = Counter(a.message_id for a in arrivals)
    repeated = sorted(m for m, n in seen.items() if n > 1)
    lines = []
    with engine.connect() as conn:
        for message_id in repeated:
            at = ", ".join(f"{a.at:%H:%M:%S}" for a in arrivals if a.message_id == message_id)
            rows = conn.execute(
                select(
                    SendLog.attempt,
                    SendLog.status,
                    SendLog.late,
                    SendLog.worker_id,
                    SendLog.claimed_at,
                    SendLog.created_at,
                    SendLog.error,
                )
                .where(SendLog.message_id == message_id)
                .order_by(SendLog.id)
            )
            trail = "; ".join(
                f"attempt {a} {s.name}{' late' if late else ''} by {w} claimed"
                f" {c and f'{c:%H:%M:%S}'} logged {t:%H:%M:%S}{f' ({e})' if e else ''}"
                for a, s, late, w, c, t, e in rows
            )
            lines.append(f"duplicate {message_id}: arrived {at}; send log: {trail or 'none'}")
    return lines


def runs_launched(instance: dg.DagsterInstance) -> str:
    figures = []
    for job in (send_job.name, plan_job.name):
        runs = instance.get_runs(dg.RunsFilter(job_name=job))
        statuses = Counter(run.status.value.lower() for run in runs)
        states = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
        figures.append(f"{len(runs)} {job} ({states})")
    return "Dagster runs launched: " + "; ".join(figures)


def run_day(args: argparse.Namespace) -> list[str]:
    """Import, run the day through the daemon, drain, and audit; the figures' lines."""
    with scratch_postgres("bench_day_app") as app_url, scratch_postgres("bench_day_dg") as dg_url:
        migrate.upgrade(app_url)
        env = {
            "WARMUP_DATABASE_URL": app_url,
            "WARMUP_SECRET_KEY": SECRET,
            "WARMUP_CLOCK_START": MONDAY.isoformat(),
            "WARMUP_CLOCK_SPEED": str(args.speed),
            "WARMUP_DAILY_VARIANCE": "0",
            **pool_caps(args),
            # A sender run lives a real minute at least: at 60x the default (900 clock s) is 15
            # real s, about 3 of which go to starting the run (a 10,000-mailbox day fell behind
            # at its peak with runs started 10 a minute).
            "WARMUP_SENDER_RUN_MAX_SECONDS": str(max(900, round(60 * args.speed))),
            # The SMTP timeout is clock time: at 60x the default 30 s is half a real second, and
            # a loaded machine's server answered the end of DATA after it, so the message was
            # delivered, counted a retry and sent again (6 duplicates in a 10,000-mailbox day).
            # At least 5 real s, with the lease above twice that, as the settings require.
            "WARMUP_SMTP_TIMEOUT_SECONDS": str(max(30, round(5 * args.speed))),
            "WARMUP_SEND_LEASE_SECONDS": str(max(600, round(20 * args.speed))),
            # From claim to arrival takes real time: at 60x a real second is a clock minute, and
            # claims held to 5 an owner a minute arrived 8 in one (135 owner-minutes over the
            # cap). A claim counts against the next minute's caps when it is this close to it,
            # and spaces a mailbox's claims this much more: 1.5 real s, under the 3 clock
            # minutes before a window's end in which nothing is claimed.
            "WARMUP_ARRIVAL_MARGIN_SECONDS": str(min(150, max(30, round(1.5 * args.speed)))),
        }
        # What the daemon and its runs read: this environment with the benchmark's settings.
        settings = load_settings({**os.environ, **env})
        engine = make_engine(app_url)
        # The first to ask anchors the clock: now is 00:00 UTC on the Monday, for every process.
        clock: Clock = clock_from_settings(settings, engine)
        end = day_end(args.timezones, settings)
        with FaultySmtpServer(clock=clock) as smtp, tempfile.TemporaryDirectory() as home:
            csv_text = pool_csv(args, smtp.port)
            # Planning alone is timed with --plan-only: no sender run competes with it (or, at
            # real speed, outlives it waiting for its first due job).
            off = ("dispatch_sensor",) if args.plan_only else ()
            with DagsterDeployment(Path(home), dg_url, env, stopped_sensors=off) as deployment:
                # Imported into a running deployment, as an operator would.
                deployment.wait_for_tick("mailbox_partitions_sensor", 120)
                import_mailboxes(engine, io.StringIO(csv_text), cipher=Cipher(SECRET), clock=clock)
                imported = clock.now()
                # The clock follows wall time: the day's end comes on time however loaded the
                # machine.
                timeout = (end - imported).total_seconds() / args.speed + 60
                deployment.wait_for(
                    lambda: planned_mailboxes(engine) == args.mailboxes,
                    600,
                    "every mailbox planned",
                )
                all_planned = clock.now()
                if not args.plan_only:
                    deployment.wait_for(
                        lambda: clock.now() >= end, timeout, "the day's last window"
                    )
                stopped = clock.now()
                deployment.drain(SENSORS, 600)
                drained = (clock.now() - stopped).total_seconds() / args.speed
                runs = runs_launched(deployment.instance())
            arrivals = [
                Arrival(str(r.message["Message-ID"]), r.mail_from.lower(), r.arrived_at)
                for r in smtp.received
            ]
        view, first_job = project_view(engine)
        lines = [] if args.plan_only else audit(arrivals, read_plan(engine, settings), settings)
        lines += duplicate_trail(engine, arrivals)
        engine.dispose()
    lines.insert(
        0,
        f"clock: from {MONDAY:%Y-%m-%d %H:%M} UTC at {args.speed:g}x; the last window of the day"
        f" closed at {end:%Y-%m-%d %H:%M} UTC; sensors stopped at {stopped:%Y-%m-%d %H:%M:%S}"
        f" UTC, the runs drained {drained:.0f} real s later",
    )
    if first_job is None:
        lines.append("import to the first planned job: no job was planned")
    else:
        wait = (first_job - imported).total_seconds()
        lines.append(
            f"import to the first planned job: {wait:.0f} clock s = {wait / args.speed:.1f} real s"
        )
    wait = (all_planned - imported).total_seconds()
    lines.append(
        f"import to every mailbox planned: {wait:.0f} clock s = {wait / args.speed:.1f} real s"
    )
    return [*lines, runs, view]


def planned_mailboxes(engine: Engine) -> int:
    """How many mailboxes have a plan (a `daily_quotas` row) for some day."""
    with engine.connect() as conn:
        return conn.scalar(select(func.count(func.distinct(DailyQuota.mailbox_id)))) or 0


def _timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"unknown timezone {name!r}") from exc
    return name


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
        return value

    return parse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=_positive(int), default=48)
    parser.add_argument("--per-owner", type=_positive(int), default=6, help="mailboxes per owner")
    parser.add_argument("--daily-limit", type=_positive(int), default=10, help="and ramp_start")
    parser.add_argument("--speed", type=_positive(float), default=60.0, help="WARMUP_CLOCK_SPEED")
    parser.add_argument("--timezones", type=_timezone, nargs="+", default=TIMEZONES)
    parser.add_argument(
        "--plan-only", action="store_true", help="stop once every mailbox is planned; no audit"
    )
    args = parser.parse_args()
    # Stopped from outside (a timeout): unwind, so the daemon and the server are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    started = RealClock().now()
    print(f"machine: {machine()}; date: {started:%Y-%m-%d}")
    print(
        f"command: python -m benchmarks.bench_day --mailboxes {args.mailboxes} --per-owner"
        f" {args.per_owner} --daily-limit {args.daily_limit} --speed {args.speed:g}"
        f" --timezones {' '.join(args.timezones)}{' --plan-only' if args.plan_only else ''}"
    )
    for line in run_day(args):
        print(line, flush=True)
    print(f"real time: {(RealClock().now() - started).total_seconds():.0f} s")


if __name__ == "__main__":
    main()
