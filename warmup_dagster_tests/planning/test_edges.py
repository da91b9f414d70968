"""The rules' edges through planning, on SQLite and PostgreSQL: margins before a window's end and
between sends of one mailbox, and a first day prorated to what is left of its window."""

import io
import itertools
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster.core.slots import PLAN_END_MARGIN, PLAN_SPACING_MARGIN, send_window
from warmup_dagster.db.models import DailyQuota, Mailbox, WarmupJob
from warmup_dagster.mailboxes.importer import import_mailboxes
from warmup_dagster_tests.mailboxes.csvdata import csv_text, row
from warmup_dagster_tests.planning.conftest import pool_rows

NO_VARIANCE = {"WARMUP_DAILY_VARIANCE": "0"}
LATE = "late@newcomer.example"


def _import(engine, cipher, clock, rows) -> list[str]:
    import_mailboxes(engine, io.StringIO(csv_text(rows)), cipher=cipher, clock=clock)
    return [r["email"] for r in rows]


def _slots(engine, email):
    with Session(engine) as s:
        box = s.scalars(select(Mailbox).where(Mailbox.email == email)).one()
        jobs = s.scalars(
            select(WarmupJob).where(WarmupJob.mailbox_id == box.id).order_by(WarmupJob.due_at)
        ).all()
        return box, jobs


def test_a_dense_evening_ends_a_margin_before_the_window(engine, cipher, clock, plan):
    """Three hours left for 30 sends each: the slots crowd toward the end, and stop before the
    margin; one mailbox's slots stay the minimum plus the margin apart."""
    emails = _import(
        engine, cipher, clock, pool_rows(timezone="UTC", daily_limit=30, ramp_start=30)
    )
    clock.advance(hours=14)  # 19:00 UTC
    plans = [p for p in plan(emails, env=NO_VARIANCE) if p.local_date == clock.now().date()]
    assert plans and all(p.quota.value == 30 for p in plans)  # added before it opened: full
    end = send_window(clock.now().date(), "UTC", 6, 22).end
    latest = []
    for email in emails:
        _, jobs = _slots(engine, email)
        today = [j.due_at for j in jobs if j.local_date == clock.now().date()]
        assert today and all(clock.now() < t < end - PLAN_END_MARGIN for t in today)
        spacing = timedelta(minutes=2) + PLAN_SPACING_MARGIN
        assert all(b - a >= spacing for a, b in itertools.pairwise(today))
        latest.append(max(today))
    assert max(latest) > end - PLAN_END_MARGIN - timedelta(minutes=15)  # really at the edge


def _newcomer(engine, cipher, clock, pool):
    """The pool, added at 05:00 UTC, then a mailbox added at 20:00 in Berlin (19:00 UTC),
    whose 06-22 window has 2 of its 16 hours left."""
    clock.advance(hours=14)
    late = row(LATE, "newcomer", timezone="Europe/Berlin", daily_limit=40, ramp_start=16)
    late["ramp_step"] = 4
    _import(engine, cipher, clock, [late])
    return [*pool, LATE]


def _quota_rows(engine, email):
    with Session(engine) as s:
        box = s.scalars(select(Mailbox).where(Mailbox.email == email)).one()
        rows = s.scalars(select(DailyQuota).where(DailyQuota.mailbox_id == box.id)).all()
        return {r.local_date: r for r in rows}


def test_a_first_day_is_prorated_to_the_window_left(engine, cipher, clock, pool, plan):
    emails = _newcomer(engine, cipher, clock, pool)
    monday = clock.now().date()
    tuesday = monday + timedelta(days=1)
    plans = {(p.email, p.local_date): p for p in plan(emails, env=NO_VARIANCE)}
    first = plans[LATE, monday]
    assert first.quota.value == 2 and first.planned == 2  # 16 x 2/16
    assert "first day: added with 2 h of the 16 h window left, 16 x 2/16 = 2" in first.reason
    assert plans[LATE, tuesday].quota.value == 20 and not plans[LATE, tuesday].reason  # day two
    _, jobs = _slots(engine, LATE)
    window = send_window(monday, "Europe/Berlin", 6, 22)
    assert [j.local_date for j in jobs].count(monday) == 2
    assert all(window.end - timedelta(hours=2) <= j.due_at for j in jobs if j.local_date == monday)
    stored = _quota_rows(engine, LATE)
    assert stored[monday].quota == 2 and "16 x 2/16 = 2" in stored[monday].reason
    # the pool's Monday (Kolkata's is over at 19:00 UTC) is not its first day's late evening
    pool_monday = {e: p for (e, day), p in plans.items() if e != LATE and day == monday}
    assert len(pool_monday) == 16 and {p.quota.value for p in pool_monday.values()} == {10}

    # A replan later the same day neither shrinks the first day nor prorates a full one.
    clock.advance(minutes=40)
    again = {(p.email, p.local_date): p for p in plan(emails, env=NO_VARIANCE, seed=3)}
    assert again[LATE, monday].quota.value == 2
    assert len([j for j in _slots(engine, LATE)[1] if j.local_date == monday]) == 2
    for email, p in pool_monday.items():
        assert again[email, monday].quota.value == p.quota.value


def test_a_pool_added_at_5_utc_is_prorated_only_where_its_window_had_opened(
    engine, pool, plan, clock
):
    """05:00 UTC is before the 06:00 opening in UTC, Berlin, New York and St John's, and 10:30
    in Kolkata: 4.5 of its 16 hours had gone, 10 x 11.5/16 = 7.19."""
    monday_plans = [p for p in plan(pool, env=NO_VARIANCE) if p.local_date == clock.now().date()]
    quotas = {p.email: p.quota.value for p in monday_plans}
    assert len(quotas) == 20
    assert quotas == {e: 7 if "@owner3-" in e else 10 for e in pool}
    kolkata = next(p for p in monday_plans if "@owner3-" in p.email)
    assert "10 x 11.5/16 = 7 (rounded down)" in kolkata.reason


def test_next_day_mode_starts_the_warmup_the_next_day(engine, cipher, clock, pool, plan):
    emails = _newcomer(engine, cipher, clock, pool)
    monday = clock.now().date()
    tuesday = monday + timedelta(days=1)
    env = {**NO_VARIANCE, "WARMUP_FIRST_DAY": "next_day"}
    plans = {(p.email, p.local_date): p for p in plan(emails, env=env)}
    assert plans[LATE, monday].quota.value == 0
    assert "warmup starts tomorrow" in plans[LATE, monday].reason
    assert plans[LATE, tuesday].quota.value == 16  # the ramp's first day, in full
    assert plans[LATE, tuesday].planned == 16
    _, jobs = _slots(engine, LATE)
    assert {j.local_date for j in jobs} == {tuesday}
    assert _quota_rows(engine, LATE)[monday].quota == 0


@pytest.mark.parametrize("mode", ["prorate", "next_day"])
def test_a_mailbox_added_before_its_window_opens_is_not_lowered(engine, cipher, clock, plan, mode):
    emails = _import(engine, cipher, clock, pool_rows(timezone="UTC"))  # 05:00 UTC
    clock.advance(hours=12)
    plans = plan(emails, env={**NO_VARIANCE, "WARMUP_FIRST_DAY": mode})
    monday = clock.now().date()
    assert all(p.quota.value == 10 and not p.reason for p in plans if p.local_date == monday)
