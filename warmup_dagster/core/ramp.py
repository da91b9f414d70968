"""Daily quotas: the warmup ramp and everything that lowers it. Pure functions."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import date

# A day's quota varies by up to this share around the ramp, so no two days look machine-made
# (the default of `WARMUP_DAILY_VARIANCE`, which planning passes in).
DEFAULT_VARIANCE = 0.1


@dataclass(frozen=True)
class RampSettings:
    """A mailbox's warmup settings as the ramp needs them."""

    daily_limit: int
    ramp_start: int
    ramp_step: int
    warmup_start_date: date
    weekdays_only: bool = False


@dataclass(frozen=True)
class Quota:
    """How many sends a mailbox should make on one local day, and why not more."""

    value: int
    ramp: int  # what the ramp alone asks for
    reason: str  # empty when nothing lowered the ramp's value


def ramp_value(settings: RampSettings, day: date) -> int:
    """Sends the ramp asks for on `day`: start, plus a step per day, up to the daily limit.

    Day one is `warmup_start_date`; before it the ramp asks for nothing.
    """
    days_in = (day - settings.warmup_start_date).days
    if days_in < 0:
        return 0
    return min(settings.daily_limit, settings.ramp_start + settings.ramp_step * days_in)


def _unit_noise(mailbox_id: int, day: date) -> float:
    """A stable number in [-1, 1) for a mailbox and day: replanning sees the same quota."""
    digest = hashlib.blake2b(f"{mailbox_id}:{day.isoformat()}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**63 - 1.0


def daily_quota(
    mailbox_id: int,
    settings: RampSettings,
    day: date,
    *,
    active: bool = True,
    inactive_reason: str = "",
    throttle: float = 1.0,
    throttle_reason: str = "",
    plan_remaining: int | None = None,
    variance: float = DEFAULT_VARIANCE,
) -> Quota:
    """The quota for one mailbox on one local day.

    Order: ramp, daily variance (never above the limit), zero on weekends for weekdays-only
    mailboxes, zero when not active, scaled down when throttled, capped by what the owner's
    plan still allows today.

    `variance` is the largest share (0 turns it off) by which the quota moves around the
    ramp; the move is stable for a mailbox and day, so replanning a day gives its quota again.
    """
    ramp = ramp_value(settings, day)
    if ramp == 0:
        return Quota(0, 0, "warmup has not started")
    if settings.weekdays_only and day.weekday() >= 5:
        return Quota(0, ramp, "weekend (weekdays only)")
    if not active:
        return Quota(0, ramp, inactive_reason or "not active")
    value = ramp
    if variance > 0 and ramp > 2:
        value = round(ramp * (1 + variance * _unit_noise(mailbox_id, day)))
        value = max(1, min(settings.daily_limit, value))
    reasons = []
    if throttle < 1.0:
        value = math.floor(value * max(0.0, throttle))
        reasons.append(throttle_reason or f"throttled to {throttle:.0%}")
    if plan_remaining is not None and value > plan_remaining:
        value = max(0, plan_remaining)
        reasons.append(f"plan allows {max(0, plan_remaining)} more today")
    return Quota(value, ramp, "; ".join(reasons))
