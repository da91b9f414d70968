"""The engagement sensor: takes delivered mail in and launches engagement runs while
mailboxes have engagement work due."""

import math
from datetime import timedelta

import dagster as dg

from warmup_dagster.engagement import intake
from warmup_dagster.engagement.mailboxes import due_mailboxes
from warmup_dagster.jobs import engage_job
from warmup_dagster.resources import WarmupDatabase
from warmup_dagster.sensors.dispatch import ACTIVE
from warmup_dagster.sensors.timing import real_interval_seconds
from warmup_dagster.settings import load_settings

# Read at load time: a sensor's interval is part of its definition. The setting is clock time.
_SETTINGS = load_settings()
INTERVAL_S = real_interval_seconds(_SETTINGS.engage_interval_seconds, _SETTINGS.clock_speed)
SENSOR_NAME = "engagement_sensor"


@dg.sensor(
    name=SENSOR_NAME,
    job=engage_job,
    minimum_interval_seconds=INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def engagement_sensor(
    context: dg.SensorEvaluationContext, warmup_db: WarmupDatabase
) -> dg.SensorResult | dg.SkipReason:
    """Launches engagement runs while mailboxes have engagement work due, up to
    `WARMUP_ENGAGE_RUN_COUNT` at once, each for up to `WARMUP_ENGAGE_MAILBOXES_PER_RUN`
    mailboxes (never a run per mailbox or per message).

    Ticks every `WARMUP_ENGAGE_INTERVAL_SECONDS` of clock time; `WARMUP_ENGAGE=false` turns it
    off (as does its switch in the UI). Each tick first takes newly delivered mail in
    (`engagement.intake`: idempotent). Never twice: run keys count the ticks that launched, and
    a run leases the mailboxes it takes, so two runs never open sessions on one mailbox.
    """
    settings = warmup_db.settings
    if not settings.engage:
        return dg.SkipReason("WARMUP_ENGAGE is false: engagement is off")
    now = warmup_db.clock.now()
    taken = intake.take_in(warmup_db.engine, settings, now)
    per_run = settings.engage_mailboxes_per_run
    with warmup_db.engine.connect() as conn:
        recheck = timedelta(minutes=settings.engage_recheck_minutes)
        due = len(due_mailboxes(conn, now, per_run * settings.engage_run_count, recheck))
    if not due:
        return dg.SkipReason(f"no mailbox has engagement due ({taken:,} messages taken in)")
    active = context.instance.get_runs_count(
        dg.RunsFilter(job_name=engage_job.name, statuses=ACTIVE)
    )
    launch = min(settings.engage_run_count - active, math.ceil(due / per_run) - active)
    if launch <= 0:
        return dg.SkipReason(f"{due:,} mailboxes due; {active} engagement runs queued or running")
    # A lost cursor restarts after the runs this sensor launched, never reusing a run key.
    launched = context.cursor or context.instance.get_runs_count(
        dg.RunsFilter(tags={"dagster/sensor_name": SENSOR_NAME})
    )
    tick = int(launched) + 1
    context.log.info(f"{due:,} mailboxes due, {taken:,} messages taken in: {launch} runs")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"engage-{tick}-{i}") for i in range(launch)],
        cursor=str(tick),
    )
