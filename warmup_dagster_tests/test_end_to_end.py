"""End to end, as deployed: the Dagster daemon on a PostgreSQL-backed instance plans imported
mailboxes and sends their mail to an SMTP server through its own sensor ticks and run queue,
with no manual step."""

import io
from datetime import UTC, datetime

import dagster as dg
import pytest
from sqlalchemy import func, select

from warmup_dagster.clock import FixedClock
from warmup_dagster.crypto import Cipher
from warmup_dagster.db import migrate
from warmup_dagster.db.engine import make_engine
from warmup_dagster.db.models import JobStatus, SendLog, WarmupJob
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
    failed = [
        (run.job_name, [e.message for e in instance.all_logs(run.run_id) if e.level >= 40])
        for run in runs
        if run.status == dg.DagsterRunStatus.FAILURE
    ]
    assert not failed, f"failed runs: {failed}"
