"""Planning against a real database (SQLite and PostgreSQL)."""

import io
import itertools
import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from warmup_dagster.core.content import is_warmup_message_id, job_message_id, token_key
from warmup_dagster.core.slots import PLAN_END_MARGIN, PLAN_SPACING_MARGIN, send_window
from warmup_dagster.db.models import (
    DailyQuota,
    JobKind,
    JobStatus,
    Mailbox,
    MailboxState,
    Plan,
    User,
    WarmupJob,
)
from warmup_dagster.mailboxes.importer import import_mailboxes
from warmup_dagster.mailboxes.service import set_state
from warmup_dagster_tests.conftest import TEST_SECRET
from warmup_dagster_tests.factories import add_job
from warmup_dagster_tests.mailboxes.csvdata import csv_text
from warmup_dagster_tests.planning.conftest import at_once, pool_rows


def _jobs(engine):
    with Session(engine) as s:
        return s.scalars(select(WarmupJob).order_by(WarmupJob.scheduled_at)).all()


def _boxes(engine):
    with Session(engine) as s:
        return {b.id: b for b in s.scalars(select(Mailbox))}


def test_plan_writes_each_quota_inside_windows_with_valid_pairs(engine, pool, plan, clock):
    plans = plan(pool)
    boxes = _boxes(engine)
    jobs = _jobs(engine)
    assert len(jobs) == sum(p.planned for p in plans) > 0
    assert all(p.shortfall == 0 for p in plans), [p.reason for p in plans if p.shortfall]
    for p in plans:
        assert p.planned == p.quota.value  # nothing sent yet: the whole quota is planned
    windows = {(p.mailbox_id, p.local_date): p for p in plans}
    by_box_day = Counter((j.mailbox_id, j.local_date) for j in jobs)
    assert by_box_day == {k: p.planned for k, p in windows.items() if p.planned}
    key = token_key(TEST_SECRET)
    for job in jobs:
        sender, recipient = boxes[job.mailbox_id], boxes[job.recipient_mailbox_id]
        assert sender.user_id != recipient.user_id and sender.domain != recipient.domain
        assert job.status is JobStatus.PENDING and job.attempts == 0
        assert job.scheduled_at >= clock.now()
        assert job.message_id is None  # set at the first attempt, derived from the job:
        message_id, _ = job_message_id(key, job.id, job.content_seed, sender.domain)
        assert message_id.endswith(f"@{sender.domain}>")
        assert is_warmup_message_id(key, message_id)
    derived = {job_message_id(key, j.id, j.content_seed, "x.test") for j in jobs}
    assert len(derived) == len(jobs)
    # margins: consecutive sends of one mailbox at least WARMUP_SAME_MAILBOX_DELAY_MIN plus the
    # spacing margin apart, and none later than the end margin before its window's end
    by_box = {}
    for job in jobs:
        by_box.setdefault(job.mailbox_id, []).append(job.scheduled_at)
        box = boxes[job.mailbox_id]
        window = send_window(job.local_date, box.timezone, 6, 22)
        assert window.start <= job.scheduled_at < window.end - PLAN_END_MARGIN
    spacing = timedelta(minutes=2) + PLAN_SPACING_MARGIN
    for times in by_box.values():
        assert all(b - a >= spacing for a, b in itertools.pairwise(times))
    with Session(engine) as s:
        rows = s.scalars(select(DailyQuota)).all()
    assert {(r.mailbox_id, r.local_date): r.planned for r in rows} == {
        k: p.planned for k, p in windows.items()
    }


def test_replanning_mid_day_keeps_sent_jobs_and_plans_only_what_is_owed(engine, pool, plan, clock):
    first = plan(pool)
    clock.advance(hours=3)
    now = clock.now()
    with Session(engine) as s, s.begin():
        due = s.scalars(select(WarmupJob).where(WarmupJob.scheduled_at < now)).all()
        for job in due:
            job.status, job.sent_at, job.attempts = JobStatus.SENT, job.scheduled_at, 1
        sent = {(j.id, j.message_id) for j in due}
    assert sent, "three hours in, some slots have passed"
    second = plan(pool, seed=2)
    jobs = _jobs(engine)
    still = {(j.id, j.message_id) for j in jobs if j.status is JobStatus.SENT}
    assert still == sent  # sent jobs are never touched
    new = [j for j in jobs if j.status is JobStatus.PENDING]
    assert all(j.scheduled_at >= now for j in new)
    quotas = {(p.mailbox_id, p.local_date): p.quota.value for p in first}
    again = {(p.mailbox_id, p.local_date): p.quota.value for p in second}
    assert all(again[k] == v for k, v in quotas.items() if k in again)  # a day's quota is stable
    per_day = Counter((j.mailbox_id, j.local_date) for j in jobs)
    for key, count in per_day.items():
        assert count == {**again, **quotas}[key]  # sent + newly planned == quota: nothing twice
    assert sum(p.sent for p in second) == len(sent)


def test_replanning_leaves_pending_replies_alone(engine, pool, plan):
    plan(pool)
    with Session(engine) as s, s.begin():
        job = s.scalars(select(WarmupJob).order_by(WarmupJob.id)).first()
        box, to = s.get(Mailbox, job.mailbox_id), s.get(Mailbox, job.recipient_mailbox_id)
        add_job(
            s,
            box,
            to,
            job.scheduled_at,
            JobStatus.PENDING,
            kind=JobKind.REPLY,
            local_date=job.local_date,
            message_id="<reply-1@example.test>",
        )
    plan(pool, seed=2)
    jobs = _jobs(engine)
    assert [j.message_id for j in jobs if j.kind is JobKind.REPLY] == ["<reply-1@example.test>"]
    assert sum(j.kind is JobKind.SEND for j in jobs) > 0


def test_paused_weekend_and_plan_limits_lower_the_quota_with_a_reason(engine, pool, plan, clock):
    set_state(engine, pool[0], MailboxState.PAUSED, "owner asked", clock)
    with Session(engine) as s, s.begin():
        s.execute(update(Mailbox).where(Mailbox.email == pool[1]).values(weekdays_only=True))
    clock.advance(days=5)  # Saturday 7 March
    plans = {(p.email, p.local_date.weekday()): p for p in plan(pool)}
    paused = [p for (email, _), p in plans.items() if email == pool[0]]
    assert paused and all(p.quota.value == 0 and "owner asked" in p.reason for p in paused)
    weekend = [p for (email, wd), p in plans.items() if email == pool[1] and wd >= 5]
    assert weekend and all(p.quota.value == 0 and "weekend" in p.reason for p in weekend)
    assert not [j for j in _jobs(engine) if j.mailbox_id in {p.mailbox_id for p in paused}]


def _owner0_on_a_plan_of(engine, clock, limit: int) -> None:
    with Session(engine) as s, s.begin():
        tiny = Plan(name="tiny", max_mailboxes=10, daily_send_limit=limit, created_at=clock.now())
        s.add(tiny)
        s.flush()
        s.execute(update(User).where(User.name == "owner0").values(plan_id=tiny.id))


def _owner0_quota_per_day(plans) -> Counter:
    per_day = Counter()
    for p in plans:
        if "@owner0-" in p.email:
            per_day[p.local_date] += p.quota.value
    return per_day


def test_owner_plan_limit_caps_the_days_total(engine, pool, plan, clock):
    _owner0_on_a_plan_of(engine, clock, 15)
    plans = plan(pool)
    per_day = _owner0_quota_per_day(plans)
    assert per_day and all(total <= 15 for total in per_day.values())
    assert any("plan allows" in p.reason for p in plans if "@owner0-" in p.email)


def test_owner_plan_limit_holds_across_the_owners_timezones(engine, cipher, clock, plan):
    """At 05:00 UTC on Monday it is Monday in London and in New York: the owner's mailboxes in
    both share one limit for that date, as the sender enforces it."""
    rows = pool_rows()
    for r in rows:
        if r["user"] == "owner0" and r["email"].startswith(("box2", "box3")):
            r["timezone"] = "America/New_York"
    import_mailboxes(engine, io.StringIO(csv_text(rows)), cipher=cipher, clock=clock)
    _owner0_on_a_plan_of(engine, clock, 15)
    plans = plan([r["email"] for r in rows])
    monday = clock.now().date()
    zones = {r["email"]: r["timezone"] for r in rows}
    owner0_monday = {
        zones[p.email] for p in plans if "@owner0-" in p.email and p.local_date == monday
    }
    assert len(owner0_monday) == 2  # both zones plan Monday
    per_day = _owner0_quota_per_day(plans)
    assert per_day[monday] == 15  # the whole limit, once
    assert all(total <= 15 for total in per_day.values())


def test_caps_too_small_give_a_shortfall_with_numbers_never_a_broken_cap(engine, pool, plan):
    # 4 an hour can't carry 20 mailboxes' quotas (about 220 sends) in the 48 hours planned
    env = {"WARMUP_GLOBAL_SENDS_PER_HOUR": "4", "WARMUP_GLOBAL_SENDS_PER_MINUTE": "2",
           "WARMUP_USER_SENDS_PER_MINUTE": "1", "WARMUP_USER_SENDS_PER_HOUR": "2"}  # fmt: skip
    plans = plan(pool, env=env)
    assert sum(p.shortfall for p in plans) > 0
    assert any("did not fit the window and rate caps" in p.reason for p in plans)
    jobs = _jobs(engine)
    per_hour = Counter(int(j.scheduled_at.timestamp()) // 3600 for j in jobs)
    per_minute = Counter(int(j.scheduled_at.timestamp()) // 60 for j in jobs)
    assert max(per_hour.values()) <= 4 and max(per_minute.values()) <= 2


def test_two_concurrent_plans_of_the_same_mailboxes_plan_once(engine, pool, plan):
    results, errors = [], []

    def run(seed):
        try:
            results.append(plan(pool, seed=seed))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    quotas = {(p.mailbox_id, p.local_date): p.quota.value for p in results[0]}
    per_day = Counter((j.mailbox_id, j.local_date) for j in _jobs(engine))
    assert per_day == {k: v for k, v in quotas.items() if v}


def test_two_daily_plans_at_once_plan_each_mailbox_day_once(engine, pool, plan):
    """The daily pass twice at one moment (`replan=False`, a tick evaluated twice, a backfill
    beside it): whichever takes the planner's lock first plans each day, the other finds it
    planned."""
    first, second = at_once(
        lambda: plan(pool, replan=False, seed=1), lambda: plan(pool, replan=False, seed=2)
    )
    planned = Counter((p.mailbox_id, p.local_date) for p in first + second)
    assert planned and set(planned.values()) == {1}  # each mailbox-day planned by one of them
    quotas = {(p.mailbox_id, p.local_date): p.quota.value for p in first + second}
    per_day = Counter((j.mailbox_id, j.local_date) for j in _jobs(engine))
    assert per_day == {k: v for k, v in quotas.items() if v}
    with Session(engine) as s:
        rows = s.scalars(select(DailyQuota)).all()
    assert {(r.mailbox_id, r.local_date): r.planned for r in rows} == {
        (p.mailbox_id, p.local_date): p.planned for p in first + second
    }


def test_daily_mode_leaves_planned_days_alone(engine, pool, plan):
    plan(pool)
    before = {(j.id, j.scheduled_at) for j in _jobs(engine)}
    assert plan(pool, replan=False, seed=5) == []
    assert {(j.id, j.scheduled_at) for j in _jobs(engine)} == before


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_planning_in_parts_shares_caps_and_inbound_across_parts(
    engine, pool, plan, monkeypatch, seed
):
    """A call planned in several parts holds the caps and spreads inbound as one part would."""
    import warmup_dagster.planning.planner as planner

    monkeypatch.setattr(planner, "PART", 3)
    env = {"WARMUP_GLOBAL_SENDS_PER_MINUTE": "2", "WARMUP_USER_SENDS_PER_MINUTE": "1"}
    plans = plan(pool, env=env, seed=seed)
    assert len(plans) > 3 * 2  # really several parts
    jobs = _jobs(engine)
    assert len(jobs) == sum(p.planned for p in plans)
    per_minute = Counter(int(j.scheduled_at.timestamp()) // 60 for j in jobs)
    per_user_minute = Counter((j.user_id, int(j.scheduled_at.timestamp()) // 60) for j in jobs)
    assert max(per_minute.values()) <= 2 and max(per_user_minute.values()) <= 1
    # Fair inbound, on the day every zone shares (a job's day is its sender's local day): no
    # mailbox receives more than its own quota of the day, plus the one the pairing rules
    # allow when a sender would otherwise write to the same mailbox twice.
    day = min(j.local_date for j in jobs)
    inbound = Counter(j.recipient_mailbox_id for j in jobs if j.local_date == day)
    quota = {p.mailbox_id: p.quota.value for p in plans if p.local_date == day}
    assert sum(inbound.values()) > 0
    for box_id, received in inbound.items():
        assert received <= quota[box_id] + 1, (box_id, received, quota[box_id])
