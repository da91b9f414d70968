"""End to end, as deployed: the Dagster daemon on a PostgreSQL-backed instance plans imported
mailboxes and sends their mail to an SMTP server through its own sensor ticks and run queue,
with no manual step."""

import io
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest
from sqlalchemy import func, select

from warmup_dagster.clock import FixedClock
from warmup_dagster.crypto import Cipher
from warmup_dagster.db import migrate
from warmup_dagster.db.engine import make_engine
from warmup_dagster.db.models import DailyQuota, JobStatus, Mailbox, SendLog, WarmupJob
from warmup_dagster.mailboxes.importer import import_mailboxes
from warmup_dagster.testing.deployment import DagsterDeployment
from warmup_dagster.testing.smtp_server import FaultySmtpServer
from warmup_dagster_tests.conftest import TEST_SECRET
from warmup_dagster_tests.mailboxes.csvdata import csv_text, row

# Virtual time starts at 06:00 UTC on a Monday and runs 600 times faster than real time, so a
# day's slots come due within seconds.
START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
SPEED = 600
WANTED = 8  # messages to see at the SMTP server


@pytest.fixture
def app_url(pg_databases, pg_template):
    url = pg_databases.url(pg_databases.create(template=pg_template))
    migrate.upgrade(url)
    return url


@pytest.mark.daemon
@pytest.mark.slow(70)
def test_planned_mail_reaches_the_smtp_server_through_the_daemon(
    tmp_path, pg_databases, app_url, monkeypatch
):
    engine = make_engine(app_url)
    with FaultySmtpServer() as smtp:
        rows = [
            row(
                f"box{i}@owner{i % 3}-d{i}.example",
                f"owner{i % 3}",
                smtp_host="127.0.0.1",
                smtp_port=smtp.port,
                smtp_security="none",
                timezone="UTC",
                daily_limit=40,
                ramp_start=20,
            )
            for i in range(6)
        ]
        import_mailboxes(
            engine, io.StringIO(csv_text(rows)), cipher=Cipher(TEST_SECRET), clock=FixedClock(START)
        )
        env = {
            "WARMUP_DATABASE_URL": app_url,
            "WARMUP_SECRET_KEY": TEST_SECRET,
            "WARMUP_CLOCK_START": START.isoformat(),
            "WARMUP_CLOCK_SPEED": str(SPEED),
            "WARMUP_SCHEDULER_INTERVAL_MS": "1000",
            "WARMUP_SEND_LEASE_SECONDS": "36000",  # virtual: one real minute
            # Ten real seconds: the default 30 s is 50 real ms at 600x, and a reply later than
            # that (two daemons side by side) timed the session out after the server had taken
            # the message, so the retry delivered it twice.
            "WARMUP_SMTP_TIMEOUT_SECONDS": "6000",
            "WARMUP_GLOBAL_SENDS_PER_MINUTE": "1000",
            "WARMUP_GLOBAL_SENDS_PER_HOUR": "10000",
        }
        storage = pg_databases.url(pg_databases.create())
        monkeypatch.setenv("WARMUP_DAGSTER_POSTGRES_URL", storage)
        with DagsterDeployment(tmp_path / "dagster_home", storage, env) as deployment:
            deployment.wait_for(lambda: smtp.transactions >= WANTED, 240, f"{WANTED} messages")
            # Shut down as an operator would: no new runs, let the running ones finish.
            deployment.drain(("dispatch_sensor", "mailbox_partitions_sensor"), 120)
        received = [r.message["Message-ID"] for r in smtp.received]
        instance = deployment.instance()

    with engine.connect() as conn:
        planned = set(conn.scalars(select(WarmupJob.message_id)))
        sent = conn.scalar(
            select(func.count()).select_from(SendLog).where(SendLog.status == JobStatus.SENT)
        )
    engine.dispose()
    assert len(received) == len(set(received)) >= WANTED  # nothing sent twice
    assert set(received) <= planned  # each one a planned job's (set at its attempt)
    assert sent >= WANTED  # and recorded as sent
    runs = instance.get_runs()
    by_job = {run.job_name for run in runs}
    assert {"plan_mailboxes", "send_mail"} <= by_job
    senders = [run for run in runs if run.job_name == "send_mail"]
    assert all(run.tags.get("warmup/role") == "sender" for run in senders)
    assert all(run.tags.get("dagster/sensor_name") == "dispatch_sensor" for run in senders)
    assert any(run.status == dg.DagsterRunStatus.SUCCESS for run in senders)
    # The new mailboxes' range run: one planned event for the range (deploy/dagster.env), one
    # materialization per mailbox.
    (new,) = [run for run in runs if run.tags.get("dagster/run_key", "").startswith("new-")]
    kinds = {
        dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        dg.DagsterEventType.ASSET_MATERIALIZATION,
    }
    events = Counter(e.dagster_event_type for e in instance.all_logs(new.run_id, of_type=kinds))
    assert events == {
        dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED: 1,
        dg.DagsterEventType.ASSET_MATERIALIZATION: len(rows),
    }
    failed = [
        (run.job_name, [e.message for e in instance.all_logs(run.run_id) if e.level >= 40])
        for run in runs
        if run.status == dg.DagsterRunStatus.FAILURE
    ]
    assert not failed, f"failed runs: {failed}"


@pytest.mark.daemon
@pytest.mark.slow(150)
def test_a_scaled_clock_plans_every_virtual_day_through_the_daemon(
    tmp_path, pg_databases, app_url, monkeypatch
):
    # Half an hour of clock time per real second: a virtual day is 48 real s, and Wednesday's
    # pass comes 84 real s after Monday 06:00 (the new mailboxes' run plans Monday, with 36
    # real s to spare for the deployment's start). Nothing is sent; only planning is watched.
    # (At 3600x a day was 24 real s, and on a loaded machine the daily-plan sensor, ticking
    # every 6-21 s behind the other sensors, once missed a whole day's pass.)
    monday = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    days = {date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)}
    engine = make_engine(app_url)
    rows = [row(f"box{i}@owner{i}-d{i}.example", f"owner{i}", timezone="UTC") for i in range(3)]
    import_mailboxes(
        engine, io.StringIO(csv_text(rows)), cipher=Cipher(TEST_SECRET), clock=FixedClock(monday)
    )
    env = {
        "WARMUP_DATABASE_URL": app_url,
        "WARMUP_SECRET_KEY": TEST_SECRET,
        "WARMUP_CLOCK_START": monday.isoformat(),
        "WARMUP_CLOCK_SPEED": "1800",
    }

    def planned() -> dict[str, set[date]]:
        with engine.connect() as conn:
            found: dict[str, set[date]] = {}
            for email, day in conn.execute(
                select(Mailbox.email, DailyQuota.local_date)
                .join(DailyQuota, DailyQuota.mailbox_id == Mailbox.id)
                .where(DailyQuota.planned > 0)
            ):
                found.setdefault(email, set()).add(day)
            return found

    storage = pg_databases.url(pg_databases.create())
    monkeypatch.setenv("WARMUP_DAGSTER_POSTGRES_URL", storage)
    # Only planning is watched: the sensors that would launch other runs every virtual day (at
    # 1800x, every 48 real s) are off, so the passes do not queue behind them.
    deployment = DagsterDeployment(
        tmp_path / "dagster_home",
        storage,
        env,
        stopped_sensors=(
            "dispatch_sensor",
            "fill_rate_sensor",
            "catch_up_sensor",
        ),
    )
    passes = {"daily-2026-03-03-0", "daily-2026-03-04-0"}  # Tuesday's and Wednesday's

    def done() -> bool:
        found = planned()
        runs = deployment.instance().get_runs()
        keys = {r.tags.get("dagster/run_key") for r in runs if r.is_finished}
        return len(found) == 3 and all(days <= f for f in found.values()) and passes <= keys

    with deployment:
        deployment.wait_for(done, 360, "three virtual days planned by their daily passes")
        deployment.drain(("daily_plan_sensor", "mailbox_partitions_sensor"), 120)
    with engine.connect() as conn:
        plans = conn.execute(
            select(DailyQuota.mailbox_id, DailyQuota.local_date, DailyQuota.planned_at).where(
                DailyQuota.planned > 0
            )
        ).all()
    engine.dispose()
    # No day planned before it came within the horizon: by its own day's pass, or by the
    # day before's (a pass that starts late on the fast clock may already reach the next day's
    # window). The days the clock ran on while the sensors were being stopped count too: they
    # are planned the same way.
    early = [p for p in plans if p.planned_at.date() < p.local_date - timedelta(days=1)]
    assert not early, early
    instance = deployment.instance()
    failed = [
        [e.message for e in instance.all_logs(r.run_id) if e.level >= 40]
        for r in instance.get_runs()
        if r.status == dg.DagsterRunStatus.FAILURE
    ]
    assert not failed, f"failed runs: {failed}"
