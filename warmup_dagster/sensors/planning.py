"""Daily planning on the clock: a pass over every mailbox once each UTC day of clock time."""

from datetime import date

import dagster as dg

from warmup_dagster.jobs import plan_job, plan_range_requests
from warmup_dagster.partitions import mailbox_partitions
from warmup_dagster.resources import WarmupDatabase
from warmup_dagster.sensors.timing import real_interval_seconds

# How often, in clock time, the sensor looks whether a new UTC day has begun.
CHECK_EVERY_S = 60


def pass_due(cursor: str | None, today: date) -> bool:
    """Whether the daily pass of `today` (UTC, clock time) is still to be launched.

    `cursor` is the day of the last pass launched. A clock moved back (a new anchor) plans
    again: the pass only fills days that have no plan, so repeating one is safe.
    """
    return cursor != today.isoformat()


@dg.sensor(
    job=plan_job,
    minimum_interval_seconds=real_interval_seconds(CHECK_EVERY_S),
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def daily_plan_sensor(
    context: dg.SensorEvaluationContext, warmup_db: WarmupDatabase
) -> dg.SensorResult | dg.SkipReason:
    """Plans every mailbox's coming day when a new UTC day begins on the clock.

    Planning looks 24 hours ahead, so one pass a day plans every local day before its window
    opens, in every timezone. The day is the project's clock's: under a scaled clock
    (`WARMUP_CLOCK_SPEED`) every virtual day gets its pass, however fast the days go. Each pass
    launches range runs of up to 25,000 mailboxes (never a run per mailbox) that plan only
    days with no plan yet; days planned already, for example by a rerun, are left alone.
    """
    today = warmup_db.clock.now().date()
    if not pass_due(context.cursor, today):
        return dg.SkipReason(f"{today} is planned; the next pass starts at 00:00 UTC")
    keys = context.instance.get_dynamic_partitions(mailbox_partitions.name)
    requests = plan_range_requests(keys, f"daily-{today}", replan=False) if keys else []
    if not requests:
        return dg.SensorResult(
            skip_reason="no mailboxes yet: import some with `warmup mailboxes import`",
            cursor=today.isoformat(),
        )
    context.log.info(f"daily pass of {today}: {len(keys):,} mailboxes in {len(requests)} runs")
    return dg.SensorResult(run_requests=requests, cursor=today.isoformat())
