"""The send-time caps: `admit` decides each due job against every cap."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmup_dagster.core.admission import (
    ARRIVAL_MARGIN,
    END_MARGIN,
    Candidate,
    Limits,
    Scope,
    admit,
    carried_spans,
    counter_keys,
)
from warmup_dagster.core.slots import send_window

NOW = datetime(2026, 3, 2, 9, 30, 20, tzinfo=UTC)  # a Monday, inside a 06-22 UTC window
DAY = NOW.date()
MINUTE = int(NOW.timestamp()) // 60
LIMITS = Limits(
    global_per_minute=100,
    global_per_hour=5000,
    user_per_minute=5,
    user_per_hour=200,
    min_spacing=timedelta(minutes=2),
    window_start_hour=6,
    window_end_hour=22,
)


def job(n: int, box: int | None = None, user: int = 1, **kw: object) -> Candidate:
    values: dict = {
        "job_id": n,
        "mailbox_id": n if box is None else box,
        "user_id": user,
        "local_date": DAY,
        "timezone": "UTC",
        "counts_toward_quota": True,
    }
    values.update(kw)
    return Candidate(**values)


def decide(
    jobs, now=NOW, limits=LIMITS, counts=None, last=None, quotas=None, plans=None, carried=None
):
    return admit(jobs, now, limits, counts or {}, last or {}, quotas or {}, plans or {}, carried)


def test_admits_and_counts_every_scope():
    d = decide([job(1, user=7)])
    assert [c.job_id for c in d.admitted] == [1]
    assert d.taken == {
        (Scope.GLOBAL_MINUTE, 0, MINUTE): 1,
        (Scope.GLOBAL_HOUR, 0, MINUTE // 60): 1,
        (Scope.USER_MINUTE, 7, MINUTE): 1,
        (Scope.USER_HOUR, 7, MINUTE // 60): 1,
        (Scope.USER_DAY, 7, DAY.toordinal()): 1,
        (Scope.MAILBOX_DAY, 1, DAY.toordinal()): 1,
    }


def test_outside_the_window_waits_for_its_next_opening():
    early = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
    late = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)
    d = decide([job(1)], now=early)
    assert d.deferred == [
        (job(1), datetime(2026, 3, 2, 6, 0, tzinfo=UTC), "outside the send window")
    ]
    d = decide([job(1)], now=late)
    assert d.refused == [(job(1), f"expired: its day ({DAY}) is over")]
    tomorrow = DAY + timedelta(days=1)
    d = decide([job(1, local_date=tomorrow)], now=late)
    assert d.deferred[0][1] == datetime(2026, 3, 3, 6, 0, tzinfo=UTC)
    # Asia/Kolkata (+05:30): 09:30 UTC is 15:00 local, inside; 17:00 UTC is 22:30 local, after.
    assert decide([job(1, timezone="Asia/Kolkata")]).admitted
    kolkata_tomorrow = job(1, timezone="Asia/Kolkata", local_date=DAY + timedelta(days=1))
    d = decide([kolkata_tomorrow], now=datetime(2026, 3, 2, 17, 0, tzinfo=UTC))
    assert d.deferred[0][1] == datetime(2026, 3, 3, 0, 30, tzinfo=UTC)


def test_a_job_of_a_day_that_is_over_expires():
    yesterday = DAY - timedelta(days=1)
    d = decide([job(1, local_date=yesterday)])
    assert not d.admitted and d.refused[0][1] == f"expired: its day ({yesterday}) is over"
    assert not d.taken


def test_same_mailbox_spacing():
    """Claims of one mailbox are the minimum spacing plus `ARRIVAL_MARGIN` apart."""
    spacing = timedelta(minutes=2) + ARRIVAL_MARGIN
    d = decide([job(1, box=9), job(2, box=9)])
    assert [c.job_id for c in d.admitted] == [1]
    assert d.deferred == [(job(2, box=9), NOW + spacing, "mailbox spacing")]
    d = decide([job(3, box=9)], last={9: NOW - timedelta(seconds=30)})
    assert d.deferred[0][1] == NOW - timedelta(seconds=30) + spacing
    # exactly the minimum is not enough: arrival jitter would bring the two closer
    d = decide([job(3, box=9)], last={9: NOW - timedelta(minutes=2)})
    assert not d.admitted and d.deferred[0][1] == NOW + ARRIVAL_MARGIN
    assert decide([job(3, box=9)], last={9: NOW - spacing}).admitted


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10 * 60 * 1000), st.integers(1, 600), st.integers(0, 120))
def test_a_claim_within_min_spacing_plus_margin_is_deferred_to_its_end(
    since_ms: int, min_spacing_s: int, margin_s: int
):
    limits = Limits(
        100, 5000, 5, 200, timedelta(seconds=min_spacing_s), 6, 22,
        arrival_margin=timedelta(seconds=margin_s),
    )  # fmt: skip
    previous = NOW - timedelta(milliseconds=since_ms)
    d = decide([job(1, box=9)], limits=limits, last={9: previous})
    earliest = previous + timedelta(seconds=min_spacing_s + margin_s)
    if earliest > NOW:
        assert d.deferred == [(job(1, box=9), earliest, "mailbox spacing")] and not d.admitted
    else:
        assert d.admitted == [job(1, box=9)]


def test_no_claim_so_close_to_the_windows_end_that_it_would_arrive_after_it():
    end = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)
    tomorrow = DAY + timedelta(days=1)
    assert decide([job(1)], now=end - END_MARGIN - timedelta(microseconds=1)).admitted
    d = decide([job(1)], now=end - END_MARGIN)
    assert d.refused == [(job(1), f"expired: its day's window ({DAY}) ends within 3 minutes")]
    assert not d.taken
    # a job of the next day waits for that day's opening
    d = decide([job(1, local_date=tomorrow)], now=end - timedelta(minutes=1))
    assert d.deferred == [
        (
            job(1, local_date=tomorrow),
            datetime(2026, 3, 3, 6, tzinfo=UTC),
            "outside the send window",
        )
    ]
    # a reclaimed job too: sent now, it could arrive after the window
    assert decide([job(1, reclaimed=True)], now=end - timedelta(seconds=1)).refused


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]),
    st.integers(-30 * 60, 30 * 60),
    st.integers(0, 30 * 60),
)
def test_only_claims_a_margin_before_the_windows_end_are_admitted(
    zone: str, before_end_s: int, margin_s: int
):
    limits = Limits(
        100, 5000, 5, 200, timedelta(minutes=2), 6, 22, end_margin=timedelta(seconds=margin_s)
    )
    window = send_window(DAY, zone, 6, 22)
    now = window.end - timedelta(seconds=before_end_s)
    d = decide([job(1, timezone=zone)], now=now, limits=limits)
    if now < window.end - limits.end_margin:
        assert d.admitted
    else:
        assert not d.admitted and d.refused and d.refused[0][1].startswith("expired: ")


def test_user_minute_and_hour_caps_defer_to_the_next_period():
    d = decide([job(n, user=1) for n in range(1, 8)])
    assert len(d.admitted) == 5
    assert {due for _, due, _ in d.deferred} == {datetime(2026, 3, 2, 9, 31, tzinfo=UTC)}
    full_hour = {(Scope.USER_HOUR, 1, MINUTE // 60): 200}
    d = decide([job(1)], counts=full_hour)
    assert d.deferred[0][1:] == (datetime(2026, 3, 2, 10, 0, tzinfo=UTC), "owner's per-hour cap")


def test_claims_just_before_a_minute_count_against_its_caps_too():
    """Mail claimed in the arrival margin before a minute may arrive in it: the minute's caps
    hold at arrival only if those claims count against them as well as their own minute."""
    carried = {(Scope.USER_MINUTE, 1, MINUTE): 3, (Scope.GLOBAL_MINUTE, 0, MINUTE): 99}
    d = decide([job(n, user=1) for n in range(1, 8)], carried=carried)
    assert [c.job_id for c in d.admitted] == [1] and d.blocked_until is not None
    d = decide([job(n, user=1) for n in range(1, 8)], carried={(Scope.USER_MINUTE, 1, MINUTE): 3})
    assert len(d.admitted) == 2  # 5 a minute, 3 of them carried
    assert {why for *_, why in d.deferred} == {"owner's per-minute cap"}
    # the carried claims are not taken again: they are counted in their own minute already
    assert d.taken[(Scope.USER_MINUTE, 1, MINUTE)] == 2
    hour = {(Scope.USER_HOUR, 1, MINUTE // 60): 200}
    assert decide([job(1)], carried=hour).deferred[0][2] == "owner's per-hour cap"


def test_the_carried_spans_are_the_margin_before_the_minute_and_the_hour():
    minute, hour = carried_spans(NOW, timedelta(seconds=30))
    assert minute == (datetime(2026, 3, 2, 9, 29, 30, tzinfo=UTC), NOW.replace(second=0))
    assert hour == (datetime(2026, 3, 2, 8, 59, 30, tzinfo=UTC), NOW.replace(minute=0, second=0))
    wide, _ = carried_spans(NOW, timedelta(seconds=90))  # wider than a minute: two minutes' tails
    assert wide == (datetime(2026, 3, 2, 9, 28, 30, tzinfo=UTC), NOW.replace(second=0))


def test_global_caps_stop_the_batch():
    d = decide([job(n, user=n) for n in range(1, 6)], counts={(Scope.GLOBAL_MINUTE, 0, MINUTE): 98})
    assert [c.job_id for c in d.admitted] == [1, 2]
    assert not d.deferred
    assert d.blocked_until == datetime(2026, 3, 2, 9, 31, tzinfo=UTC)
    d = decide([job(1)], counts={(Scope.GLOBAL_HOUR, 0, MINUTE // 60): 5000})
    assert not d.admitted and d.blocked_until == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_day_limits_refuse():
    ordinal = DAY.toordinal()
    d = decide([job(1)], quotas={(1, DAY): 3}, counts={(Scope.MAILBOX_DAY, 1, ordinal): 3})
    assert not d.admitted and "quota of 3" in d.refused[0][1]
    d = decide([job(1, user=4)], plans={4: 10}, counts={(Scope.USER_DAY, 4, ordinal): 10})
    assert not d.admitted and "plan allows 10" in d.refused[0][1]
    # replies don't use the mailbox's quota
    reply = job(1, counts_toward_quota=False)
    assert decide([reply], quotas={(1, DAY): 0}).admitted


def test_a_reclaimed_job_keeps_its_day_reservation():
    c = job(1, reclaimed=True)
    d = decide([c], quotas={(1, DAY): 1}, counts={(Scope.MAILBOX_DAY, 1, DAY.toordinal()): 1})
    assert d.admitted == [c]
    assert (Scope.MAILBOX_DAY, 1, DAY.toordinal()) not in d.taken


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 6), st.integers(1, 3), st.booleans()), min_size=1, max_size=60
    ),
    st.integers(1, 8),
    st.integers(1, 4),
    st.dictionaries(st.integers(1, 6), st.integers(0, 4)),
)
def test_no_decision_breaks_a_cap(rows, global_minute, user_minute, quotas):
    limits = Limits(global_minute, 1000, user_minute, 1000, timedelta(minutes=2), 6, 22)
    jobs = [
        job(n, box=box, user=user, counts_toward_quota=q)
        for n, (box, user, q) in enumerate(rows, 1)
    ]
    d = decide(jobs, limits=limits, quotas={(box, DAY): q for box, q in quotas.items()})
    decided = [c.job_id for c in d.admitted] + [c.job_id for c, *_ in d.deferred]
    decided += [c.job_id for c, _ in d.refused]
    assert len(decided) == len(set(decided))
    assert len(d.admitted) <= global_minute
    per_user: dict[int, int] = {}
    per_box: dict[int, int] = {}
    for c in d.admitted:
        per_user[c.user_id] = per_user.get(c.user_id, 0) + 1
        per_box[c.mailbox_id] = per_box.get(c.mailbox_id, 0) + 1
    assert all(n <= user_minute for n in per_user.values())
    assert all(n == 1 for n in per_box.values())  # spacing: one send per mailbox per claim
    for box, quota in quotas.items():
        assert sum(1 for c in d.admitted if c.mailbox_id == box and c.counts_toward_quota) <= quota
    assert sum(d.taken[k] for k in d.taken if k[0] is Scope.GLOBAL_MINUTE) == len(d.admitted)
    if len(decided) < len(jobs):
        assert d.blocked_until is not None  # only the global cap leaves jobs undecided
    assert all(key in d.taken for c in d.admitted for key in counter_keys(c, NOW))


def test_date_of_the_job_not_of_the_claim_keys_the_day_counts():
    # 01:00 UTC on the 3rd is still the 2nd in New York, inside a 00-24 window
    late = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)
    limits = Limits(100, 5000, 5, 200, timedelta(minutes=2), 0, 24)
    d = decide([job(1, timezone="America/New_York")], now=late, limits=limits)
    assert (Scope.MAILBOX_DAY, 1, DAY.toordinal()) in d.taken
    assert (Scope.MAILBOX_DAY, 1, DAY.toordinal() + 1) not in d.taken


def test_a_held_mailboxs_jobs_wait_without_a_count_and_expire_with_their_day():
    until = NOW + timedelta(minutes=15)
    reclaimed = job(3, box=1, reclaimed=True)
    d = admit(
        [job(1), job(2), reclaimed],
        NOW,
        LIMITS,
        {},
        {},
        {},
        {},
        held={1: "health paused: spam rate 70%"},
        hold_until=until,
    )
    assert [c.job_id for c in d.admitted] == [2]
    assert d.deferred == [
        (job(1), until, "health paused: spam rate 70%"),
        (reclaimed, until, "health paused: spam rate 70%"),
    ]
    assert d.taken == Counter(counter_keys(job(2), NOW))  # only the admitted job counted
    # held even while the global cap is full: it does not wait for that cap
    full = {(Scope.GLOBAL_MINUTE, 0, MINUTE): LIMITS.global_per_minute}
    d = admit([job(1)], NOW, LIMITS, full, {}, {}, {}, held={1: "held"}, hold_until=until)
    assert d.deferred == [(job(1), until, "held")] and d.blocked_until is None
    # its day over: refused as any job is
    late = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)
    d = admit([job(1)], late, LIMITS, {}, {}, {}, {}, held={1: "held"}, hold_until=late)
    assert d.refused == [(job(1), f"expired: its day ({DAY}) is over")]


def test_held_mailboxes_need_a_time_to_look_again():
    with pytest.raises(ValueError, match="hold_until"):
        admit([job(1)], NOW, LIMITS, {}, {}, {}, {}, held={1: "held"})
