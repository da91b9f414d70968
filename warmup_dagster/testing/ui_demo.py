"""Days of the demo pool planned, sent and reported by the project's own code, for the UI.

`build_history` makes a Dagster home (SQLite storage, the demo's `dagster.yaml`) and an
application database beside it, then plays days through on a fixed clock, as a deployment
would: it imports the demo pool, runs the daily pass at each UTC midnight (the
`plan_mailboxes` job over every `send_plan` partition, as `daily_plan_sensor` launches it),
sends every due job with the real Sender to a local sandbox SMTP server, and materializes each
date's `fill_rate` (the `report_fill_rate` job, its five checks evaluated) once its windows
have closed. On the last day one owner's mail server is down (its mailboxes point at a port
nothing listens on), so its mailboxes miss their quotas and `quota_met` names them.

Nothing is written by hand: every row comes from the importer, the planner and the queue, and
every Dagster run is a real run of the project's jobs in that home. The webserver started on
the home with `env` shows it (see `warmup_dagster.testing.webserver`).
"""

from __future__ import annotations

import csv
import io
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import dagster as dg
from sqlalchemy import select

from warmup_dagster.clock import FixedClock
from warmup_dagster.core.content import token_key
from warmup_dagster.crypto import Cipher
from warmup_dagster.db import migrate
from warmup_dagster.db.engine import make_engine
from warmup_dagster.db.models import Mailbox
from warmup_dagster.demo import pool_csv
from warmup_dagster.jobs import QUIET_CONSOLE, RANGE_END_TAG, RANGE_START_TAG
from warmup_dagster.mailboxes.importer import import_mailboxes
from warmup_dagster.partitions import mailbox_partitions
from warmup_dagster.queue import next_due
from warmup_dagster.resources import WarmupDatabase
from warmup_dagster.sandbox import SandboxServer
from warmup_dagster.sending.worker import Sender
from warmup_dagster.settings import load_settings
from warmup_dagster.testing.smtp_server import closed_port

REPO = Path(__file__).resolve().parents[2]
SECRET = "ui-demo-secret-key-not-for-production"
# The owner whose mail server is down on the last day.
DOWN_OWNER = "hooli"
# Every local date of the pool's timezones (UTC-5 to UTC+5:30) has closed, a lease after its
# last window, by this hour (UTC) of the next day.
REPORT_HOUR = 6
# The Sender is woken at each job's due time, at least this far after the previous wake.
STEP = timedelta(seconds=30)


@dataclass(frozen=True)
class History:
    """What `build_history` made.

    Attributes:
        home: DAGSTER_HOME, with `dagster.yaml` (SQLite storage) and the runs.
        env: The variables a webserver on that home needs (application database, secret,
            the fill rate's first partition).
        days: The local dates played through, each with its `fill_rate` materialized.
        missed: The addresses that sent nothing on the last day (their server was down).
        mailboxes: Every address of the pool (the `send_plan` partitions).
    """

    home: Path
    env: dict[str, str]
    days: list[date]
    missed: list[str]
    mailboxes: list[str]


class _DatabaseAt(WarmupDatabase):
    """The project's database resource with its clock stopped at `at` (ISO 8601)."""

    at: str

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        super().setup_for_execution(context)
        self._clock = FixedClock(datetime.fromisoformat(self.at))


def build_history(home: Path, days: list[date]) -> History:
    """Play `days` (consecutive local dates) of the demo pool through, into `home`.

    Args:
        home: An empty or missing folder; becomes DAGSTER_HOME and holds the databases.
        days: Consecutive dates, oldest first; each must be a `fill_rate` partition, so none
            after tomorrow (UTC+14) and none before `WARMUP_FILL_RATE_START_DATE`.

    Returns:
        The home, the webserver's environment, the days, the missed mailboxes and the pool.
    """
    # Imported here: the definitions read the settings when they load, and a caller may set
    # them first.
    from warmup_dagster.definitions import defs

    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "deploy" / "dagster.embedded.yaml", home / "dagster.yaml")
    app_url = f"sqlite:///{home / 'warmup.sqlite'}"
    migrate.upgrade(app_url)
    env = {
        "WARMUP_DATABASE_URL": app_url,
        "WARMUP_SECRET_KEY": SECRET,
        "WARMUP_FILL_RATE_START_DATE": days[0].isoformat(),
        "WARMUP_SEND_MAX_ATTEMPTS": "2",  # a server that is down fails a job soon
    }
    settings = load_settings(env)
    engine = make_engine(app_url)
    cipher = Cipher(SECRET)
    instance = dg.DagsterInstance.from_config(str(home))
    plan = defs.resolve_job_def("plan_mailboxes")
    report = defs.resolve_job_def("report_fill_rate")
    first = datetime.combine(days[0], time(0), UTC)
    clock = FixedClock(first)
    down = closed_port()
    try:
        with SandboxServer(home / "sandbox-mail", port=0) as smtp:
            pool = pool_csv(smtp.port)
            import_mailboxes(engine, io.StringIO(pool), cipher=cipher, clock=clock)
            with engine.connect() as conn:
                emails = list(conn.scalars(select(Mailbox.email).order_by(Mailbox.id)))
            instance.add_dynamic_partitions(mailbox_partitions.name, emails)
            missed = _owned_by(pool, DOWN_OWNER)
            for day in days:
                midnight = datetime.combine(day, time(0), UTC)
                _send_until(engine, clock, settings, cipher, midnight)
                plan.execute_in_process(
                    run_config={
                        **QUIET_CONSOLE,
                        "ops": {"send_plan": {"config": {"replan": False}}},
                    },
                    instance=instance,
                    tags={RANGE_START_TAG: emails[0], RANGE_END_TAG: emails[-1]},
                    resources={"warmup_db": _at(app_url, midnight)},
                )
                report_at = midnight + timedelta(hours=REPORT_HOUR)
                _send_until(engine, clock, settings, cipher, report_at)
                if day != days[0]:
                    _report(report, instance, app_url, day - timedelta(days=1), report_at)
                if day == days[-1]:
                    # the owner's server goes down: before its mailboxes' window opens (in
                    # St John's at 09:30 UTC), once the day before has closed
                    outage = _with_port(pool, DOWN_OWNER, down)
                    import_mailboxes(engine, io.StringIO(outage), cipher=cipher, clock=clock)
            last = datetime.combine(days[-1] + timedelta(days=1), time(REPORT_HOUR), UTC)
            _send_until(engine, clock, settings, cipher, last)
            _report(report, instance, app_url, days[-1], last)
    finally:
        instance.dispose()
        engine.dispose()
    return History(home, env, list(days), missed, emails)


def _at(app_url: str, when: datetime) -> _DatabaseAt:
    return _DatabaseAt(database_url=app_url, at=when.isoformat())


def _report(job, instance, app_url: str, day: date, when: datetime) -> None:
    result = job.execute_in_process(
        run_config=QUIET_CONSOLE,
        instance=instance,
        partition_key=day.isoformat(),
        resources={"warmup_db": _at(app_url, when)},
    )
    assert result.success, f"fill_rate of {day} did not materialize"


def _send_until(engine, clock: FixedClock, settings, cipher: Cipher, until: datetime) -> None:
    """Wake a Sender at each due time before `until` (as the dispatch sensor launches sender
    runs), then leave the clock at `until`."""
    key = token_key(SECRET)
    woke = clock.now() - STEP
    while (due := next_due(engine)) is not None and due < until:
        woke = max(due, woke + STEP, clock.now())
        clock.advance(seconds=(woke - clock.now()).total_seconds())
        Sender(engine, clock, settings, cipher, key, "ui-demo", max_seconds=1).run()
    clock.advance(seconds=max(0.0, (until - clock.now()).total_seconds()))


def _rows(pool: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(pool)))


def _owned_by(pool: str, owner: str) -> list[str]:
    return [row["email"] for row in _rows(pool) if row["user"] == owner]


def _with_port(pool: str, owner: str, port: int) -> str:
    """The pool with `owner`'s mailboxes sending to `port`."""
    rows = _rows(pool)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "smtp_port": str(port)} if row["user"] == owner else row)
    return out.getvalue()
