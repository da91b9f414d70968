"""send_plan, the partition sync sensor and the daily planning sensor, through Dagster itself."""

from datetime import date

import dagster as dg
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from warmup_dagster.assets import send_plan as send_plan_module
from warmup_dagster.assets.send_plan import send_plan
from warmup_dagster.db.models import Mailbox, WarmupJob
from warmup_dagster.jobs import (
    QUIET_CONSOLE,
    RANGE_END_TAG,
    RANGE_START_TAG,
    plan_job,
    plan_range_requests,
)
from warmup_dagster.resources import WarmupDatabase, WarmupSecrets
from warmup_dagster.sensors.partitions import mailbox_partitions_sensor
from warmup_dagster.sensors.planning import daily_plan_sensor, pass_due
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
    # It adds new partitions itself; removals are requests, applied here as the daemon does.
    for request in result.dynamic_partitions_requests:
        assert isinstance(request, dg.DeleteDynamicPartitionsRequest)
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


def _range_run(instance, resources, keys):
    """One run over the partitions `keys` (consecutive), as the daily pass launches them."""
    instance.add_dynamic_partitions("mailboxes", keys)
    return dg.materialize(
        [send_plan],
        resources=resources,
        instance=instance,
        tags={RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]},
    )


def test_send_plan_range_run_plans_every_mailbox_in_one_run(instance, resources, engine, pool):  # noqa: F811
    result = _range_run(instance, resources, pool[:10])
    assert result.success
    events = result.get_asset_materialization_events()
    assert sorted(e.materialization.partition for e in events) == sorted(pool[:10])
    planned = {
        e.materialization.partition: e.materialization.metadata["jobs_written"].value
        for e in events
    }
    assert _jobs_by_sender(engine) == {k: v for k, v in planned.items() if v}
    assert len(instance.get_runs()) == 1
    totals = {k: v.value for k, v in events[0].materialization.metadata.items() if "run_" in k}
    assert totals["run_mailboxes"] == 10 and totals["run_planned"] == sum(planned.values())


def test_a_big_range_run_gives_each_partition_the_run_totals(
    instance,
    resources,
    engine,
    pool,  # noqa: F811
    monkeypatch,
):
    monkeypatch.setattr(send_plan_module, "PER_PARTITION_METADATA", 5)
    result = _range_run(instance, resources, pool[:10])
    events = result.get_asset_materialization_events()
    assert len(events) == 10
    metadata = [{k: v.value for k, v in e.materialization.metadata.items()} for e in events]
    assert all("jobs_written" not in m for m in metadata)  # no per-partition figures
    assert len({tuple(sorted(m.items())) for m in metadata}) == 1  # the same totals on each
    assert metadata[0]["run_mailboxes"] == 10
    assert metadata[0]["run_planned"] == sum(_jobs_by_sender(engine).values()) > 0


def _daily(instance, resources, cursor=None):
    with dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor) as context:
        return daily_plan_sensor(context)


def test_daily_pass_requests_range_runs_once_per_clock_day(instance, resources):
    keys = [f"m{i:03d}@x{i}.example" for i in range(20)]
    empty = _daily(instance, resources)  # no mailboxes: nothing to run, the day is done
    assert empty.run_requests == [] and empty.cursor == "2026-03-02"
    instance.add_dynamic_partitions("mailboxes", keys)
    result = _daily(instance, resources, cursor="2026-03-01")  # the clock's day is 2 March
    (request,) = result.run_requests
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (keys[0], keys[-1])
    assert request.run_key == "daily-2026-03-02-0"
    assert request.run_config["ops"]["send_plan"]["config"] == {"replan": False}
    assert result.cursor == "2026-03-02"
    assert isinstance(_daily(instance, resources, cursor=result.cursor), dg.SkipReason)
    assert pass_due("2026-03-02", date(2026, 3, 3))
    assert pass_due("2026-03-04", date(2026, 3, 3))  # a clock moved back plans again
    assert not pass_due("2026-03-03", date(2026, 3, 3))

    requests = plan_range_requests(keys, "daily-x", replan=False, batch=7)
    assert [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in requests] == [
        (keys[0], keys[6]),
        (keys[7], keys[13]),
        (keys[14], keys[19]),
    ]
    assert len({r.run_key for r in requests}) == 3


def test_a_planning_run_prints_no_console_line_per_partition(instance, resources, pool, capfd):  # noqa: F811
    """The run worker's console gets the run's own lines; each partition's event is stored."""
    instance.add_dynamic_partitions("mailboxes", pool)
    defs = dg.Definitions(assets=[send_plan], jobs=[plan_job], resources=resources)
    job = defs.resolve_job_def(plan_job.name)
    (request,) = plan_range_requests(pool, "console", replan=True)  # as the sensors ask
    assert request.run_config["loggers"] == QUIET_CONSOLE["loggers"]

    def run(run_config: dict) -> tuple[list[str], str]:
        capfd.readouterr()
        result = job.execute_in_process(run_config=run_config, tags=request.tags, instance=instance)
        assert result.success
        console = capfd.readouterr()
        stored = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        assert sorted(e.dagster_event.partition for e in stored) == sorted(pool)  # all 20
        lines = (console.out + console.err).splitlines()
        return [line for line in lines if "DEBUG" in line and "Materialized value" in line], (
            console.out + console.err
        )

    # Dagster's default: a DEBUG line for every partition (what the run config turns off)
    flooded, _ = run({"ops": request.run_config["ops"]})
    assert len(flooded) == len(pool) == 20
    quiet, console = run(request.run_config)
    assert quiet == []
    assert "planned " in console and f"for {len(pool)} mailboxes" in console  # INFO still shows
