"""Retention through Dagster: the sensor waits for a date's fill_rate, its job prunes the
date, and the date's figures stay readable (and are not recomputed) after its rows are gone."""

import dagster as dg
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from warmup_dagster.assets.fill_rate import fill_rate, recorded_dates
from warmup_dagster.db.models import SendLog, WarmupJob
from warmup_dagster.definitions import defs
from warmup_dagster.resources import WarmupDatabase
from warmup_dagster.sensors.retention import retention_sensor
from warmup_dagster_tests.retention.history import NOW, OLD, RECENT

OLD_KEY = OLD.isoformat()


def use_clock(monkeypatch, db_url) -> None:
    """The runs' and sensors' clock at `NOW`, real speed; the test's database."""
    monkeypatch.setenv("WARMUP_CLOCK_START", NOW.isoformat())
    monkeypatch.setenv("WARMUP_CLOCK_SPEED", "1")
    monkeypatch.setenv("WARMUP_DATABASE_URL", db_url)


def tick(instance, db_url, cursor=None):
    resources = {"warmup_db": WarmupDatabase(database_url=db_url)}
    with dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor) as context:
        return retention_sensor(context)


def skipped(result) -> str:
    """Why a tick launched nothing (a SensorResult carries it as its `skip_reason`)."""
    reason = result.skip_reason if isinstance(result, dg.SensorResult) else result
    return reason.skip_message


def rows_of(engine, day):
    with Session(engine) as session:
        return tuple(
            session.scalar(select(func.count()).select_from(t).where(t.local_date == day))
            for t in (WarmupJob, SendLog)
        )


def materialize_old_day(instance, db_url):
    return dg.materialize(
        [fill_rate],
        resources={"warmup_db": WarmupDatabase(database_url=db_url)},
        partition_key=OLD_KEY,
        instance=instance,
        raise_on_error=False,
    )


def test_a_date_waits_for_its_fill_rate_then_is_pruned_and_its_figures_stay(
    history, engine, db_url, instance, monkeypatch
):
    use_clock(monkeypatch, db_url)
    waiting = tick(instance, db_url)
    assert waiting.run_requests == []
    assert skipped(waiting) == (
        "nothing before 2026-03-09 to prune; 1 dates wait for their fill_rate: 2026-03-02"
    )
    assert waiting.cursor == RECENT.isoformat()
    assert skipped(tick(instance, db_url, cursor=waiting.cursor)).startswith(
        "2026-04-13 is looked at"
    )

    # the fill_rate of the old date, computed while its rows are all there
    assert materialize_old_day(instance, db_url).success
    assert recorded_dates(instance, [OLD, RECENT]) == {OLD}
    [request] = tick(instance, db_url).run_requests
    assert request.run_key == "prune-2026-04-13"

    before = rows_of(engine, RECENT)
    result = defs.resolve_job_def("prune_history").execute_in_process(instance=instance)
    assert result.success
    [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = {k: v.value for k, v in output.event_specific_data.metadata.items()}
    assert (metadata["jobs"], metadata["log_rows"], metadata["quotas"]) == (5, 6, 2)
    assert rows_of(engine, OLD) == (2, 2)  # the jobs still owed or in flight, their attempts
    assert rows_of(engine, RECENT) == before

    # the pruned date's figures are still on record in Dagster
    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=fill_rate.key, asset_partitions=[OLD_KEY]), limit=5
    ).records
    figures = record.asset_materialization.metadata
    # four sends of the real Sender and the orphaned log row's; one 550
    assert (figures["sent"].value, figures["quota"].value, figures["failed"].value) == (5, 10, 1)
    # and are not overwritten by what is left of its rows
    again = materialize_old_day(instance, db_url)
    assert not again.success
    [failure] = [e for e in again.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "2026-03-02 is past retention" in str(failure.event_specific_data.error)
    assert (
        len(
            instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=fill_rate.key, asset_partitions=[OLD_KEY]), limit=5
            ).records
        )
        == 1
    )


def test_without_the_fill_rate_requirement_the_sensor_launches_at_once(
    history, db_url, instance, monkeypatch
):
    use_clock(monkeypatch, db_url)
    monkeypatch.setenv("WARMUP_RETENTION_REQUIRES_FILL_RATE", "false")
    [request] = tick(instance, db_url).run_requests
    assert request.run_key == "prune-2026-04-13"
    monkeypatch.setenv("WARMUP_RETENTION_DAYS", "0")
    off = tick(instance, db_url)
    assert off.run_requests == [] and skipped(off) == "retention is off (WARMUP_RETENTION_DAYS=0)"


def test_a_dry_run_through_dagster_deletes_nothing(history, engine, db_url, instance, monkeypatch):
    use_clock(monkeypatch, db_url)
    monkeypatch.setenv("WARMUP_RETENTION_REQUIRES_FILL_RATE", "false")
    before = rows_of(engine, OLD)
    result = defs.resolve_job_def("prune_history").execute_in_process(
        instance=instance,
        run_config={"ops": {"prune_past_retention": {"config": {"dry_run": True}}}},
    )
    assert result.success
    assert rows_of(engine, OLD) == before == (7, 8)
