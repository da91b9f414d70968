"""Run liveness: a run whose process died is failed, so its place in the run queue is freed.

Dagster's default run launcher starts each run as a process of the code server, and run
monitoring cannot look at such a process: it only ends a run past its `dagster/max_runtime`
tag. A run whose process died (with its machine, with the process group of a daemon killed
with its code server and the runs it launched, by the out-of-memory killer) stays STARTED. A
sender run then held its place in the run queue and counted against WARMUP_WORKER_COUNT in the
dispatch sensor until its max runtime (half an hour by default), with nothing sent meanwhile,
and a planning run, which has no max runtime, held its place for good.

So every run that uses the warmup database beats: the `WarmupDatabase` resource starts a
`Beating` thread that writes the clock's time into `run_beats` every fifth of the limit, and
once more when the run's step ends: between two steps, or between the last one and the run's
end, the row is fresh, never missing. `dead_runs_sensor` fails each STARTED run whose last beat
is older than the limit, and a STARTING or STARTED run that never beat once it has been so
twice as long (its process may still be loading the code); it deletes the beats of the runs
that ended. What a dead sender run held comes
back when its leases run out (WARMUP_SEND_LEASE_SECONDS) and is looked for over IMAP before it
is sent again; a failed planning run is retried by Dagster (`dagster/max_retries`, `run_retries` in
`dagster.yaml`).

The limit is WARMUP_RUN_DEAD_SECONDS of clock time, and at least MIN_REAL_S real seconds: a
process takes real time to start and a beat real time to write, however fast a scaled clock
runs. Dagster's run records are real time (a run's start), so a run that never beat is judged
by real seconds: the limit's, converted with the clock's speed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import dagster as dg
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from warmup_dagster.clock import Clock, RealClock
from warmup_dagster.db.dialect import among, upsert
from warmup_dagster.db.engine import writing
from warmup_dagster.db.models import RunBeat
from warmup_dagster.settings import Settings

# The least real time a run may stay silent before it is judged dead.
MIN_REAL_S = 30.0
# The statuses of a run whose process should be alive. A STARTING run has not beaten yet.
LIVING = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
# Beats per limit: a living run misses four in a row before it is judged dead.
BEATS_PER_LIMIT = 5

_log = logging.getLogger(__name__)


def limit_seconds(settings: Settings) -> float:
    """Clock seconds a run may go without a beat: WARMUP_RUN_DEAD_SECONDS, or MIN_REAL_S real
    seconds if that is more at WARMUP_CLOCK_SPEED."""
    return max(float(settings.run_dead_seconds), MIN_REAL_S * settings.clock_speed)


class Beating:
    """A daemon thread that writes `run_id`'s beat now and every `limit / BEATS_PER_LIMIT`
    clock seconds until `stop()`, which writes a last one. A beat that fails (the database is
    away) is logged and tried again at the next."""

    def __init__(self, engine: Engine, clock: Clock, settings: Settings, run_id: str) -> None:
        self.engine, self.clock, self.run_id = engine, clock, run_id
        self.every_real_s = clock.real_seconds(limit_seconds(settings)) / BEATS_PER_LIMIT
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"beat {run_id}", daemon=True)

    def start(self) -> Beating:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
        self.beat()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self.beat()
            self._stopped.wait(self.every_real_s)

    def beat(self) -> None:
        try:
            self._write()
        except SQLAlchemyError as exc:
            _log.warning(f"run {self.run_id}: no beat written: {exc}")

    def _write(self) -> None:
        with writing(self.engine) as conn:
            conn.execute(
                upsert(conn, RunBeat.__table__, ["run_id"], lambda new: {"beat_at": new.beat_at}),
                {"run_id": self.run_id, "beat_at": self.clock.now()},
            )


@dataclass(frozen=True)
class Dead:
    """A STARTING or STARTED run judged dead, and why."""

    run: dg.DagsterRun
    reason: str


def dead_runs(
    records: Iterable[dg.RunRecord],
    beats: dict[str, datetime],
    clock: Clock,
    settings: Settings,
    real_now: float,
) -> list[Dead]:
    """The runs among `records` (STARTING or STARTED) whose last beat (`beats`, by run id) is
    older than the limit at `clock.now()`, or that never beat though they entered their status
    twice the limit ago (`real_now` is Unix seconds of real time, as Dagster's records are)."""
    limit = limit_seconds(settings)
    now = clock.now()
    dead = []
    for record in records:
        run = record.dagster_run
        beat = beats.get(run.run_id)
        if beat is not None:
            silent = (now - beat).total_seconds()
            if silent > limit:
                reason = f"no beat for {silent:,.0f} clock seconds (the limit is {limit:,.0f})"
                dead.append(Dead(run, reason))
            continue
        # Since its status last changed: to STARTING at its launch, to STARTED at its start.
        waited = real_now - record.update_timestamp.timestamp()
        if waited > 2 * clock.real_seconds(limit):
            status = run.status.value
            dead.append(Dead(run, f"{status} for {waited:,.0f} real seconds, never beat"))
    return dead


def fail_dead_runs(
    instance: dg.DagsterInstance, engine: Engine, clock: Clock, settings: Settings
) -> list[Dead]:
    """Fail every dead STARTING or STARTED run (`dead_runs`) and delete the beats of the runs
    that are neither; returns the runs failed."""
    records = instance.get_run_records(dg.RunsFilter(statuses=LIVING))
    living = [r.dagster_run.run_id for r in records]
    with engine.connect() as conn:
        beats: dict[str, datetime] = {}
        for condition in among(conn, RunBeat.run_id, living):
            query = select(RunBeat.run_id, RunBeat.beat_at).where(condition)
            beats.update((run_id, at) for run_id, at in conn.execute(query))
    # Wall time: Dagster's run records are, whatever clock the project runs on.
    dead = dead_runs(records, beats, clock, settings, RealClock().now().timestamp())
    for d in dead:
        instance.report_run_failed(
            d.run, f"Marked failed by dead_runs_sensor: {d.reason}; its process is gone."
        )
    _forget(engine, clock, settings, alive=set(living) - {d.run.run_id for d in dead})
    return dead


def _forget(engine: Engine, clock: Clock, settings: Settings, alive: set[str]) -> None:
    """Delete the beats of runs not alive, once older than the limit (a beat written after
    the run list was read belongs to a run just started)."""
    old = clock.now() - timedelta(seconds=limit_seconds(settings))
    with writing(engine) as conn:
        stale = [
            run_id
            for run_id in conn.scalars(select(RunBeat.run_id).where(RunBeat.beat_at < old))
            if run_id not in alive
        ]
        for condition in among(conn, RunBeat.run_id, stale):
            conn.execute(delete(RunBeat).where(condition))


def describe(dead: Sequence[Dead]) -> str:
    """The sensor's tick: which runs it failed, or that none was dead."""
    if not dead:
        return "every starting or started run beats"
    return "failed " + "; ".join(f"{d.run.job_name} run {d.run.run_id}: {d.reason}" for d in dead)
