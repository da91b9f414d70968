"""The server-side audit of `bench_day`: pure functions over what arrived and what was planned.

Every figure is computed from the server's record of each message (Message-ID, envelope
sender, arrival on the clock) and, for what the project meant to do, from its plan: the
mailboxes' owners and timezones, each job's local day and planned slot, each day's quota
(`daily_quotas`). The rules are the settings the deployment ran with, re-derived by the
project's own audit (`warmup_dagster.core.rules`, which the fill-rate checks use on the send
log), here on the arrivals.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd

from warmup_dagster.core.rules import Rules, gaps, percentile, period_counts, windows
from warmup_dagster.fill.day import rules_from
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


def _frame(arrivals: list[Arrival], plan: Plan) -> pd.DataFrame:
    """The arrivals as `core.rules` reads sends: each judged by its local date at arrival."""
    return pd.DataFrame(
        {
            "mailbox": [a.sender for a in arrivals],
            "user": [plan.senders[a.sender].user_id for a in arrivals],
            "timezone": [plan.senders[a.sender].timezone for a in arrivals],
            "at": pd.to_datetime([a.at for a in arrivals], utc=True),
        }
    )


def _outside_windows(sends: pd.DataFrame, rules: Rules) -> tuple[str, int]:
    start, end = rules.window_start_hour, rules.window_end_hour
    found = windows(sends, rules) if len(sends) else pd.DataFrame({"inside": [], "outside": []})
    out = found.loc[~found["inside"].astype(bool), "outside"]
    worst = f", at most {out.max():.0f} clock s out" if len(out) else ""
    return f"outside the sender's window ({start}:00-{end}:00 local): {len(out)}{worst}", len(out)


def _spacing(sends: pd.DataFrame, rules: Rules) -> tuple[str, int]:
    delay = rules.min_spacing.total_seconds()
    found = gaps(sends)["gap"]
    close = int((found < delay).sum())
    smallest = found.min() if len(found) else 0
    return (
        f"one sender's arrivals under {delay:.0f} clock s apart: {close} pairs"
        f" (smallest gap {smallest:.0f} clock s)",
        close,
    )


def _peaks(sends: pd.DataFrame, rules: Rules) -> tuple[list[str], int]:
    lines, breaks = [], 0
    for unit, total_cap, user_cap in (
        ("minute", rules.global_per_minute, rules.user_per_minute),
        ("hour", rules.global_per_hour, rules.user_per_hour),
    ):
        total, per_user = period_counts(sends, unit)
        over = int((total > total_cap).sum() + (per_user > user_cap).sum())
        breaks += over
        lines.append(
            f"peak arrivals per clock {unit}: {total.max() if len(total) else 0} (cap"
            f" {total_cap}), per owner {per_user.max() if len(per_user) else 0} (cap"
            f" {user_cap}); {over} {unit}s over a cap"
        )
    return lines, breaks


def _lateness_by_hour(lateness: pd.DataFrame) -> str:
    """p95/max lateness per clock hour of the slots (UTC): where in the day sending fell
    behind."""
    hours = pd.to_datetime(lateness["slot"], utc=True).dt.floor("h")
    grouped = lateness["late"].groupby(hours)
    q95, top = grouped.quantile(0.95), grouped.max()
    cells = [f"{hour:%d %H}h {q95[hour]:.1f}/{top[hour]:.1f}" for hour in q95.index]
    return "lateness p95/max by slot hour (UTC day and hour), clock minutes: " + ", ".join(cells)


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
    sends, rules = _frame(arrivals, plan), rules_from(settings)
    for line, count in (_outside_windows(sends, rules), _spacing(sends, rules)):
        lines.append(line)
        breaks += count
    peaks, over = _peaks(sends, rules)
    lines += peaks
    lateness = pd.DataFrame(
        [
            (plan.slots[m][1], (a.at - plan.slots[m][1]).total_seconds() / 60)
            for m, a in first.items()
            if m in plan.slots
        ],
        columns=["slot", "late"],
    )
    if len(lateness):
        late = sorted(lateness["late"])
        lines.append(
            f"lateness (arrival - planned slot), clock minutes: p50 {percentile(late, 0.5):.1f},"
            f" p95 {percentile(late, 0.95):.1f}, max {late[-1]:.1f} ({len(late)} messages)"
        )
        lines.append(_lateness_by_hour(lateness))
    lines.append(f"rule breaks at the server: {breaks + over}")
    return lines
