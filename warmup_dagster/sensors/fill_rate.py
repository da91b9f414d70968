"""The fill rate on the clock: each local date is materialized once it has closed everywhere,
and while it is open, every `WARMUP_FILL_RATE_REFRESH_SECONDS`, so the UI shows how the running
day is filling."""

from datetime import date, datetime, timedelta

import dagster as dg

from warmup_dagster import fill
from warmup_dagster.core.slots import local_day
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


def days_open(now: datetime, timezones: set[str], closed: date) -> list[date]:
    """The dates after `closed` already begun in one of `timezones`: open, their figures so far."""
    latest = max(local_day(now, zone) for zone in timezones)
    return [closed + timedelta(days=n) for n in range(1, (latest - closed).days + 1)]


def refresh_key(day: date, now: datetime, every_s: int) -> str:
    """The run key of an open date's figures: one run per date per refresh period."""
    return f"fill-{day}-at-{int(now.timestamp()) // every_s * every_s}"


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
    to backfill. A date still open gets a run per refresh period (its run key names the
    period), its figures so far with `day_closed` false; the run after it closed is final.
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
    every_s = settings.fill_rate_refresh_seconds
    running = [
        d
        for d in (days_open(now, zones, closed) if every_s else [])
        if first <= d and (last is None or d <= last)
    ]
    if not days and not running:
        if last is not None and closed > last:
            return dg.SkipReason(
                f"{closed} has closed on the clock but is no daily partition yet: the clock"
                f" runs ahead of real time (partitions end at {last};"
                " WARMUP_FILL_RATE_DAYS_AHEAD adds days)"
            )
        return dg.SkipReason(f"{closed} is the latest closed date, and it has been launched")
    if days:
        context.log.info(f"fill rate of {', '.join(map(str, days))}")
    requests = [dg.RunRequest(run_key=f"fill-{d}", partition_key=d.isoformat()) for d in days]
    requests += [
        dg.RunRequest(run_key=refresh_key(d, now, every_s), partition_key=d.isoformat())
        for d in running
    ]
    return dg.SensorResult(
        run_requests=requests, cursor=days[-1].isoformat() if days else context.cursor
    )
