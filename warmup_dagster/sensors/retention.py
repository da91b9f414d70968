"""Retention on the clock: a prune of the history past retention once each UTC day."""

from datetime import date

import dagster as dg

from warmup_dagster.assets.fill_rate import retention_release
from warmup_dagster.jobs import prune_job
from warmup_dagster.queue.retention import cutoff, old_dates
from warmup_dagster.resources import WarmupDatabase
from warmup_dagster.sensors.timing import real_interval_seconds

# How often, in clock time, the sensor looks whether a new UTC day has begun.
CHECK_EVERY_S = 600


def look_due(cursor: str | None, today: date) -> bool:
    """Whether `today` (UTC, clock time) has not been looked at yet; `cursor` is the last day
    looked at (a clock moved back looks again: a prune deletes nothing twice)."""
    return cursor != today.isoformat()


@dg.sensor(
    job=prune_job,
    minimum_interval_seconds=real_interval_seconds(CHECK_EVERY_S),
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def retention_sensor(
    context: dg.SensorEvaluationContext, warmup_db: WarmupDatabase
) -> dg.SensorResult | dg.SkipReason:
    """Once each UTC day of clock time, launches a `prune_history` run if a local date past
    `WARMUP_RETENTION_DAYS` may be pruned (with `WARMUP_RETENTION_REQUIRES_FILL_RATE`, once its
    `fill_rate` is materialized); the reason it launched nothing shows in the tick otherwise.

    The day is the project's clock's: under a scaled clock every virtual day gets its look.
    The look costs an index probe per old date and table, never a scan of the history.
    """
    now = warmup_db.clock.now()
    today = now.date()
    if not look_due(context.cursor, today):
        return dg.SkipReason(f"{today} is looked at; the next look is at 00:00 UTC")
    settings = warmup_db.settings
    first_kept = cutoff(now, settings.retention_days)
    if first_kept is None:
        return dg.SensorResult(
            skip_reason="retention is off (WARMUP_RETENTION_DAYS=0)", cursor=today.isoformat()
        )
    dates = old_dates(warmup_db.engine, first_kept)
    release = retention_release(settings, context.instance)
    released = set(dates) if release is None else release(dates)
    if not released:
        waiting = sorted(set(dates) - released)
        reason = f"nothing before {first_kept} to prune" + (
            f"; {len(waiting)} dates wait for their fill_rate: {', '.join(map(str, waiting))}"
            if waiting
            else ""
        )
        return dg.SensorResult(skip_reason=reason, cursor=today.isoformat())
    context.log.info(f"prune of {len(released)} dates before {first_kept}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"prune-{today}")], cursor=today.isoformat()
    )
