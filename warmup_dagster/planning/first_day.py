"""A mailbox's first day, when it was added after that day's window opened (`WARMUP_FIRST_DAY`).

The first day is the mailbox's `warmup_start_date`, day one of its ramp (the importer sets it
to the local date of the import). Added after that day's window opened, the mailbox would send
a whole day's quota in what is left of it; instead, with `prorate` (the default) it gets its
quota x the share of the window that was still ahead when it was added, rounded down, and
with `next_day` its warmup starts the next day (day one of the ramp moves there).

The share is measured from the mailbox's `created_at`, not from the planning call: the
partitions sensor plans a new mailbox at once, and a stored instant gives the same figure every
time that day is planned, so a replan later the same day never shrinks it, and a day planned
full (the mailbox was added before the window opened) stays full. Later days are never
prorated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from warmup_dagster.core.ramp import Quota, RampSettings, daily_quota
from warmup_dagster.core.slots import Window, prorate, send_window, share_ahead
from warmup_dagster.planning.model import Target, ramp_settings
from warmup_dagster.settings import Settings

PRORATE = "prorate"
NEXT_DAY = "next_day"

# A quota for the target's day given the plan's remaining allowance (None: no plan cap).
QuotaOf = Callable[[int | None], Quota]


def late_window(row: Any, timezone: str, settings: Settings) -> Window | None:
    """The window of the mailbox's first day if it was added after that window opened."""
    window = send_window(
        row.warmup_start_date,
        timezone,
        settings.send_window_start_hour,
        settings.send_window_end_hour,
    )
    return window if row.created_at > window.start else None


def ramp(row: Any, timezone: str, settings: Settings, weekdays_only: bool = False) -> RampSettings:
    """The mailbox's ramp; with `next_day`, a mailbox added late starts it a day later."""
    ramp = ramp_settings(row, weekdays_only)
    if settings.first_day == NEXT_DAY and late_window(row, timezone, settings):
        ramp = replace(ramp, warmup_start_date=ramp.warmup_start_date + timedelta(days=1))
    return ramp


def first_day_quota(target: Target, settings: Settings, quota: Quota, quota_of: QuotaOf) -> Quota:
    """`quota` (from `quota_of`, with the plan's cap) as the first day lowers it.

    Prorating applies before the owner plan's cap, as throttling does: the day gets
    `min(full x share, what the plan allows)`.
    """
    box = target.box
    window = late_window(box, target.timezone, settings)
    if target.day != box.warmup_start_date or window is None:
        return quota
    if settings.first_day == NEXT_DAY:
        return Quota(0, 0, "added after its first day's window opened: warmup starts tomorrow")
    full = quota_of(None)
    value = prorate(full.value, window, box.created_at)
    if value >= quota.value:
        return quota  # the plan's cap is lower still
    ahead, length = (
        f"{span / timedelta(hours=1):.4g}" for span in share_ahead(window, box.created_at)
    )
    note = (
        f"first day: added with {ahead} h of the {length} h window left, "
        f"{full.value} x {ahead}/{length} = {value} (rounded down)"
    )
    return Quota(value, full.ramp, "; ".join(r for r in (full.reason, note) if r))


def capacity(row: Any, day: date, settings: Settings) -> int:
    """A pool member's inbound capacity on `day`: what it sends that day before day limits
    (any weekday), its first day lowered as its own plan is, so it receives about as much."""
    timezone = row.timezone or settings.send_window_timezone
    value = daily_quota(
        row.id, ramp(row, timezone, settings), day, variance=settings.daily_variance
    ).value
    window = late_window(row, timezone, settings)
    if settings.first_day == PRORATE and window is not None and day == row.warmup_start_date:
        value = prorate(value, window, row.created_at)
    return value
