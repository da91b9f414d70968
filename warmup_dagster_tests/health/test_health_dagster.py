"""The `mailbox_health` asset and its sensor through Dagster itself, on both databases."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
from sqlalchemy.orm import Session

from warmup_dagster.db.models import JobStatus, Mailbox, Placement
from warmup_dagster.definitions import defs
from warmup_dagster.jobs import health_job
from warmup_dagster.resources import WarmupDatabase
from warmup_dagster.sensors.health import mailbox_health_sensor
from warmup_dagster_tests.conftest import MONDAY_5AM
from warmup_dagster_tests.health.test_store import boxes, mail, refusal


def tick(instance, db_url, cursor=None):
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"warmup_db": WarmupDatabase(database_url=db_url)},
    ) as context:
        return mailbox_health_sensor(context), context.cursor


def at(monkeypatch, when) -> None:
    monkeypatch.setenv("WARMUP_CLOCK_START", when.isoformat())
    monkeypatch.setenv("WARMUP_CLOCK_SPEED", "1")


def test_the_asset_judges_every_mailbox_and_shows_the_unhealthy_ones(
    engine, db_url, cipher, instance, monkeypatch
):
    (a, a_email), (b, _), (c, _) = boxes(engine, cipher)
    with Session(engine) as session, session.begin():
        sa, sb, sc = (session.get_one(Mailbox, i) for i in (a, b, c))
        mail(session, sa, sb, MONDAY_5AM, {Placement.INBOX: 2, Placement.SPAM: 18})
        mail(session, sb, sc, MONDAY_5AM, {Placement.INBOX: 20})
        refusal(session, sc, sa, MONDAY_5AM, 535, JobStatus.RETRY)
    at(monkeypatch, MONDAY_5AM + timedelta(hours=1))
    monkeypatch.setenv("WARMUP_DATABASE_URL", db_url)
    result = defs.resolve_job_def(health_job.name).execute_in_process(instance=instance)
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["mailboxes_judged"] == 3
    assert (metadata["mailboxes_paused"], metadata["mailboxes_watch"]) == (1, 1)
    assert metadata["mailboxes_healthy"] == 1 and metadata["window_spam"] == 18
    table = metadata["not_healthy"]
    assert table.index(a_email) < table.index("WATCH")  # the worst first
    assert "spam rate 90% of 20 placed (paused at 60%)" in table
    assert "1 auth failures (watch at 1)" in table


def test_the_sensor_launches_once_a_period_and_not_with_engagement_off(
    db_url, instance, monkeypatch
):
    monkeypatch.setenv("WARMUP_HEALTH_INTERVAL_SECONDS", "3600")
    at(monkeypatch, MONDAY_5AM + timedelta(minutes=10))
    request, cursor = tick(instance, db_url)
    period = int(MONDAY_5AM.timestamp() // 3600)
    assert request.run_key == f"health-{period}" and cursor == str(period)
    again, _ = tick(instance, db_url, cursor=cursor)
    assert isinstance(again, dg.SkipReason) and "already judged" in again.skip_message
    at(monkeypatch, MONDAY_5AM + timedelta(minutes=61))
    later, _ = tick(instance, db_url, cursor=cursor)
    assert later.run_key == f"health-{period + 1}"
    monkeypatch.setenv("WARMUP_ENGAGE", "false")
    off, _ = tick(instance, db_url, cursor=cursor)
    assert isinstance(off, dg.SkipReason) and "WARMUP_ENGAGE is false" in off.skip_message


def test_the_health_wiring():
    sensor = defs.resolve_sensor_def("mailbox_health_sensor")
    assert sensor.job_name == "judge_health"
    assert sensor.default_status is dg.DefaultSensorStatus.RUNNING
    assert (
        defs.resolve_assets_def("mailbox_health").group_names_by_key[dg.AssetKey("mailbox_health")]
        == "pool"
    )
