import random
import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from warmup_dagster.core.admission import END_MARGIN
from warmup_dagster.core.slots import (
    ARRIVAL_MARGIN,
    PLAN_END_MARGIN,
    PLAN_SPACING_MARGIN,
    CapLedger,
    Window,
    epoch_minute,
    local_day,
    place_slots,
    prorate,
    send_window,
    share_ahead,
    target_offsets,
    with_margins,
)

PROPERTY = settings(max_examples=100, deadline=None)
# Slot times are whole microseconds; a gap may round to half a microsecond below the float.
TOL = 1e-6
HOUR = 3600.0

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "America/St_Johns",
    "Asia/Kathmandu",
    "Pacific/Kiritimati",
]
DST_DATES = [date(2026, 3, 29), date(2026, 10, 25), date(2026, 3, 8), date(2026, 11, 1)]

seeds = st.integers(min_value=0, max_value=2**32 - 1)
days = st.sampled_from(DST_DATES) | st.dates(
    min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)
)


def wall(when: datetime, zone: str) -> datetime:
    return when.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def exists(naive: datetime, zone: str) -> bool:
    """Whether a local wall time happens at all (not skipped by a spring-forward)."""
    return wall(naive.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC), zone) == naive


def local_at(day: date, hour: int) -> datetime:
    return datetime.combine(day + timedelta(days=hour // 24), time(hour % 24))


@contextmanager
def fails_after(seconds: int) -> Iterator[None]:
    """Turns a hang into a test failure (SIGALRM: the main thread of a POSIX process)."""

    def stop(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def gaps(slots: list[datetime]) -> list[float]:
    return [(b - a).total_seconds() for a, b in pairwise(slots)]


# --- send_window ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "start", "end", "utc_start", "utc_end"),
    [
        # Berlin springs forward 02:00 -> 03:00 on 2026-03-29.
        ("Europe/Berlin", date(2026, 3, 29), 0, 24, "2026-03-28 23:00", "2026-03-29 22:00"),
        ("Europe/Berlin", date(2026, 3, 29), 8, 18, "2026-03-29 06:00", "2026-03-29 16:00"),
        ("Europe/Berlin", date(2026, 3, 29), 1, 4, "2026-03-29 00:00", "2026-03-29 02:00"),
        # New York springs forward on 2026-03-08 and falls back on 2026-11-01.
        ("America/New_York", date(2026, 3, 8), 0, 24, "2026-03-08 05:00", "2026-03-09 04:00"),
        ("America/New_York", date(2026, 3, 8), 9, 17, "2026-03-08 13:00", "2026-03-08 21:00"),
        ("America/New_York", date(2026, 11, 1), 0, 24, "2026-11-01 04:00", "2026-11-02 05:00"),
        ("America/New_York", date(2026, 11, 1), 0, 3, "2026-11-01 04:00", "2026-11-01 08:00"),
        ("Asia/Kolkata", date(2026, 6, 1), 9, 17, "2026-06-01 03:30", "2026-06-01 11:30"),
        ("America/St_Johns", date(2026, 1, 15), 9, 17, "2026-01-15 12:30", "2026-01-15 20:30"),
        ("America/St_Johns", date(2026, 7, 15), 9, 17, "2026-07-15 11:30", "2026-07-15 19:30"),
        ("Asia/Kathmandu", date(2026, 6, 1), 9, 17, "2026-06-01 03:15", "2026-06-01 11:15"),
        ("Pacific/Kiritimati", date(2026, 6, 1), 0, 24, "2026-05-31 10:00", "2026-06-01 10:00"),
        ("UTC", date(2026, 12, 31), 6, 24, "2026-12-31 06:00", "2027-01-01 00:00"),
    ],
)
def test_send_window_examples(
    zone: str, day: date, start: int, end: int, utc_start: str, utc_end: str
):
    window = send_window(day, zone, start, end)
    assert window.start == datetime.fromisoformat(utc_start).replace(tzinfo=UTC)
    assert window.end == datetime.fromisoformat(utc_end).replace(tzinfo=UTC)
    assert wall(window.start, zone) == local_at(day, start)
    assert wall(window.end, zone) == local_at(day, end)


@PROPERTY
@given(
    st.sampled_from(ZONES),
    days,
    st.integers(min_value=0, max_value=23),
    st.integers(min_value=1, max_value=24),
)
def test_send_window_has_local_wall_times_and_length(zone: str, day: date, start: int, span: int):
    end = min(24, start + span)
    assume(exists(local_at(day, start), zone) and exists(local_at(day, end), zone))
    window = send_window(day, zone, start, end)
    assert wall(window.start, zone) == local_at(day, start)
    assert wall(window.end, zone) == local_at(day, end)
    assert window.start.tzinfo is UTC and window.end.tzinfo is UTC
    assert local_day(window.start, zone) == day
    offset_change = (
        window.end.astimezone(ZoneInfo(zone)).utcoffset()
        - window.start.astimezone(ZoneInfo(zone)).utcoffset()
    )
    expected = (end - start) * HOUR
    if offset_change:  # a DST change inside the window: an hour more or less
        assert abs(offset_change) == timedelta(hours=1)
        assert window.seconds == expected - offset_change.total_seconds()
    else:
        assert window.seconds == expected


def test_window_seconds_never_negative():
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert Window(now, now - timedelta(hours=1)).seconds == 0.0


# --- target_offsets --------------------------------------------------------------------------


@PROPERTY
@given(
    st.integers(min_value=-2, max_value=80),
    st.integers(min_value=0, max_value=86_400),
    st.integers(min_value=1, max_value=3_600),
    st.integers(min_value=0, max_value=7_200),
    seeds,
)
def test_target_offsets_rules(n: int, span: int, min_gap: int, extra: int, seed: int):
    max_gap = min_gap + extra
    offsets = target_offsets(n, span, min_gap, max_gap, random.Random(seed))
    fits = max(0, n) if (n - 1) * min_gap <= span else span // min_gap + 1
    assert len(offsets) == fits
    assert all(-TOL <= o <= span + TOL for o in offsets)
    steps = [b - a for a, b in pairwise(offsets)]
    assert all(step >= min_gap - TOL for step in steps)
    if len(offsets) >= 2 and span / len(offsets) <= max_gap:
        assert all(step <= max_gap + TOL for step in steps)


def test_target_offsets_nothing_for_no_sends_or_negative_span():
    rng = random.Random(1)
    assert target_offsets(0, 100, 1, 2, rng) == []
    assert target_offsets(5, -1, 1, 2, rng) == []


# --- place_slots ----------------------------------------------------------------------------


@st.composite
def placements(draw: st.DrawFn) -> dict:
    window = send_window(
        draw(days),
        draw(st.sampled_from(ZONES)),
        start := draw(st.integers(min_value=0, max_value=20)),
        draw(st.integers(min_value=start + 1, max_value=24)),
    )
    not_before = window.start + timedelta(seconds=draw(st.integers(-7_200, 20 * 3_600)))
    min_gap = draw(st.integers(min_value=1, max_value=1_800))
    busy = draw(
        st.lists(
            st.integers(min_value=-3_600, max_value=int(window.seconds) + 3_600).map(
                lambda s: window.start + timedelta(seconds=s)
            ),
            max_size=12,
        )
    )
    return {
        "n": draw(st.integers(min_value=0, max_value=80)),
        "window": window,
        "not_before": not_before,
        "min_gap_s": min_gap,
        "max_gap_s": min_gap + draw(st.integers(min_value=0, max_value=3_600)),
        "rng": random.Random(draw(seeds)),
        "busy": busy,
    }


@PROPERTY
@given(placements())
def test_place_slots_rules(p: dict):
    slots = place_slots(**p)
    window, min_gap = p["window"], p["min_gap_s"]
    assert len(slots) <= p["n"]
    assert all(max(window.start, p["not_before"]) <= s < window.end for s in slots)
    assert all(b > a for a, b in pairwise(slots))
    assert all(g >= min_gap - TOL for g in gaps(slots))
    assert all(abs((s - b).total_seconds()) >= min_gap - TOL for s in slots for b in p["busy"])


@PROPERTY
@given(placements())
def test_place_slots_gives_exactly_n_when_they_fit_easily(p: dict):
    p["busy"] = []
    start = max(p["window"].start, p["not_before"])
    span = (p["window"].end - start).total_seconds()
    assume(span > 0)
    p["n"] = min(p["n"], int(span / (4 * p["min_gap_s"])))
    slots = place_slots(**p)
    assert len(slots) == p["n"]


@PROPERTY
@given(placements())
def test_place_slots_dense_gaps_stay_below_max_gap(p: dict):
    p["busy"] = []
    start = max(p["window"].start, p["not_before"])
    span = (p["window"].end - start).total_seconds()
    slots = place_slots(**p)
    if len(slots) >= 2 and span / len(slots) <= p["max_gap_s"]:
        assert all(g <= p["max_gap_s"] + TOL for g in gaps(slots))


def test_place_slots_default_settings_fill_a_large_quota():
    """Settings' defaults: 2-10 minutes apart in a 06:00-22:00 window."""
    window = send_window(date(2026, 3, 2), "UTC", 6, 22)
    for n in (1, 50, 150, 200, 300, 400):
        for seed in range(5):
            slots = place_slots(n, window, window.start, 120, 600, random.Random(seed))
            assert len(slots) == n, (n, seed)


def test_place_slots_is_not_on_a_grid():
    window = send_window(date(2026, 3, 2), "Europe/Berlin", 8, 18)
    slots = place_slots(20, window, window.start, 60, 3_600, random.Random(11))
    assert len(slots) == 20
    assert len({s.second for s in slots}) >= 10
    assert len({s.minute for s in slots}) >= 10
    assert len({round(g) for g in gaps(slots)}) >= 10


def test_place_slots_keeps_clear_of_busy_times():
    window = send_window(date(2026, 3, 2), "UTC", 8, 10)
    busy = [window.start + timedelta(minutes=m) for m in range(0, 120, 7)]
    slots = place_slots(10, window, window.start, 150, 600, random.Random(3), busy=busy)
    assert slots
    assert all(abs((s - b).total_seconds()) >= 150 for s in slots for b in busy)


def test_place_slots_with_a_minute_fraction_gap_and_busy_times_terminates():
    """Minute settings such as 1.1 give gaps like 66.00000000000001 s, finer than datetime."""
    window = send_window(date(2026, 3, 2), "UTC", 6, 7)
    busy = [window.start + timedelta(seconds=30 * i) for i in range(120)]
    for gap in (1.1 * 60, 74.0740734, 0.1 * 60):
        with fails_after(seconds=10):  # before the fix this looped forever on the first clash
            slots = place_slots(5, window, window.start, gap, 2 * gap, random.Random(1), busy=busy)
        assert all(abs((s - b).total_seconds()) >= gap - TOL for s in slots for b in busy)


def test_place_slots_nothing_when_window_already_over():
    window = send_window(date(2026, 3, 2), "UTC", 8, 10)
    assert place_slots(5, window, window.end, 60, 600, random.Random(1)) == []
    assert place_slots(0, window, window.start, 60, 600, random.Random(1)) == []


# --- margins ---------------------------------------------------------------------------------


def test_planning_keeps_wider_margins_than_admission():
    """A slot claimed late still leaves admission its margins: planning's are the wider."""
    assert PLAN_END_MARGIN > END_MARGIN >= timedelta(seconds=150)  # 4 sessions + its own, 30 s
    assert PLAN_SPACING_MARGIN > ARRIVAL_MARGIN >= timedelta(seconds=30)  # one SMTP timeout


def test_a_wider_arrival_margin_plans_slots_further_apart():
    """Admission spaces claims by the minimum plus the arrival margin: planning's gaps follow
    it, so a slot is not deferred by spacing however the margin is set."""
    window = Window(datetime(2026, 3, 2, 6, tzinfo=UTC), datetime(2026, 3, 2, 22, tzinfo=UTC))
    _, default_gap, _ = with_margins(window, 120, 600)
    _, wide_gap, wide_max = with_margins(window, 120, 600, timedelta(seconds=90))
    assert default_gap == 120 + PLAN_SPACING_MARGIN.total_seconds()
    assert wide_gap == 120 + 90 + 30  # the minimum, the margin, and the claims' slack
    assert wide_max == 600


@PROPERTY
@given(placements())
def test_slots_planned_with_margins_keep_clear_of_the_end_and_of_each_other(p: dict):
    window, spacing = p["window"], p["min_gap_s"] + PLAN_SPACING_MARGIN.total_seconds()
    p["window"], p["min_gap_s"], p["max_gap_s"] = with_margins(
        window, p["min_gap_s"], p["max_gap_s"]
    )
    slots = place_slots(**p)
    assert all(
        max(window.start, p["not_before"]) <= s < window.end - PLAN_END_MARGIN for s in slots
    )
    assert all(g >= spacing - TOL for g in gaps(slots))
    assert all(abs((s - b).total_seconds()) >= spacing - TOL for s in slots for b in p["busy"])


def test_margins_widen_the_gap_and_shorten_the_window():
    window = send_window(date(2026, 3, 2), "UTC", 6, 22)
    inner, min_gap, max_gap = with_margins(window, 120, 600)
    assert inner == Window(window.start, datetime(2026, 3, 2, 21, 55, tzinfo=UTC))
    assert (min_gap, max_gap) == (180, 600)
    # a typical maximum below the widened minimum is raised to it, never left below
    assert with_margins(window, 120, 150)[1:] == (180, 180)
    # a window shorter than the margin has no room left, never a negative span
    short = Window(window.start, window.start + timedelta(minutes=2))
    assert with_margins(short, 60, 60)[0].seconds == 0
    assert (
        place_slots(3, with_margins(short, 60, 60)[0], short.start, 120, 120, random.Random(1))
        == []
    )


def test_a_dense_day_with_margins_ends_before_the_margin():
    """A day as dense as the default spacing allows still ends `PLAN_END_MARGIN` early."""
    window = send_window(date(2026, 3, 2), "America/New_York", 6, 22)
    inner, min_gap, max_gap = with_margins(window, 120, 600)
    for seed in range(5):
        slots = place_slots(300, inner, inner.start, min_gap, max_gap, random.Random(seed))
        assert len(slots) == 300
        assert max(slots) < window.end - PLAN_END_MARGIN
        assert min(gaps(slots)) >= 180 - TOL


# --- prorating -------------------------------------------------------------------------------


def test_prorate_examples():
    window = send_window(date(2026, 3, 2), "Europe/Berlin", 6, 22)  # 05:00-21:00 UTC
    at = datetime(2026, 3, 2, 19, 0, tzinfo=UTC)  # 20:00 in Berlin: 2 of 16 hours left
    assert share_ahead(window, at) == (timedelta(hours=2), timedelta(hours=16))
    assert prorate(16, window, at) == 2
    assert prorate(10, window, at) == 1  # 1.25, rounded down
    assert prorate(7, window, at) == 0
    assert prorate(10, window, window.start - timedelta(hours=3)) == 10  # before it opened
    assert prorate(10, window, window.end + timedelta(minutes=1)) == 0  # after it closed
    assert prorate(10, Window(window.start, window.start), window.start) == 0


@PROPERTY
@given(
    st.integers(min_value=0, max_value=500),
    st.sampled_from(ZONES),
    days,
    st.integers(min_value=-2 * 3_600, max_value=26 * 3_600),
    st.integers(min_value=0, max_value=3_600),
)
def test_prorate_is_the_share_ahead_rounded_down_and_never_grows_later(
    value: int, zone: str, day: date, offset: int, later: int
):
    window = send_window(day, zone, 6, 22)
    at = window.start + timedelta(seconds=offset)
    ahead, length = share_ahead(window, at)
    got = prorate(value, window, at)
    assert 0 <= got <= value
    assert got - 1e-9 <= value * ahead / length < got + 1 + 1e-9
    assert prorate(value, window, at + timedelta(seconds=later)) <= got


# --- CapLedger -----------------------------------------------------------------------------


@st.composite
def batches(draw: st.DrawFn) -> dict:
    users = draw(st.integers(min_value=1, max_value=5))
    mailboxes = draw(
        st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=users - 1),  # user
                st.integers(min_value=0, max_value=60),  # quota
                st.integers(min_value=6, max_value=9),  # window start hour, UTC
            ),
            min_size=1,
            max_size=25,
        )
    )
    caps = (
        draw(st.integers(min_value=1, max_value=6)),
        draw(st.integers(min_value=5, max_value=300)),
        draw(st.integers(min_value=1, max_value=3)),
        draw(st.integers(min_value=2, max_value=120)),
    )
    return {
        "mailboxes": mailboxes,
        "caps": caps,
        "min_gap": draw(st.integers(min_value=10, max_value=300)),
        "spread": draw(st.integers(min_value=0, max_value=600)),
        "preload": draw(st.lists(st.integers(min_value=0, max_value=5 * 60 - 1), max_size=40)),
        "seed": draw(seeds),
    }


DAY = date(2026, 3, 2)
DAY_START_MINUTE = epoch_minute(datetime.combine(DAY, time(6), UTC))


def plan_batch(b: dict) -> tuple[list[tuple[int, list[datetime]]], Counter, Counter]:
    """Plans every mailbox of the batch through one ledger; returns slots and preloaded load."""
    ledger = CapLedger(*b["caps"])
    gm, _, um, _ = b["caps"]
    pre_global: Counter[int] = Counter()
    pre_user: Counter[tuple[int, int]] = Counter()
    for i, offset in enumerate(b["preload"]):
        minute = DAY_START_MINUTE + offset
        user = i % 2
        if pre_global[minute] < gm and pre_user[user, minute] < um and ledger.fits(user, minute):
            ledger.add_global(minute, 1)
            ledger.add_user(user, minute, 1)
            pre_global[minute] += 1
            pre_user[user, minute] += 1
    rng = random.Random(b["seed"])
    planned = []
    for user, quota, hour in b["mailboxes"]:
        window = send_window(DAY, "UTC", hour, hour + 2)
        slots = place_slots(
            quota,
            window,
            window.start,
            b["min_gap"],
            b["min_gap"] + b["spread"],
            rng,
            fits=partial(ledger.fits, user),
            take=partial(ledger.take, user),
        )
        planned.append((user, slots))
    return planned, pre_global, pre_user


def assert_caps(b: dict, planned: list, pre_global: Counter, pre_user: Counter) -> None:
    gm, gh, um, uh = b["caps"]
    g_minute, g_hour = Counter(pre_global), Counter()
    u_minute, u_hour = Counter(pre_user), Counter()
    for minute, count in pre_global.items():
        g_hour[minute // 60] += count
    for (user, minute), count in pre_user.items():
        u_hour[user, minute // 60] += count
    for user, slots in planned:
        for slot in slots:
            minute = epoch_minute(slot)
            g_minute[minute] += 1
            g_hour[minute // 60] += 1
            u_minute[user, minute] += 1
            u_hour[user, minute // 60] += 1
    assert max(g_minute.values(), default=0) <= gm
    assert max(g_hour.values(), default=0) <= gh
    assert max(u_minute.values(), default=0) <= um
    assert max(u_hour.values(), default=0) <= uh


@settings(max_examples=60, deadline=None)
@given(batches())
def test_shared_ledger_never_lets_a_batch_break_a_cap(b: dict):
    planned, pre_global, pre_user = plan_batch(b)
    assert_caps(b, planned, pre_global, pre_user)
    for (_, quota, _), (_, slots) in zip(b["mailboxes"], planned, strict=True):
        assert len(slots) <= quota
        assert all(g >= b["min_gap"] - TOL for g in gaps(slots))
    # Windows cover 06:00-11:00 UTC: five hours of capacity at most.
    _, gh, _, uh = b["caps"]
    total = sum(len(slots) for _, slots in planned)
    assert total <= 5 * gh - sum(pre_global.values())
    for user in {user for user, _, _ in b["mailboxes"]}:
        mine = sum(len(slots) for u, slots in planned if u == user)
        assert mine <= 5 * uh


def test_demand_beyond_the_caps_comes_back_short_without_breaking_one():
    b = {
        "mailboxes": [(u % 3, 40, 8) for u in range(12)],  # 480 sends in 08:00-10:00
        "caps": (4, 100, 2, 30),
        "min_gap": 60,
        "spread": 120,
        "preload": [],
        "seed": 5,
    }
    planned, pre_global, pre_user = plan_batch(b)
    assert_caps(b, planned, pre_global, pre_user)
    total = sum(len(slots) for _, slots in planned)
    assert 0 < total <= 3 * 2 * 30  # three users, two hours, 30 an hour each
    assert total < 480


def test_ledger_counts_preloaded_sends():
    ledger = CapLedger(2, 3, 1, 2)
    ledger.add_global(600, 1)
    ledger.add_user(7, 600, 1)
    assert not ledger.fits(7, 600)  # user minute full
    assert ledger.fits(8, 600)
    ledger.take(8, 600)
    assert not ledger.fits(9, 600)  # global minute full
    assert ledger.fits(9, 601)
    ledger.take(9, 601)
    assert not ledger.fits(10, 602)  # global hour full (600-659)
    assert ledger.fits(10, 660)
