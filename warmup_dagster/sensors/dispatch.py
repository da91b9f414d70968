"""The dispatch sensor: launches sender runs while due mail waits."""

import math

import dagster as dg

from warmup_dagster import queue
from warmup_dagster.jobs import send_job
from warmup_dagster.resources import WarmupDatabase
from warmup_dagster.sensors.timing import real_interval_seconds
from warmup_dagster.settings import load_settings

# Read at load time: a sensor's interval is part of its definition. The setting is clock time.
_SETTINGS = load_settings()
INTERVAL_S = real_interval_seconds(_SETTINGS.scheduler_interval_ms / 1000, _SETTINGS.clock_speed)
SENSOR_NAME = "dispatch_sensor"
ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,  # may still be sending; the run queue counts it too
]


@dg.sensor(
    name=SENSOR_NAME,
    job=send_job,
    minimum_interval_seconds=INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def dispatch_sensor(
    context: dg.SensorEvaluationContext, warmup_db: WarmupDatabase
) -> dg.SensorResult | dg.SkipReason:
    """Launches sender runs while due jobs exist, up to `WARMUP_WORKER_COUNT` at once.

    Ticks every `WARMUP_SCHEDULER_INTERVAL_MS` of clock time (see `sensors.timing`).

    One run per `WARMUP_JOBS_PER_SCHEDULER_RUN` due jobs, counting the sender runs already
    queued or running. The run queue (`dagster.yaml`, tag `warmup/role=sender`) holds the limit
    too, so the UI shows why a run waits. Run keys count the ticks that launched, so a tick
    evaluated twice cannot launch twice.
    """
    settings = warmup_db.settings
    per_run = settings.jobs_per_scheduler_run
    cap = per_run * settings.worker_count
    due = queue.due_count(warmup_db.engine, warmup_db.clock.now(), cap)
    if not due:
        return dg.SkipReason("no mail is due")
    active = context.instance.get_runs_count(dg.RunsFilter(job_name=send_job.name, statuses=ACTIVE))
    launch = min(settings.worker_count - active, math.ceil(due / per_run) - active)
    if launch <= 0:
        return dg.SkipReason(f"{due:,} jobs due; {active} sender runs queued or running")
    # A lost cursor restarts after the runs this sensor launched, never reusing a run key.
    launched = context.cursor or context.instance.get_runs_count(
        dg.RunsFilter(tags={"dagster/sensor_name": SENSOR_NAME})
    )
    tick = int(launched) + 1
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"send-{tick}-{i}") for i in range(launch)],
        cursor=str(tick),
    )
