"""The fill rate on the clock: each local date is materialized once it has closed everywhere."""

from datetime import date, datetime, timedelta

import dagster as dg

from warmup_dagster import fill
from warmup_dagster.fill.day import closes_at
from warmup_dagster.jobs import fill_rate_job
from warmup_dagster.partitions import fill_days, last_day
from warmup_dagster.resources import WarmupDatabase
from warmup_dagster.sensors.timing import real_interval_seconds
from warmup_dagster.settings import Settings

# How often, in clock time, the sensor looks whether another date has closed.
CHECK_EVERY_S = 300
# Dates launched by one tick at most, when it catches up (the rest go on the next ticks).
MAX_DAYS_PER_TICK = 31


def latest_closed(now: datetime, timezones: set[str], settings: Settings) -> date:
    """The latest local date whose every window (among `timezones`) ended a lease ago.

    A lease (`WARMUP_SEND_LEASE_SECONDS`) after the last window's end, every job claimed in
    it has finished or been given up, so the date's figures are final.
    """
    grace = timedelta(seconds=settings.send_lease_seconds)
    day = now.date()  # UTC: later dates are open in UTC-12 at least
    while True:
        end = closes_at(day, timezones, settings)
        if end is None or end + grace <= now:
            return day
        day -= timedelta(days=1)


def days_due(cursor: str | None, closed: date, first: date, last: date | None) -> list[date]:
    """The dates to materialize: after the cursor (the last one launched) up to `closed`,
    within the partitions `[first, last]`; with no cursor yet, `closed` alone.

    A clock moved back (a new anchor) launches nothing until it passes the cursor again.
    """
    start = closed if cursor is None else date.fromisoformat(cursor) + timedelta(days=1)
    start = max(start, first)
    end = closed if last is None else min(closed, last)
    return [start + timedelta(days=n) for n in range((end - start).days + 1)][:MAX_DAYS_PER_TICK]


@dg.sensor(
    job=fill_rate_job,
    minimum_interval_seconds=real_interval_seconds(CHECK_EVERY_S),
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def fill_rate_sensor(
    context: dg.SensorEvaluationContext, warmup_db: WarmupDatabase
) -> dg.SensorResult | dg.SkipReason:
    """Materializes `fill_rate` for each local date once every mailbox's window of it closed.

    The dates are the project's clock's: under a scaled clock every virtual date gets its
    figures. One run per date; a date that closed on a clock running ahead of real time waits
    until it is a daily partition (see `WARMUP_FILL_RATE_DAYS_AHEAD`). Past dates are the UI's
    to backfill; the running date can be materialized by hand.
    """
    settings = warmup_db.settings
    zones = fill.timezones(warmup_db.engine, settings.send_window_timezone)
    if not zones:
        return dg.SkipReason("no mailboxes yet: import some with `warmup mailboxes import`")
    now = warmup_db.clock.now()
    closed = latest_closed(now, zones, settings)
    first = date.fromisoformat(fill_days.get_first_partition_key() or closed.isoformat())
    last = last_day(fill_days)
    days = days_due(context.cursor, closed, first, last)
    if not days:
        if last is not None and closed > last:
            return dg.SkipReason(
                f"{closed} has closed on the clock but is no daily partition yet: the clock"
                f" runs ahead of real time (partitions end at {last};"
                " WARMUP_FILL_RATE_DAYS_AHEAD adds days)"
            )
        return dg.SkipReason(f"{closed} is the latest closed date, and it has been launched")
    context.log.info(f"fill rate of {', '.join(map(str, days))}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=f"fill-{d}", partition_key=d.isoformat()) for d in days
        ],
        cursor=days[-1].isoformat(),
    )
