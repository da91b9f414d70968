"""The engagement sensor and the engage job through Dagster itself, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster.db.models import Engagement, Placement
from warmup_dagster.definitions import defs
from warmup_dagster.jobs import ROLE_TAG, engage_job
from warmup_dagster.resources import WarmupDatabase, WarmupSecrets
from warmup_dagster.sensors.engagement import engagement_sensor
from warmup_dagster.testing.imap_server import DovecotServer
from warmup_dagster_tests.conftest import TEST_SECRET
from warmup_dagster_tests.engagement.test_faults import deliver, two_boxes
from warmup_dagster_tests.test_sending_dagster import add_run

NINE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def tick(instance, db_url, cursor=None):
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"warmup_db": WarmupDatabase(database_url=db_url)},
    ) as context:
        return engagement_sensor(context)


def clock_at(monkeypatch, when: datetime) -> None:
    """The clock WarmupDatabase reads at setup: from `when`, at wall speed."""
    monkeypatch.setenv("WARMUP_CLOCK_START", when.isoformat())
    monkeypatch.setenv("WARMUP_CLOCK_SPEED", "1")


def test_the_sensor_takes_mail_in_and_launches_runs_once_it_is_due(
    engine, db_url, cipher, instance, monkeypatch
):
    monkeypatch.setenv("WARMUP_ENGAGE_LOOK_DELAY_MIN", "5")
    monkeypatch.setenv("WARMUP_ENGAGE_LOOK_DELAY_MAX", "10")
    monkeypatch.setenv("WARMUP_ENGAGE_RUN_COUNT", "2")
    with DovecotServer() as dovecot:
        sender, recipient = two_boxes(engine, cipher, dovecot)
        deliver(engine, dovecot, sender, recipient, n=3)
    clock_at(monkeypatch, NINE + timedelta(minutes=1))
    skipped = tick(instance, db_url)
    assert isinstance(skipped, dg.SkipReason) and "3 messages taken in" in skipped.skip_message
    with Session(engine) as session:
        assert session.scalar(select(Engagement).limit(1)).placement is Placement.PENDING

    clock_at(monkeypatch, NINE + timedelta(minutes=11))
    result = tick(instance, db_url)
    # two mailboxes due (the recipient, and the sender's copies): one run takes both
    assert [r.run_key for r in result.run_requests] == ["engage-1-0"]
    assert result.cursor == "1"
    # while that run is queued, no more; the next launch has new keys
    add_run(instance, dg.DagsterRunStatus.QUEUED, engage_job)
    busy = tick(instance, db_url, cursor="1")
    assert isinstance(busy, dg.SkipReason) and "1 engagement runs" in busy.skip_message

    monkeypatch.setenv("WARMUP_ENGAGE", "false")
    off = tick(instance, db_url, cursor="1")
    assert isinstance(off, dg.SkipReason) and "WARMUP_ENGAGE is false" in off.skip_message


def test_the_engage_job_handles_the_due_mailboxes_in_one_run(
    engine, db_url, cipher, instance, monkeypatch
):
    monkeypatch.setenv("WARMUP_ENGAGE_LOOK_DELAY_MIN", "1")
    monkeypatch.setenv("WARMUP_ENGAGE_LOOK_DELAY_MAX", "2")
    with DovecotServer() as dovecot:
        sender, recipient = two_boxes(engine, cipher, dovecot)
        ids = deliver(engine, dovecot, sender, recipient, n=2)
        clock_at(monkeypatch, NINE + timedelta(minutes=5))
        result = engage_job.execute_in_process(
            resources={
                "warmup_db": WarmupDatabase(database_url=db_url),
                "warmup_secrets": WarmupSecrets(secret_key=TEST_SECRET),
            },
            instance=instance,
        )
        assert result.success
        [output] = [e for e in result.events_for_node("engage_mailboxes") if e.is_successful_output]
        metadata = {k: v.value for k, v in output.step_output_data.metadata.items()}
        assert metadata["mailboxes"] == 2 and metadata["taken in"] == 2
        assert metadata["inbox"] == 2 and metadata["filed"] == 2
        assert metadata["sent copies filed"] == 2
        assert sorted(m.message_id for m in dovecot.messages("rcpt@r.example", "Warmup")) == sorted(
            ids
        )


def test_the_engagement_wiring():
    sensor = defs.resolve_sensor_def("engagement_sensor")
    assert sensor.job_name == "engage"
    assert sensor.default_status is dg.DefaultSensorStatus.RUNNING
    job = defs.resolve_job_def("engage")
    assert job.tags[ROLE_TAG] == "engager"
