"""send_plan, the partition sync sensor and the daily schedule, through Dagster itself."""

from datetime import UTC, datetime

import dagster as dg
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from warmup_dagster.assets.send_plan import send_plan
from warmup_dagster.db.models import Mailbox, WarmupJob
from warmup_dagster.jobs import RANGE_END_TAG, RANGE_START_TAG, plan_range_requests
from warmup_dagster.resources import WarmupDatabase, WarmupSecrets
from warmup_dagster.schedules import daily_plan_schedule
from warmup_dagster.sensors.partitions import mailbox_partitions_sensor
from warmup_dagster_tests.conftest import TEST_SECRET
from warmup_dagster_tests.planning.conftest import pool  # noqa: F401 - fixture


@pytest.fixture
def resources(db_url, monkeypatch):
    # the clock of these runs: 05:00 UTC on Monday 2 March 2026, the day the pool was imported
    monkeypatch.setenv("WARMUP_CLOCK_START", "2026-03-02T05:00:00+00:00")
    monkeypatch.setenv("WARMUP_CLOCK_SPEED", "1")
    return {
        "warmup_db": WarmupDatabase(database_url=db_url),
        "warmup_secrets": WarmupSecrets(secret_key=TEST_SECRET),
    }


def _jobs_by_sender(engine) -> dict[str, int]:
    with Session(engine) as s:
        rows = s.execute(
            select(Mailbox.email, func.count())
            .join(WarmupJob, WarmupJob.mailbox_id == Mailbox.id)
            .group_by(Mailbox.email)
        ).all()
    return dict(rows)


def _sync(instance, resources) -> dg.SensorResult:
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        result = mailbox_partitions_sensor(context)
    for request in result.dynamic_partitions_requests:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
    return result


def test_sync_sensor_adds_plans_and_removes_partitions(instance, resources, engine, pool):  # noqa: F811
    result = _sync(instance, resources)
    assert instance.get_dynamic_partitions("mailboxes") == pool  # in mailbox id order
    (request,) = result.run_requests  # the new mailboxes are planned in one range run
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (pool[0], pool[-1])
    assert request.run_config["ops"]["send_plan"]["config"] == {"replan": False}

    with dg.build_sensor_context(
        instance=instance, resources=resources, cursor=result.cursor
    ) as context:
        assert isinstance(mailbox_partitions_sensor(context), dg.SkipReason)

    with Session(engine) as s, s.begin():
        s.execute(delete(Mailbox).where(Mailbox.email == pool[3]))
    result = _sync(instance, resources)
    assert pool[3] not in instance.get_dynamic_partitions("mailboxes")
    assert result.run_requests == []


def test_send_plan_materializes_one_partition_with_metadata(instance, resources, engine, pool):  # noqa: F811
    instance.add_dynamic_partitions("mailboxes", pool)
    result = dg.materialize(
        [send_plan], resources=resources, partition_key=pool[5], instance=instance
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert event.materialization.partition == pool[5]
    assert metadata["planned"] == metadata["quota"] > 0
    assert metadata["shortfall"] == 0 and metadata["already_sent"] == 0
    assert metadata["first_slot"] <= metadata["last_slot"]
    assert _jobs_by_sender(engine) == {pool[5]: metadata["jobs_written"]}

    again = dg.materialize(
        [send_plan], resources=resources, partition_key=pool[5], instance=instance
    )
    assert again.success  # a rerun of the partition replaces, never adds
    assert _jobs_by_sender(engine) == {pool[5]: metadata["jobs_written"]}


def test_send_plan_range_run_plans_every_mailbox_in_one_run(instance, resources, engine, pool):  # noqa: F811
    instance.add_dynamic_partitions("mailboxes", pool)
    result = dg.materialize(
        [send_plan],
        resources=resources,
        instance=instance,
        tags={RANGE_START_TAG: pool[0], RANGE_END_TAG: pool[9]},
    )
    assert result.success
    events = result.get_asset_materialization_events()
    assert sorted(e.materialization.partition for e in events) == sorted(pool[:10])
    planned = {
        e.materialization.partition: e.materialization.metadata["jobs_written"].value
        for e in events
    }
    assert _jobs_by_sender(engine) == {k: v for k, v in planned.items() if v}
    assert len(instance.get_runs()) == 1


def test_daily_schedule_requests_range_runs_not_a_run_per_mailbox(instance):
    keys = [f"m{i:03d}@x{i}.example" for i in range(20)]
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=datetime(2026, 3, 2, tzinfo=UTC)
    )
    assert isinstance(daily_plan_schedule(context), dg.SkipReason)
    instance.add_dynamic_partitions("mailboxes", keys)
    (request,) = daily_plan_schedule(context)
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (keys[0], keys[-1])
    assert request.run_key == "daily-2026-03-02-0"

    requests = plan_range_requests(keys, "daily-x", replan=False, batch=7)
    assert [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in requests] == [
        (keys[0], keys[6]),
        (keys[7], keys[13]),
        (keys[14], keys[19]),
    ]
    assert len({r.run_key for r in requests}) == 3
