"""Mailbox health on the clock: a `mailbox_health` materialization every
`WARMUP_HEALTH_INTERVAL_SECONDS` of clock time."""

import dagster as dg

from warmup_dagster.jobs import health_job
from warmup_dagster.resources import WarmupDatabase
from warmup_dagster.sensors.timing import real_interval_seconds
from warmup_dagster.settings import load_settings

# Read at load time: a sensor's interval is part of its definition. The setting is clock time.
_SETTINGS = load_settings()
# How often, in clock time, the sensor looks whether a new period began.
LOOK_EVERY_S = 60


@dg.sensor(
    job=health_job,
    minimum_interval_seconds=real_interval_seconds(
        min(LOOK_EVERY_S, _SETTINGS.health_interval_seconds), _SETTINGS.clock_speed
    ),
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def mailbox_health_sensor(
    context: dg.SensorEvaluationContext, warmup_db: WarmupDatabase
) -> dg.RunRequest | dg.SkipReason:
    """Judges every mailbox's health once each `WARMUP_HEALTH_INTERVAL_SECONDS` of clock time
    (run key `health-<period>`: a tick evaluated twice, or again within the period, launches
    nothing twice). Health comes from engagement's placements, so `WARMUP_ENGAGE=false` turns
    it off too.
    """
    settings = warmup_db.settings
    if not settings.engage:
        return dg.SkipReason("WARMUP_ENGAGE is false: engagement, and health with it, is off")
    now = warmup_db.clock.now()
    period = int(now.timestamp() // settings.health_interval_seconds)
    if context.cursor == str(period):
        return dg.SkipReason(f"health already judged in this period ({period})")
    context.update_cursor(str(period))
    return dg.RunRequest(run_key=f"health-{period}")
