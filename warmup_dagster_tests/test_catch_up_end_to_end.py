"""Catch-up end to end, as deployed: the daemon on a PostgreSQL-backed instance, an SMTP outage
that makes mailboxes miss (their jobs end FAILED), then what they owe re-planned and sent, so
the day ends at its quota: automatically (`catch_up_sensor`), and by hand, with a backfill of
the listed `send_plan` partitions launched through the webserver's GraphQL as the UI launches
it (`launchPartitionBackfill` with the partition names and the asset selection)."""

import contextlib
import io
from collections import Counter
from datetime import UTC, datetime

import dagster as dg
import pytest
from sqlalchemy import func, select

from warmup_dagster.clock import FixedClock, clock_from_settings
from warmup_dagster.crypto import Cipher
from warmup_dagster.db import migrate
from warmup_dagster.db.engine import make_engine
from warmup_dagster.db.models import DailyQuota, JobStatus, WarmupJob
from warmup_dagster.mailboxes.importer import import_mailboxes
from warmup_dagster.planning.owing import owing
from warmup_dagster.queue.states import FINISHED
from warmup_dagster.settings import load_settings
from warmup_dagster.testing.deployment import DagsterDeployment
from warmup_dagster.testing.smtp_server import FaultySmtpServer, closed_port
from warmup_dagster.testing.webserver import DagsterWebserver
from warmup_dagster_tests.conftest import TEST_SECRET
from warmup_dagster_tests.day_sends import at_quota, day_sends
from warmup_dagster_tests.mailboxes.csvdata import csv_text, row

# A Monday's window of five hours from 06:00 UTC at 120x: 150 real seconds. The daemon's
# start, the outage and a backfill's launch take the first hours of it.
START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
MAILBOXES = 4
QUOTA = 6
FAILED_BEFORE_RECOVERY = 3  # the outage lasts until this many jobs have failed

# What the UI's "Launch backfill" sends for an asset's selected partitions.
LAUNCH_BACKFILL = """
mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
  }
}
"""


@pytest.fixture
def app_url(pg_databases, pg_template):
    url = pg_databases.url(pg_databases.create(template=pg_template))
    migrate.upgrade(url)
    return url


def _env(app_url: str, catch_up: bool) -> dict[str, str]:
    return {
        "WARMUP_DATABASE_URL": app_url,
        "WARMUP_SECRET_KEY": TEST_SECRET,
        "WARMUP_CLOCK_START": START.isoformat(),
        "WARMUP_CLOCK_SPEED": "120",
        "WARMUP_SEND_WINDOW_END_HOUR": "11",
        "WARMUP_DAILY_VARIANCE": "0",
        "WARMUP_SCHEDULER_INTERVAL_MS": "1000",
        "WARMUP_CATCH_UP_INTERVAL_SECONDS": "60",
        "WARMUP_CATCH_UP": str(catch_up).lower(),
        "WARMUP_SEND_MAX_ATTEMPTS": "1",  # a refused connection fails the job at once
        # Clock time: the default 30 s is a quarter of a real second at 120x, and a session on
        # a loaded machine took longer, so a send after the outage timed out and, with one
        # attempt, failed: a loss no backfill launched before it re-plans. Ten real seconds.
        "WARMUP_SMTP_TIMEOUT_SECONDS": "1200",
        "WARMUP_SEND_LEASE_SECONDS": "3600",
        # A sender run lives through the whole window, waiting for each due job (caught-up
        # ones too): at 120x the gap between a run's end and the next run's first claim (a
        # sensor tick and a start-up) is 10-30 minutes of clock time, and a run of 3 hours
        # that ended near the window's end left its last jobs to expire ("the window ends
        # within ... minutes") with no window left to re-plan them in.
        "WARMUP_SENDER_RUN_MAX_SECONDS": "21600",
    }


def _import(engine, port: int) -> None:
    rows = [
        row(
            f"box{i}@owner{i}-d{i}.example",
            f"owner{i}",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
            timezone="UTC",
            daily_limit=QUOTA,
            ramp_start=QUOTA,
        )
        for i in range(MAILBOXES)
    ]
    import_mailboxes(
        engine, io.StringIO(csv_text(rows)), cipher=Cipher(TEST_SECRET), clock=FixedClock(START)
    )


def _failed(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).where(WarmupJob.status == JobStatus.FAILED))


def _day(engine) -> tuple[dict[int, int], Counter]:
    return day_sends(engine, START.date())


def _at_quota(engine) -> bool:
    return at_quota(engine, START.date(), MAILBOXES)


def _run_outage(tmp_path, pg_databases, app_url, monkeypatch, catch_up, recover, web=False):
    """Mailboxes point at a port nothing listens on until jobs have failed, then the server
    comes up there; `recover(deployment, engine, env, webserver)` runs once it is up (with
    `web`, a webserver on the deployment, loaded before the daemon starts the clock; else
    None). Returns what the checks need, after the day ended at its quota and the deployment
    was drained."""
    engine = make_engine(app_url)
    port = closed_port()
    _import(engine, port)
    storage = pg_databases.url(pg_databases.create())
    monkeypatch.setenv("WARMUP_DAGSTER_POSTGRES_URL", storage)
    env = _env(app_url, catch_up)
    deployment = DagsterDeployment(tmp_path / "dagster_home", storage, env)
    with contextlib.ExitStack() as stack:
        webserver = (
            stack.enter_context(DagsterWebserver(deployment.home, deployment.env)) if web else None
        )
        stack.enter_context(deployment)
        deployment.wait_for(
            lambda: _failed(engine) >= FAILED_BEFORE_RECOVERY, 180, "jobs failed by the outage"
        )
        with FaultySmtpServer(port=port) as smtp:
            recover(deployment, engine, env, webserver)
            try:
                deployment.wait_for(lambda: _at_quota(engine), 300, "the day at its quota")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\nthe day's plans: {_plans(engine)}") from None
            deployment.drain(
                ("dispatch_sensor", "mailbox_partitions_sensor", "catch_up_sensor"), 120
            )
            received = [r.message["Message-ID"] for r in smtp.received]
    instance = deployment.instance()
    quotas, sent = _day(engine)
    failed = _failed(engine)
    engine.dispose()
    assert failed >= FAILED_BEFORE_RECOVERY
    assert set(quotas.values()) == {QUOTA}
    assert sent == Counter(quotas)  # every mailbox at its quota, none past it
    assert len(received) == len(set(received)) == MAILBOXES * QUOTA  # nothing sent twice
    runs = instance.get_runs()
    broken = [r.job_name for r in runs if r.status == dg.DagsterRunStatus.FAILURE]
    assert not broken, f"failed runs: {broken}"
    return instance, runs


@pytest.mark.daemon
@pytest.mark.slow(170)
def test_the_catch_up_sensor_replans_what_an_smtp_outage_lost(
    tmp_path, pg_databases, app_url, monkeypatch
):
    _, runs = _run_outage(tmp_path, pg_databases, app_url, monkeypatch, True, lambda *_: None)
    catch_ups = [r for r in runs if r.job_name == "catch_up"]
    assert catch_ups
    assert all(r.tags.get("dagster/sensor_name") == "catch_up_sensor" for r in catch_ups)
    keys = [r.tags["dagster/run_key"] for r in catch_ups]
    assert len(keys) == len(set(keys))


@pytest.mark.daemon
@pytest.mark.slow(170)
def test_a_backfill_of_the_listed_partitions_replans_what_an_smtp_outage_lost(
    tmp_path, pg_databases, app_url, monkeypatch
):
    listed: list[str] = []

    def backfill(deployment, engine, env, webserver):
        settings = load_settings(env)
        clock = clock_from_settings(settings, engine)
        recovered = clock.now()
        # every job due before the server came up has ended, so the list is complete
        deployment.wait_for(
            lambda: _unfinished_before(engine, recovered) == 0, 120, "the outage's jobs ended"
        )
        with engine.connect() as conn:
            listed.extend(o.email for o in owing(conn, settings, clock.now()))
        assert listed, "the outage made mailboxes miss"
        result = webserver.graphql(
            LAUNCH_BACKFILL,
            {"params": {"assetSelection": [{"path": ["send_plan"]}], "partitionNames": listed}},
        )
        launched = result["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched

    instance, runs = _run_outage(
        tmp_path, pg_databases, app_url, monkeypatch, False, backfill, web=True
    )
    assert not [r for r in runs if r.job_name == "catch_up"]  # WARMUP_CATCH_UP=false
    (backfill_id,) = {r.tags["dagster/backfill"] for r in runs if "dagster/backfill" in r.tags}
    backfill_runs = [r for r in runs if r.tags.get("dagster/backfill") == backfill_id]
    # no run config: the asset's default config, which re-plans
    assert all(not r.run_config.get("ops") for r in backfill_runs)
    materialized = {
        e.dagster_event.partition
        for r in backfill_runs
        for e in instance.all_logs(r.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    }
    assert materialized == set(listed)


def _unfinished_before(engine, when: datetime) -> int:
    with engine.connect() as conn:
        return conn.scalar(
            select(func.count()).where(
                WarmupJob.scheduled_at < when, WarmupJob.status.not_in(FINISHED)
            )
        )


def _plans(engine) -> str:
    """Each mailbox-day's last plan, and its jobs by status: what a day below quota lacked."""
    with engine.connect() as conn:
        plans = conn.execute(
            select(
                DailyQuota.mailbox_id,
                DailyQuota.quota,
                DailyQuota.kept,
                DailyQuota.planned,
                DailyQuota.shortfall,
                DailyQuota.planned_at,
                DailyQuota.last_slot,
            ).where(DailyQuota.local_date == START.date())
        ).all()
        jobs = conn.execute(
            select(WarmupJob.mailbox_id, WarmupJob.status, func.count())
            .where(WarmupJob.local_date == START.date())
            .group_by(WarmupJob.mailbox_id, WarmupJob.status)
        ).all()
        # a job refused at its claim (expired, over a cap) has no FAILED log row: its error
        # is on the job
        failures = conn.execute(
            select(WarmupJob.mailbox_id, WarmupJob.updated_at, WarmupJob.error)
            .where(WarmupJob.local_date == START.date(), WarmupJob.status == JobStatus.FAILED)
            .order_by(WarmupJob.updated_at)
        ).all()
    by_box: dict[int, dict[str, int]] = {}
    for box, status, n in jobs:
        by_box.setdefault(box, {})[status.value] = n
    lines = []
    for p in plans:
        last = f"{p.last_slot:%H:%M}" if p.last_slot else "none"
        lines.append(
            f"mailbox {p.mailbox_id}: quota {p.quota}, kept {p.kept}, planned {p.planned}, "
            f"shortfall {p.shortfall}, planned at {p.planned_at:%H:%M}, last slot {last}, "
            f"jobs {by_box.get(p.mailbox_id, {})}"
        )
    lines += [f"mailbox {f.mailbox_id} failed at {f.updated_at:%H:%M}: {f.error}" for f in failures]
    return "; ".join(lines)
