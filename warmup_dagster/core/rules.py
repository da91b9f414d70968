"""The rules a day's sends must keep, re-derived from the sends themselves. Pure functions.

An audit, independent of the code that enforced the rules: nothing here calls `core.admission`
(which decides claims), `core.slots` (which plans them) or the counter ledger. Per-minute and
per-hour counts are counted again from the sends, each send's window is computed again from
the settings' hours and its mailbox's timezone, and each mailbox's gaps are measured between
its sends. The fill-rate checks and `warmup audit` give it the send log's rows
(`fill.audit`); `bench-day` gives it what arrived at its SMTP server (`benchmarks/day_audit.py`).

The sends are a pandas frame, one row a send:

- `mailbox`, `user`: labels of the sending mailbox and its owner (addresses, names or ids);
- `timezone`: the mailbox's IANA timezone;
- `day`: the local date the send counted for (its job's day); absent, or None in a row, for
  the local date of `at` in `timezone`;
- `at`: when it was sent, timezone-aware UTC.

The rate caps count attempts, sent or not (each one is an SMTP session at the provider), so
`rate_breaks` takes any rows with `user` and `at`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd

WINDOW = "send window"
SPACING = "mailbox spacing"
PLAN_LIMIT = "plan daily limit"


@dataclass(frozen=True)
class Rules:
    """The settings a day's sends are held to."""

    global_per_minute: int
    global_per_hour: int
    user_per_minute: int
    user_per_hour: int
    min_spacing: timedelta
    window_start_hour: int
    window_end_hour: int


@dataclass(frozen=True)
class Violation:
    """One rule broken: which rule, by whom, when (the send, or the period's start), how."""

    rule: str
    subject: str
    at: datetime
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.subject} at {self.at:%Y-%m-%d %H:%M:%S} UTC: {self.detail}"


def percentile(ordered: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of sorted values (not interpolated: a value that occurred)."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _local_hour(day: date, timezone: str, hour: int) -> datetime:
    """`hour`:00 local time on `day` in `timezone` (24 is the next midnight), as UTC."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone))
    return (midnight + timedelta(hours=hour)).astimezone(UTC)


def with_days(sends: pd.DataFrame) -> pd.DataFrame:
    """`sends` with every row's `day`: its own, or the local date of `at` where it has none."""
    sends = sends.copy()
    if "day" not in sends:
        sends["day"] = None
    missing = sends["day"].isna()
    for timezone, rows in sends[missing].groupby("timezone"):
        local = rows["at"].dt.tz_convert(ZoneInfo(str(timezone)))
        sends.loc[rows.index, "day"] = pd.Series([t.date() for t in local], index=rows.index)
    return sends


def windows(sends: pd.DataFrame, rules: Rules) -> pd.DataFrame:
    """Per send, its day's window and where the send lies against it.

    Returns a frame aligned with `sends`: `day` (see `with_days`), `start` and `end` (the window
    of that day in the mailbox's timezone, `[start, end)`), `inside`, and `outside` (seconds
    before the start or past the end; 0 inside).
    """
    sends = with_days(sends)
    pairs = sends[["timezone", "day"]].drop_duplicates()
    bounds = pairs.assign(
        start=[
            _local_hour(d, tz, rules.window_start_hour)
            for tz, d in zip(pairs["timezone"], pairs["day"], strict=True)
        ],
        end=[
            _local_hour(d, tz, rules.window_end_hour)
            for tz, d in zip(pairs["timezone"], pairs["day"], strict=True)
        ],
    )
    found = sends[["timezone", "day", "at"]].merge(bounds, on=["timezone", "day"], how="left")
    found.index = sends.index
    start, end = pd.to_datetime(found["start"], utc=True), pd.to_datetime(found["end"], utc=True)
    early = (start - found["at"]).dt.total_seconds()
    late = (found["at"] - end).dt.total_seconds()
    return pd.DataFrame(
        {
            "day": found["day"],
            "start": start,
            "end": end,
            "inside": (early <= 0) & (late < 0),
            "outside": early.clip(lower=0) + late.clip(lower=0),
        }
    )


def window_breaks(sends: pd.DataFrame, rules: Rules) -> list[Violation]:
    """Each send outside its mailbox's local window of its day."""
    if sends.empty:
        return []
    found = windows(sends, rules)
    bad = sends.assign(day=found["day"])[~found["inside"]]
    hours = f"{rules.window_start_hour:02d}:00-{rules.window_end_hour:02d}:00"
    return [
        Violation(
            WINDOW,
            f"mailbox {r.mailbox}",
            r.at.to_pydatetime(),
            f"sent at {r.at.tz_convert(ZoneInfo(r.timezone)):%H:%M:%S} local ({r.timezone}),"
            f" outside its {hours} window of {r.day}",
        )
        for r in bad.itertuples()
    ]


def gaps(sends: pd.DataFrame) -> pd.DataFrame:
    """Each mailbox's consecutive sends: `mailbox`, `previous`, `at`, `gap` (seconds)."""
    ordered = sends.sort_values(["mailbox", "at"], kind="stable")
    same = ordered["mailbox"].eq(ordered["mailbox"].shift())
    previous = ordered["at"].shift()
    pairs = pd.DataFrame(
        {"mailbox": ordered["mailbox"], "previous": previous, "at": ordered["at"]}
    )[same]
    return pairs.assign(gap=(pairs["at"] - pairs["previous"]).dt.total_seconds())


def spacing_breaks(sends: pd.DataFrame, rules: Rules) -> list[Violation]:
    """Each pair of consecutive sends of one mailbox closer than the minimum spacing."""
    if sends.empty:
        return []
    least = rules.min_spacing.total_seconds()
    pairs = gaps(sends)
    close = pairs[pairs["gap"] < least]
    return [
        Violation(
            SPACING,
            f"mailbox {r.mailbox}",
            r.at.to_pydatetime(),
            f"{r.gap:.0f} s after its send at {r.previous:%H:%M:%S} UTC; the minimum is"
            f" {least:.0f} s",
        )
        for r in close.itertuples()
    ]


def period_counts(attempts: pd.DataFrame, unit: str) -> tuple[pd.Series, pd.Series]:
    """Attempts per clock `unit` ("minute" or "hour"): in all, and per `user`.

    Each series is indexed by the period's start (and the user first, for the second).
    """
    period = attempts["at"].dt.floor("min" if unit == "minute" else "h")
    total = period.value_counts().sort_index()
    per_user = pd.Series(1, index=pd.MultiIndex.from_arrays([attempts["user"], period]))
    return total, per_user.groupby(level=[0, 1]).sum().sort_index()


def rate_breaks(attempts: pd.DataFrame, rules: Rules) -> list[Violation]:
    """Each clock minute and hour over a cap: the global ones, and each owner's."""
    if attempts.empty:
        return []
    found = []
    for unit, total_cap, user_cap in (
        ("minute", rules.global_per_minute, rules.user_per_minute),
        ("hour", rules.global_per_hour, rules.user_per_hour),
    ):
        total, per_user = period_counts(attempts, unit)
        found += [
            Violation(
                f"global per-{unit} cap",
                "everyone",
                at.to_pydatetime(),
                f"{n} attempts in the {unit}; the cap is {total_cap}",
            )
            for at, n in total[total > total_cap].items()
        ]
        found += [
            Violation(
                f"owner per-{unit} cap",
                f"owner {user}",
                at.to_pydatetime(),
                f"{n} attempts in the {unit}; the cap is {user_cap}",
            )
            for (user, at), n in per_user[per_user > user_cap].items()
        ]
    return found


def limit_breaks(
    sends: pd.DataFrame, key: str, limits: pd.Series, rule: str, what: str
) -> list[Violation]:
    """Each `key` (a mailbox or a user) with more of the day's `sends` than its limit.

    `limits` is indexed by the same labels; a label without a limit has none.
    """
    if sends.empty:
        return []
    counts = sends.groupby(key)["at"].agg(["size", "max"])
    counts = counts.join(limits.rename("limit"), how="inner")
    over = counts[counts["size"] > counts["limit"]]
    return [
        Violation(
            rule,
            f"{what} {label}",
            last.to_pydatetime(),
            f"{n} sends counted for the day; its limit is {limit}",
        )
        for label, n, last, limit in over[["size", "max", "limit"]].itertuples()
    ]


def audit(
    sends: pd.DataFrame,
    attempts: pd.DataFrame,
    rules: Rules,
    plan_limits: pd.Series | None = None,
) -> list[Violation]:
    """Every rule the sends and attempts break, in time order.

    `sends` are the sends that count (see the module docstring), `attempts` every attempt of
    the span (the rate caps). `plan_limits` (per user label) are the owners' plan limits, when
    the audit is of one local day's sends.
    """
    found = rate_breaks(attempts, rules) + window_breaks(sends, rules)
    found += spacing_breaks(sends, rules)
    if plan_limits is not None:
        found += limit_breaks(sends, "user", plan_limits, PLAN_LIMIT, "owner")
    return sorted(found, key=lambda v: (v.at, v.rule, v.subject))
