"""Run liveness (`warmup_dagster.liveness`): runs beat while they run, and the runs whose beats
stopped, or never came, are failed; on both databases, with Dagster's own run storage."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from sqlalchemy import select

from warmup_dagster.clock import FixedClock
from warmup_dagster.db.engine import writing
from warmup_dagster.db.models import RunBeat
from warmup_dagster.liveness import (
    MIN_REAL_S,
    Beating,
    dead_runs,
    describe,
    fail_dead_runs,
    limit_seconds,
)
from warmup_dagster.resources import WarmupDatabase
from warmup_dagster.settings import Settings, load_settings

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REAL_NOW = 1_800_000_000.0  # Unix seconds of the records' wall clock


def _settings(**values: object) -> Settings:
    return load_settings({f"WARMUP_{k.upper()}": str(v) for k, v in values.items()})


def _record(status: dg.DagsterRunStatus, since: float, run_id: str) -> dg.RunRecord:
    """A run record whose status last changed `since` real seconds before REAL_NOW."""
    changed = datetime.fromtimestamp(REAL_NOW - since, UTC)
    run = dg.DagsterRun(job_name="send_mail", run_id=run_id, status=status)
    return dg.RunRecord(
        storage_id=1,
        dagster_run=run,
        create_timestamp=changed,
        update_timestamp=changed,
        start_time=changed.timestamp(),
    )


def test_the_limit_is_the_setting_in_clock_time_and_never_under_thirty_real_seconds():
    assert limit_seconds(_settings(run_dead_seconds=300)) == 300
    # at 60x, 300 clock seconds are 5 real seconds: the floor is 30 real, 1,800 clock seconds
    assert limit_seconds(_settings(run_dead_seconds=300, clock_speed=60)) == MIN_REAL_S * 60
    assert limit_seconds(_settings(run_dead_seconds=7200, clock_speed=60)) == 7200


def test_a_run_is_dead_when_its_beat_is_older_than_the_limit_or_it_never_beat_for_twice_it():
    settings = _settings(run_dead_seconds=300)
    clock = FixedClock(NOW)
    started, starting = dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING
    records = [
        _record(started, 3600, "beating"),
        _record(started, 3600, "silent"),
        _record(started, 599, "new"),  # no beat yet, within twice the limit
        _record(started, 601, "never"),
        _record(starting, 601, "stuck-starting"),
    ]
    beats = {
        "beating": NOW - timedelta(seconds=299),
        "silent": NOW - timedelta(seconds=301),
    }
    dead = dead_runs(records, beats, clock, settings, REAL_NOW)
    assert {d.run.run_id: d.reason for d in dead} == {
        "silent": "no beat for 301 clock seconds (the limit is 300)",
        "never": "STARTED for 601 real seconds, never beat",
        "stuck-starting": "STARTING for 601 real seconds, never beat",
    }
    assert describe(dead).startswith("failed send_mail run silent: no beat for 301")
    assert describe([]) == "every starting or started run beats"


def test_a_never_beaten_run_is_judged_in_real_seconds_converted_from_the_clocks_limit():
    # at 120x the limit is the floor, 30 real seconds (3,600 clock): twice that is 60 real
    settings = _settings(run_dead_seconds=300, clock_speed=120)
    clock = FixedClock(NOW)
    clock.speed = 120
    records = [_record(dg.DagsterRunStatus.STARTED, s, f"run{s}") for s in (59, 61)]
    assert [d.run.run_id for d in dead_runs(records, {}, clock, settings, REAL_NOW)] == ["run61"]


@pytest.fixture
def settings() -> Settings:
    return _settings(run_dead_seconds=300)


def _add_run(instance, run_id: str, status: dg.DagsterRunStatus) -> None:
    instance.add_run(dg.DagsterRun(job_name="send_mail", run_id=run_id, status=status))


def _beat(engine, run_id: str, at: datetime) -> None:
    with writing(engine) as conn:
        conn.execute(RunBeat.__table__.insert(), {"run_id": run_id, "beat_at": at})


def _beats(engine) -> dict[str, datetime]:
    with engine.connect() as conn:
        return dict(conn.execute(select(RunBeat.run_id, RunBeat.beat_at)).all())


def test_dead_runs_are_failed_in_dagster_and_the_beats_of_ended_runs_forgotten(
    instance, engine, settings
):
    clock = FixedClock(NOW)
    _add_run(instance, "alive", dg.DagsterRunStatus.STARTED)
    _add_run(instance, "dead", dg.DagsterRunStatus.STARTED)
    _add_run(instance, "ended", dg.DagsterRunStatus.SUCCESS)
    _beat(engine, "alive", NOW - timedelta(seconds=10))
    _beat(engine, "dead", NOW - timedelta(seconds=400))
    _beat(engine, "ended", NOW - timedelta(seconds=400))  # its last beat, left for the sensor

    failed = fail_dead_runs(instance, engine, clock, settings)

    assert [d.run.run_id for d in failed] == ["dead"]
    assert instance.get_run_by_id("dead").status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id("alive").status == dg.DagsterRunStatus.STARTED
    (event,) = instance.all_logs("dead", of_type=dg.DagsterEventType.RUN_FAILURE)
    assert "dead_runs_sensor: no beat for 400 clock seconds" in event.message
    assert set(_beats(engine)) == {"alive"}
    # the next look fails nothing more
    assert fail_dead_runs(instance, engine, clock, settings) == []


def test_a_beat_is_written_at_once_kept_fresh_and_written_once_more_at_stop(engine, settings):
    clock = FixedClock(NOW)
    beating = Beating(engine, clock, settings, "run-1")
    beating.every_real_s = 0.05
    beating.start()
    try:
        _wait(lambda: "run-1" in _beats(engine))
        clock.advance(seconds=60)
        _wait(lambda: _beats(engine).get("run-1") == NOW + timedelta(seconds=60))
    finally:
        beating.every_real_s = 3600  # no beat of the thread's own from here on
        clock.advance(seconds=60)
        beating.stop()
    # the last beat is stop()'s: a step's end leaves no gap before the run's end or next step
    assert _beats(engine) == {"run-1": NOW + timedelta(seconds=120)}


def _wait(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.02)


def test_a_run_using_the_database_beats_while_it_runs_and_not_after(db_url, engine, monkeypatch):
    monkeypatch.setenv("WARMUP_CLOCK_SPEED", "1")
    seen: list[dict] = []

    @dg.op
    def look(context, warmup_db: WarmupDatabase) -> None:
        _wait(lambda: context.run_id in _beats(warmup_db.engine))
        seen.append(_beats(warmup_db.engine))

    @dg.job
    def beating_job() -> None:
        look()

    result = beating_job.execute_in_process(
        resources={"warmup_db": WarmupDatabase(database_url=db_url)}
    )
    assert result.success
    assert list(seen[0]) == [result.run_id]
    # its last beat stays until dead_runs_sensor sees the run ended and the beat old
    assert list(_beats(engine)) == [result.run_id]
