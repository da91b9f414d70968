"""The rule audit on hand-built sends: each rule broken once, named, and a clean day clean."""

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from warmup_dagster.core.rules import (
    PLAN_LIMIT,
    SPACING,
    WINDOW,
    Rules,
    audit,
    gaps,
    percentile,
    period_counts,
    windows,
)

MONDAY = date(2026, 3, 2)
RULES = Rules(
    global_per_minute=4,
    global_per_hour=10,
    user_per_minute=2,
    user_per_hour=6,
    min_spacing=timedelta(minutes=2),
    window_start_hour=6,
    window_end_hour=22,
)


def at(hour: int, minute: int = 0, second: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


def sends(*rows: tuple) -> pd.DataFrame:
    """Rows of (mailbox, user, timezone, at[, day])."""
    frame = pd.DataFrame(
        [(*r[:4], r[4] if len(r) > 4 else MONDAY) for r in rows],
        columns=["mailbox", "user", "timezone", "at", "day"],
    )
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def found(frame: pd.DataFrame, **kwargs) -> list[tuple[str, str, datetime]]:
    return [(v.rule, v.subject, v.at) for v in audit(frame, frame, RULES, **kwargs)]


def test_a_day_within_every_rule_has_no_violation():
    day = sends(
        ("a@x", "ann", "UTC", at(6)),  # the window's first second
        ("a@x", "ann", "UTC", at(6, 2)),  # exactly the minimum apart
        ("b@x", "ann", "Europe/Berlin", at(5, 30)),  # 06:30 in Berlin
        ("c@y", "bob", "UTC", at(21, 59, 59)),
        ("d@y", "bob", "America/New_York", at(23, 0)),  # 18:00 in New York
    )
    assert found(day, plan_limits=pd.Series({"ann": 3, "bob": 2})) == []


def test_each_send_outside_its_days_window_is_named_with_its_local_time():
    day = sends(
        ("a@x", "ann", "UTC", at(5, 59, 59)),
        ("b@x", "ann", "UTC", at(22)),  # the end is outside: the window is [06:00, 22:00)
        ("c@x", "ann", "Asia/Kolkata", at(17)),  # 22:30 in Kolkata
        ("d@x", "ann", "UTC", at(10), date(2026, 3, 1)),  # inside Monday's window, of Sunday
    )
    violations = audit(day, day.iloc[:0], RULES)
    assert [(v.rule, v.subject) for v in violations] == [
        (WINDOW, "mailbox a@x"),
        (WINDOW, "mailbox d@x"),
        (WINDOW, "mailbox c@x"),
        (WINDOW, "mailbox b@x"),
    ]
    assert str(violations[2]) == (
        "send window: mailbox c@x at 2026-03-02 17:00:00 UTC: sent at 22:30:00 local"
        " (Asia/Kolkata), outside its 06:00-22:00 window of 2026-03-02"
    )
    assert "of 2026-03-01" in str(violations[1])


def test_a_send_without_its_day_is_judged_by_its_local_date():
    day = sends(("a@x", "ann", "Pacific/Auckland", at(20)))  # 09:00 on Tuesday in Auckland
    day["day"] = None
    found_windows = windows(day, RULES)
    assert found_windows["day"].tolist() == [date(2026, 3, 3)]
    assert found_windows["inside"].tolist() == [True]
    assert audit(day, day.iloc[:0], RULES) == []


def test_windows_follow_daylight_saving_time():
    # 8 March 2026: New York moves to UTC-4 at 02:00; the window opens at 10:00 UTC that day
    day = sends(
        ("a@x", "ann", "America/New_York", at(10, 30, day=8), date(2026, 3, 8)),
        ("b@x", "ann", "America/New_York", at(10, 30, day=7), date(2026, 3, 7)),  # 05:30 EST
    )
    found_windows = windows(day, RULES)
    assert found_windows["start"].tolist() == [
        pd.Timestamp("2026-03-08 10:00", tz="UTC"),
        pd.Timestamp("2026-03-07 11:00", tz="UTC"),
    ]
    assert found_windows["inside"].tolist() == [True, False]
    assert found_windows["outside"].tolist() == [0.0, 1800.0]


def test_two_sends_of_one_mailbox_closer_than_the_minimum_are_named():
    day = sends(
        ("a@x", "ann", "UTC", at(9)),
        ("b@x", "ann", "UTC", at(9, 0, 30)),  # another mailbox: no spacing between them
        ("a@x", "ann", "UTC", at(9, 1, 59)),
        ("a@x", "ann", "UTC", at(9, 4)),
    )
    [violation] = audit(day, day.iloc[:0], RULES)
    assert (violation.rule, violation.subject, violation.at) == (
        SPACING,
        "mailbox a@x",
        at(9, 1, 59),
    )
    assert violation.detail == "119 s after its send at 09:00:00 UTC; the minimum is 120 s"
    assert gaps(day)["gap"].tolist() == [119.0, 121.0]


@pytest.mark.parametrize(
    ("times", "users", "expected"),
    [
        # five attempts in one minute by four owners: over the global minute's 4
        (
            [at(9, 0, s) for s in (0, 10, 20, 30, 40)],
            "abcde",
            [("global per-minute cap", "everyone")],
        ),
        # three of one owner in a minute: over the owner's 2
        ([at(9, 0, s) for s in (0, 10, 20)], "aaa", [("owner per-minute cap", "owner a")]),
        # eleven in an hour, at most two a minute: over the global hour's 10
        (
            [at(9, m) for m in range(0, 55, 5)],
            "abcdefghijk",
            [("global per-hour cap", "everyone")],
        ),
        # seven of one owner in an hour: over the owner's 6
        ([at(9, m) for m in range(0, 35, 5)], "a" * 7, [("owner per-hour cap", "owner a")]),
    ],
)
def test_each_rate_cap_broken_is_named_once_per_period(times, users, expected):
    attempts = pd.DataFrame({"user": list(users), "at": pd.to_datetime(times, utc=True)})
    violations = audit(attempts.iloc[:0].assign(mailbox=[], timezone=[]), attempts, RULES)
    assert [(v.rule, v.subject) for v in violations] == expected
    assert violations[0].at == at(9)


def test_attempts_that_were_not_sent_count_against_the_rate_caps():
    counted = sends(("a@x", "ann", "UTC", at(9)))
    attempts = pd.DataFrame({"user": ["ann"] * 3, "at": pd.to_datetime([at(9)] * 3, utc=True)})
    [violation] = audit(counted, attempts, RULES)
    assert violation.detail == "3 attempts in the minute; the cap is 2"
    total, per_user = period_counts(attempts, "hour")
    assert total.to_dict() == {pd.Timestamp(at(9)): 3}
    assert per_user.to_dict() == {("ann", pd.Timestamp(at(9))): 3}


def test_an_owner_over_the_plans_daily_limit_is_named():
    day = sends(*[(f"m{i}@x", "ann", "UTC", at(9 + i)) for i in range(4)])
    [violation] = audit(day, day.iloc[:0], RULES, plan_limits=pd.Series({"ann": 3, "bob": 1}))
    assert (violation.rule, violation.subject, violation.at) == (PLAN_LIMIT, "owner ann", at(12))
    assert violation.detail == "4 sends counted for the day; its limit is 3"


def test_percentile_is_the_nearest_rank():
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 0.2)) == (
        3.0,
        10.0,
        1.0,
    )
