import math
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from warmup_dagster.core.ramp import DEFAULT_VARIANCE, RampSettings, daily_quota, ramp_value

PROPERTY = settings(max_examples=150, deadline=None)

START = date(2026, 3, 2)  # a Monday

mailbox_ids = st.integers(min_value=1, max_value=10**9)
ramp_settings = st.builds(
    RampSettings,
    daily_limit=st.integers(min_value=1, max_value=500),
    ramp_start=st.integers(min_value=1, max_value=60),
    ramp_step=st.integers(min_value=0, max_value=25),
    warmup_start_date=st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 31)),
    weekdays_only=st.booleans(),
)
day_offsets = st.integers(min_value=-30, max_value=400)
throttles = st.floats(min_value=0.0, max_value=1.0)
plan_remainings = st.none() | st.integers(min_value=-5, max_value=600)
variances = st.floats(min_value=0.0, max_value=0.5)


def weekday_settings(**overrides: object) -> RampSettings:
    values = {"daily_limit": 100, "ramp_start": 100, "ramp_step": 0, "warmup_start_date": START}
    values.update(overrides)
    return RampSettings(**values)  # type: ignore[arg-type]


@PROPERTY
@given(ramp_settings, day_offsets)
def test_ramp_value_is_start_plus_step_per_day_capped_at_limit(s: RampSettings, offset: int):
    day = s.warmup_start_date + timedelta(days=offset)
    expected = 0 if offset < 0 else min(s.daily_limit, s.ramp_start + s.ramp_step * offset)
    assert ramp_value(s, day) == expected


@PROPERTY
@given(ramp_settings, st.integers(min_value=1, max_value=400))
def test_ramp_value_is_zero_before_warmup_start(s: RampSettings, days_before: int):
    assert ramp_value(s, s.warmup_start_date - timedelta(days=days_before)) == 0


def test_ramp_value_examples():
    s = RampSettings(daily_limit=40, ramp_start=5, ramp_step=3, warmup_start_date=START)
    values = [ramp_value(s, START + timedelta(days=d)) for d in range(-1, 16)]
    assert values == [0, 5, 8, 11, 14, 17, 20, 23, 26, 29, 32, 35, 38, 40, 40, 40, 40]


@PROPERTY
@given(
    mailbox_ids,
    ramp_settings,
    day_offsets,
    st.booleans(),
    throttles,
    plan_remainings,
    variances,
)
def test_quota_never_above_daily_limit_nor_plan_remaining(
    mailbox_id: int,
    s: RampSettings,
    offset: int,
    active: bool,
    throttle: float,
    plan_remaining: int | None,
    variance: float,
):
    day = s.warmup_start_date + timedelta(days=offset)
    quota = daily_quota(
        mailbox_id,
        s,
        day,
        active=active,
        throttle=throttle,
        plan_remaining=plan_remaining,
        variance=variance,
    )
    assert 0 <= quota.value <= s.daily_limit
    assert quota.ramp == ramp_value(s, day)
    if plan_remaining is not None:
        assert quota.value <= max(0, plan_remaining)


@PROPERTY
@given(mailbox_ids, ramp_settings, day_offsets, st.integers(min_value=0, max_value=300))
def test_plan_remaining_caps_the_quota_and_says_so(
    mailbox_id: int, s: RampSettings, offset: int, plan_remaining: int
):
    day = s.warmup_start_date + timedelta(days=offset)
    free = daily_quota(mailbox_id, s, day)
    capped = daily_quota(mailbox_id, s, day, plan_remaining=plan_remaining)
    assert capped.value == min(free.value, plan_remaining)
    if free.value > plan_remaining:
        assert f"plan allows {plan_remaining} more today" in capped.reason


@PROPERTY
@given(mailbox_ids, ramp_settings, day_offsets)
def test_weekdays_only_gives_zero_on_saturday_and_sunday_with_reason(
    mailbox_id: int, s: RampSettings, offset: int
):
    s = RampSettings(
        s.daily_limit, s.ramp_start, s.ramp_step, s.warmup_start_date, weekdays_only=True
    )
    day = s.warmup_start_date + timedelta(days=max(0, offset))
    quota = daily_quota(mailbox_id, s, day)
    if day.weekday() >= 5:
        assert quota.value == 0
        assert quota.ramp == ramp_value(s, day) > 0
        assert quota.reason == "weekend (weekdays only)"
    else:
        assert quota.value >= 1
        assert "weekend" not in quota.reason


def test_weekdays_only_example_week():
    s = weekday_settings(weekdays_only=True)
    week = [daily_quota(7, s, START + timedelta(days=d)) for d in range(7)]
    assert [q.value == 0 for q in week] == [False] * 5 + [True] * 2
    assert [q.reason for q in week[5:]] == ["weekend (weekdays only)"] * 2
    every_day = weekday_settings()
    assert all(daily_quota(7, every_day, START + timedelta(days=d)).value > 0 for d in (5, 6))


@PROPERTY
@given(mailbox_ids, ramp_settings, st.integers(min_value=0, max_value=400), st.text(max_size=20))
def test_inactive_mailbox_gets_zero_with_a_reason(
    mailbox_id: int, s: RampSettings, offset: int, why: str
):
    day = s.warmup_start_date + timedelta(days=offset)
    quota = daily_quota(mailbox_id, s, day, active=False, inactive_reason=why)
    assert quota.value == 0
    assert quota.reason
    if not (s.weekdays_only and day.weekday() >= 5):
        assert quota.reason == (why or "not active")


def test_quota_before_warmup_start_is_zero_with_reason():
    quota = daily_quota(1, weekday_settings(), START - timedelta(days=1))
    assert (quota.value, quota.ramp, quota.reason) == (0, 0, "warmup has not started")


@PROPERTY
@given(mailbox_ids, ramp_settings, st.integers(min_value=0, max_value=400), throttles)
def test_throttle_scales_the_quota_down(
    mailbox_id: int, s: RampSettings, offset: int, throttle: float
):
    day = s.warmup_start_date + timedelta(days=offset)
    free = daily_quota(mailbox_id, s, day)
    throttled = daily_quota(mailbox_id, s, day, throttle=throttle)
    assert throttled.value <= free.value
    if free.value > 0 and throttle < 1.0:
        assert throttled.value == math.floor(free.value * throttle)
        assert throttled.reason == f"throttled to {throttle:.0%}"
    if throttle == 1.0:
        assert throttled == free


def test_throttle_examples():
    s = weekday_settings()
    free = daily_quota(3, s, START, variance=0)
    assert free.value == 100 and free.reason == ""
    half = daily_quota(3, s, START, variance=0, throttle=0.5, throttle_reason="bounces")
    assert (half.value, half.reason) == (50, "bounces")
    assert daily_quota(3, s, START, variance=0, throttle=0.0).value == 0
    assert daily_quota(3, s, START, variance=0, throttle=-1.0).value == 0


@PROPERTY
@given(mailbox_ids, ramp_settings, st.integers(min_value=0, max_value=400), variances)
def test_variance_stays_within_its_share_of_the_ramp(
    mailbox_id: int, s: RampSettings, offset: int, variance: float
):
    s = RampSettings(s.daily_limit, s.ramp_start, s.ramp_step, s.warmup_start_date)
    day = s.warmup_start_date + timedelta(days=offset)
    quota = daily_quota(mailbox_id, s, day, variance=variance)
    ramp = quota.ramp
    # ramp * (1 + variance * u) with u in [-1, 1), rounded: at most the rounded share away.
    assert abs(quota.value - ramp) <= math.floor(ramp * variance + 0.5)
    assert 1 <= quota.value <= s.daily_limit
    assert quota.reason == ""


@PROPERTY
@given(mailbox_ids, ramp_settings, st.integers(min_value=0, max_value=400))
def test_default_variance_is_within_ten_percent(mailbox_id: int, s: RampSettings, offset: int):
    s = RampSettings(s.daily_limit, s.ramp_start, s.ramp_step, s.warmup_start_date)
    quota = daily_quota(mailbox_id, s, s.warmup_start_date + timedelta(days=offset))
    assert DEFAULT_VARIANCE == 0.1
    assert abs(quota.value - quota.ramp) <= math.floor(quota.ramp * 0.1 + 0.5)


@PROPERTY
@given(mailbox_ids, ramp_settings, day_offsets, st.booleans(), throttles, plan_remainings)
def test_same_call_twice_gives_the_same_quota(
    mailbox_id: int,
    s: RampSettings,
    offset: int,
    active: bool,
    throttle: float,
    plan_remaining: int | None,
):
    day = s.warmup_start_date + timedelta(days=offset)

    def plan() -> object:
        return daily_quota(
            mailbox_id, s, day, active=active, throttle=throttle, plan_remaining=plan_remaining
        )

    assert plan() == plan()


def test_variance_differs_across_days_and_mailboxes():
    s = weekday_settings()  # the ramp is flat at 100, so only the variance moves the quota
    days = [START + timedelta(days=d) for d in range(30)]
    per_mailbox = {m: [daily_quota(m, s, day).value for day in days] for m in range(1, 21)}
    assert all(len(set(values)) > 1 for values in per_mailbox.values())
    assert all(90 <= v <= 110 for values in per_mailbox.values() for v in values)
    assert len({values[0] for values in per_mailbox.values()}) > 1


def test_zero_variance_or_tiny_ramp_gives_the_ramp_itself():
    s = weekday_settings()
    assert all(daily_quota(m, s, START, variance=0).value == 100 for m in range(50))
    tiny = weekday_settings(ramp_start=2)
    assert all(daily_quota(m, tiny, START).value == 2 for m in range(50))
