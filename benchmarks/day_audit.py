"""The server-side audit of `bench_day`: pure functions over what arrived and what was planned.

Every figure is computed from the server's record of each message (Message-ID, envelope
sender, arrival on the clock) and, for what the project meant to do, from its plan: the
mailboxes' owners and timezones, each job's local day and planned slot, each day's quota
(`daily_quotas`). The rules are the settings the deployment ran with.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from warmup_dagster.core.slots import epoch_minute, local_day, send_window
from warmup_dagster.settings import Settings


@dataclass(frozen=True)
class Arrival:
    """One message as the server got it: its Message-ID, envelope sender and clock time."""

    message_id: str
    sender: str
    at: datetime


@dataclass(frozen=True)
class Sender:
    user_id: int
    timezone: str


@dataclass(frozen=True)
class Planned:
    """What `daily_quotas` says of one local date, summed over the pool."""

    mailboxes: int
    quota: int
    planned: int  # the day's jobs, kept and written
    shortfall: int


@dataclass(frozen=True)
class Plan:
    """What the audit takes from the project's tables."""

    day: date  # the benchmark's day, a local date in every timezone
    senders: dict[str, Sender]
    slots: dict[str, tuple[date, datetime]]  # Message-ID: the job's local day, planned slot
    days: dict[date, Planned]


def percentile(ordered: list[float], share: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _fill(first: dict[str, Arrival], plan: Plan) -> list[str]:
    arrived = Counter(plan.slots[m][0] for m in first if m in plan.slots)
    lines = []
    for day, figures in sorted(plan.days.items()):
        what = "the benchmark's day"
        if day < plan.day:
            what = "the day before, its window still open at the import"
        elif day > plan.day:
            what = "the next day, still open when the run stopped"
        share = arrived[day] / figures.planned if figures.planned else 0.0
        lines.append(
            f"{day} ({what}): {figures.mailboxes} mailboxes, quota {figures.quota}, planned"
            f" {figures.planned}, shortfall {figures.shortfall}; arrived {arrived[day]}"
            f" ({share:.1%} of planned)"
        )
    return lines


def _outside_windows(arrivals: list[Arrival], plan: Plan, settings: Settings) -> tuple[str, int]:
    start, end = settings.send_window_start_hour, settings.send_window_end_hour
    out = []
    for arrival in arrivals:
        timezone = plan.senders[arrival.sender].timezone
        window = send_window(local_day(arrival.at, timezone), timezone, start, end)
        if not window.start <= arrival.at < window.end:
            out.append(max(window.start - arrival.at, arrival.at - window.end).total_seconds())
    worst = f", at most {max(out):.0f} clock s out" if out else ""
    return f"outside the sender's window ({start}:00-{end}:00 local): {len(out)}{worst}", len(out)


def _spacing(arrivals: list[Arrival], settings: Settings) -> tuple[str, int]:
    delay = settings.same_mailbox_delay_min * 60
    by_sender: dict[str, list[datetime]] = defaultdict(list)
    for arrival in arrivals:
        by_sender[arrival.sender].append(arrival.at)
    gaps = []
    for times in by_sender.values():
        times.sort()
        gaps += [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    close = sum(1 for gap in gaps if gap < delay)
    return (
        f"one sender's arrivals under {delay:.0f} clock s apart: {close} pairs"
        f" (smallest gap {min(gaps, default=0):.0f} clock s)",
        close,
    )


def _peaks(arrivals: list[Arrival], plan: Plan, settings: Settings) -> tuple[list[str], int]:
    lines, breaks = [], 0
    for unit, minutes, total_cap, user_cap in (
        ("minute", 1, settings.global_sends_per_minute, settings.user_sends_per_minute),
        ("hour", 60, settings.global_sends_per_hour, settings.user_sends_per_hour),
    ):
        periods = [
            (plan.senders[a.sender].user_id, epoch_minute(a.at) // minutes) for a in arrivals
        ]
        total = Counter(period for _, period in periods)
        per_user = Counter(periods)
        over = sum(n > total_cap for n in total.values()) + sum(
            n > user_cap for n in per_user.values()
        )
        breaks += over
        lines.append(
            f"peak arrivals per clock {unit}: {max(total.values(), default=0)} (cap {total_cap}),"
            f" per owner {max(per_user.values(), default=0)} (cap {user_cap});"
            f" {over} {unit}s over a cap"
        )
    return lines, breaks


def audit(arrivals: list[Arrival], plan: Plan, settings: Settings) -> list[str]:
    """The server-side figures, one line each; the last counts the rule breaks."""
    strangers = [a for a in arrivals if a.sender not in plan.senders]
    arrivals = [a for a in arrivals if a.sender in plan.senders]
    first: dict[str, Arrival] = {}
    for arrival in arrivals:
        first.setdefault(arrival.message_id, arrival)
    unknown = sum(1 for m in first if m not in plan.slots)
    duplicates = len(arrivals) - len(first)
    lines = _fill(first, plan)
    lines += [
        f"arrived: {len(arrivals) + len(strangers)} messages; from the pool {len(arrivals)},"
        f" {len(first)} distinct Message-IDs, {unknown} of no planned job; from no pool"
        f" mailbox {len(strangers)}",
        f"duplicates (a Message-ID arrived again): {duplicates}",
    ]
    breaks = unknown + len(strangers) + duplicates
    for line, count in (_outside_windows(arrivals, plan, settings), _spacing(arrivals, settings)):
        lines.append(line)
        breaks += count
    peaks, over = _peaks(arrivals, plan, settings)
    lines += peaks
    late = sorted(
        (a.at - plan.slots[m][1]).total_seconds() / 60 for m, a in first.items() if m in plan.slots
    )
    if late:
        lines.append(
            f"lateness (arrival - planned slot), clock minutes: p50 {percentile(late, 0.5):.1f},"
            f" p95 {percentile(late, 0.95):.1f}, max {late[-1]:.1f} ({len(late)} messages)"
        )
    lines.append(f"rule breaks at the server: {breaks + over}")
    return lines
