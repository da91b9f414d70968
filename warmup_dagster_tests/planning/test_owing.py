"""The catch-up's question, on both databases: which mailboxes owe what a re-plan can place."""

from collections import Counter
from datetime import timedelta
from itertools import pairwise

from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster.cli import main
from warmup_dagster.db.models import DailyQuota, JobStatus, Mailbox, MailboxState, WarmupJob
from warmup_dagster.mailboxes.service import set_state
from warmup_dagster.partitions import selection_text
from warmup_dagster.planning.owing import owing
from warmup_dagster.queue.states import DELIVERED, QUEUED
from warmup_dagster.settings import load_settings
from warmup_dagster_tests.factories import log_send
from warmup_dagster_tests.planning.conftest import at_once


def _fail_and_send_due(engine, now, emails=None, held=()):
    """Every pending job due before `now` ends, but those of mailboxes `held` (paused): those
    of `emails` (None: all) FAILED, the others SENT (logged). Returns the FAILED count per
    mailbox id."""
    failed: dict[int, int] = {}
    with Session(engine) as s, s.begin():
        boxes = {b.id: b.email for b in s.scalars(select(Mailbox))}
        pending = WarmupJob.status == JobStatus.PENDING
        for job in s.scalars(select(WarmupJob).where(pending, WarmupJob.due_at < now)):
            if boxes[job.mailbox_id] in held:
                continue
            job.attempts = 1
            job.message_id = f"<{job.id}@test>"
            if emails is None or boxes[job.mailbox_id] in emails:
                job.status = JobStatus.FAILED
                failed[job.mailbox_id] = failed.get(job.mailbox_id, 0) + 1
            else:
                job.status, job.sent_at = JobStatus.SENT, job.due_at
                log_send(s, job, job.due_at)
    return failed


def test_only_mailboxes_that_lost_jobs_owe_and_a_replan_settles_them(engine, pool, plan, clock):
    plan(pool)
    clock.advance(hours=5)
    losers = set(pool[:3])
    failed = _fail_and_send_due(engine, clock.now(), losers)
    settings = load_settings({})
    with engine.connect() as conn:
        found = owing(conn, settings, clock.now())
    # the three mailboxes with FAILED jobs, each owing exactly what failed (nothing else moved)
    by_email = {o.email: o for o in found}
    owed_boxes = {email for email in losers if failed.get(_id(engine, email))}
    assert set(by_email) == owed_boxes and owed_boxes
    for o in found:
        assert o.failed == failed[o.mailbox_id]
        assert o.owed == o.failed + o.shortfall
    # a catch-up re-plans them; then nobody owes more than the new plan's shortfall
    plan(sorted(by_email), seed=2)
    with engine.connect() as conn:
        assert owing(conn, settings, clock.now()) == []


def test_two_catch_ups_at_once_after_failures_plan_what_is_owed_once(engine, pool, plan, clock):
    """Two catch-ups of the same owing mailboxes at one moment (`replan=True`, as the catch_up
    op and a backfill of their partitions re-plan): each mailbox-day ends with its quota, less
    what did not fit, sent or queued; nothing is planned twice and nobody owes afterwards."""
    plan(pool)
    clock.advance(hours=5)
    failed = _fail_and_send_due(engine, clock.now(), set(pool[:6]))
    settings = load_settings({})
    with engine.connect() as conn:
        emails = sorted(o.email for o in owing(conn, settings, clock.now()))
    assert emails and sum(failed.values()) >= len(emails)
    at_once(lambda: plan(emails, seed=1), lambda: plan(emails, seed=2))
    with Session(engine) as s:
        ids = set(s.scalars(select(Mailbox.id).where(Mailbox.email.in_(emails))))
        quotas = {
            (q.mailbox_id, q.local_date): q
            for q in s.scalars(select(DailyQuota).where(DailyQuota.mailbox_id.in_(ids)))
        }
        held = Counter(
            (j.mailbox_id, j.local_date)
            for j in s.scalars(
                select(WarmupJob).where(
                    WarmupJob.mailbox_id.in_(ids), WarmupJob.status.in_([*DELIVERED, *QUEUED])
                )
            )
        )
    assert quotas
    for key, q in quotas.items():
        assert held[key] == q.quota - q.shortfall, (key, held[key], q.quota, q.shortfall)
    with engine.connect() as conn:
        assert owing(conn, settings, clock.now()) == []


def test_paused_or_closed_windows_or_unplanned_days_owe_nothing(engine, pool, plan, clock):
    plan(pool)
    clock.advance(hours=5)
    _fail_and_send_due(engine, clock.now())
    settings = load_settings({})
    with engine.connect() as conn:
        everyone = owing(conn, settings, clock.now())
    assert len(everyone) >= 4
    paused = everyone[0].email
    set_state(engine, paused, MailboxState.PAUSED, "owner asked", clock)
    with engine.connect() as conn:
        assert paused not in {o.email for o in owing(conn, settings, clock.now())}
    # a day later every window of the failed jobs' day has closed (the next day's went out)
    clock.advance(hours=24)
    _fail_and_send_due(engine, clock.now(), emails=set())
    with engine.connect() as conn:
        assert owing(conn, settings, clock.now()) == []


def test_jobs_still_queued_cover_what_failed(engine, pool, plan, clock):
    plan(pool)
    clock.advance(hours=5)
    failed = _fail_and_send_due(engine, clock.now())
    box_id = max(failed, key=failed.get)
    assert failed[box_id] >= 2
    # one of its failed jobs is queued again (a retry): it owes one less
    with Session(engine) as s, s.begin():
        job = s.scalars(
            select(WarmupJob).where(
                WarmupJob.mailbox_id == box_id, WarmupJob.status == JobStatus.FAILED
            )
        ).first()
        job.status = JobStatus.RETRY
    with engine.connect() as conn:
        (o,) = [o for o in owing(conn, load_settings({}), clock.now()) if o.mailbox_id == box_id]
    assert o.failed == failed[box_id] - 1
    assert o.owed == failed[box_id] - 1 + o.shortfall


def test_a_mailbox_paused_then_resumed_owes_what_it_held_and_a_replan_spreads_it(
    engine, pool, plan, clock
):
    plan(pool)
    start = clock.now()
    settings = load_settings({})
    held_for = timedelta(seconds=settings.catch_up_held_seconds)  # 30 minutes
    # The mailbox whose day has the most sends planned in the first four and a half hours
    # (a UTC or Berlin one: its window is open at 10:00 UTC) is paused before any is sent.
    with Session(engine) as s:
        due = [j.mailbox_id for j in s.scalars(select(WarmupJob)) if j.due_at < start + held_for]
    by_count = sorted(set(due), key=due.count)
    held_id = by_count[-1]
    with Session(engine) as s:
        held = s.get(Mailbox, held_id).email
    set_state(engine, held, MailboxState.PAUSED, "owner asked", clock)
    clock.advance(hours=5)
    now = clock.now()
    # Everybody else sent what came due until ten minutes ago: late, not held, owes nothing.
    _fail_and_send_due(engine, now - timedelta(minutes=10), emails=set(), held={held})
    with engine.connect() as conn:
        assert owing(conn, settings, now) == []  # paused: nothing re-planned for it
    set_state(engine, held, MailboxState.ACTIVE, None, clock)
    with engine.connect() as conn:
        (o,) = owing(conn, settings, now)
    of_the_day = (WarmupJob.mailbox_id == held_id, WarmupJob.local_date == o.local_date)
    with Session(engine) as s:
        jobs = list(s.scalars(select(WarmupJob).where(*of_the_day)))
    overdue = sum(j.due_at < now - held_for for j in jobs)
    assert overdue >= 2
    assert (o.email, o.failed, o.overdue, o.queued) == (held, 0, overdue, len(jobs))
    assert o.owed == o.quota - (len(jobs) - overdue) == overdue + o.shortfall
    # The catch-up re-plans it: what it held goes into the rest of its window, spaced, and it
    # owes nothing more.
    plan([held], seed=2)
    with Session(engine) as s:
        slots = sorted(s.scalars(select(WarmupJob.due_at).where(*of_the_day)))
        quota = s.get(DailyQuota, (held_id, o.local_date))
    assert len(slots) == quota.quota - quota.shortfall and len(slots) > len(jobs) - overdue
    assert slots[0] > now
    gaps = [(b - a).total_seconds() for a, b in pairwise(slots)]
    assert min(gaps) >= settings.same_mailbox_delay_min * 60
    with engine.connect() as conn:
        assert owing(conn, settings, now) == []


def test_a_mailbox_paused_when_its_day_was_planned_gets_its_quota_once_resumed(
    db_url, engine, pool, plan, clock, tmp_path
):
    """Paused before the daily plan, it got a quota of 0 and no job: nothing fails or is held.
    Resumed at 10:00 UTC it is found (`resumed`), and the re-plan gives it the day's quota in
    the rest of its window, spaced; then it is found no more."""
    settings = load_settings({})
    box = pool[0]  # a UTC mailbox: its window is open at 10:00 UTC
    set_state(engine, box, MailboxState.PAUSED, "owner asked", clock)
    plan(pool)
    box_id = _id(engine, box)
    with Session(engine) as s:
        day = s.scalars(select(DailyQuota).where(DailyQuota.mailbox_id == box_id)).one()
        assert (day.quota, day.planned) == (0, 0) and day.ramp > 0
    clock.advance(hours=5)
    now = clock.now()
    _fail_and_send_due(engine, now, emails=set())  # everybody else sent what came due
    with engine.connect() as conn:
        assert owing(conn, settings, now) == []
    clock.advance(minutes=1)
    set_state(engine, box, MailboxState.ACTIVE, None, clock)
    now = clock.now()
    with engine.connect() as conn:
        (o,) = owing(conn, settings, now)
    assert (o.email, o.resumed, o.quota, o.failed, o.overdue, o.queued) == (box, True, 0, 0, 0, 0)
    listed = _report_owing(db_url, tmp_path, now)
    assert listed[1].split()[0] == box and listed[1].split()[-1] == "yes"
    assert listed[-1] == (
        "0 mailboxes owe 0 sends; 1 resumed after a plan made while paused get their day's quota"
    )

    plan([box], seed=2)  # what the catch-up runs for it
    with Session(engine) as s:
        quota = s.get(DailyQuota, (box_id, o.local_date))
        of_the_day = (WarmupJob.mailbox_id == box_id, WarmupJob.local_date == o.local_date)
        slots = sorted(s.scalars(select(WarmupJob.due_at).where(*of_the_day)))
    assert quota.quota == day.ramp and len(slots) == quota.quota - quota.shortfall > 0
    assert slots[0] > now
    gaps = [(b - a).total_seconds() for a, b in pairwise(slots)]
    assert min(gaps) >= settings.same_mailbox_delay_min * 60
    with engine.connect() as conn:
        assert owing(conn, settings, now) == []


def _id(engine, email):
    with engine.connect() as conn:
        return conn.scalar(select(Mailbox.id).where(Mailbox.email == email))


def test_selection_text_quotes_addresses_as_the_ui_takes_them():
    assert selection_text(["a@b.example", "plain-key", 'odd"key']) == (
        '"a@b.example", plain-key, "odd\\"key"'
    )


def test_report_owing_lists_them_and_their_selection(db_url, engine, pool, plan, clock, tmp_path):
    plan(pool)
    clock.advance(hours=5)
    _fail_and_send_due(engine, clock.now(), set(pool[:3]))
    with engine.connect() as conn:
        expected = [o.email for o in owing(conn, load_settings({}), clock.now())]
    lines = _report_owing(db_url, tmp_path, clock.now())
    assert lines[0].split()[0] == "email" and [line.split()[0] for line in lines[1:-1]] == expected
    assert lines[0].split()[-1] == "resumed" and not any(line.endswith("yes") for line in lines)
    selection = _report_owing(db_url, tmp_path, clock.now(), "--selection")
    assert selection == [", ".join(f'"{email}"' for email in expected)]


def _report_owing(db_url, tmp_path, now, *options):
    """The lines `warmup report owing` prints at `now`."""
    env = {
        "WARMUP_DATABASE_URL": db_url,
        "DAGSTER_HOME": str(tmp_path),
        "WARMUP_CLOCK_START": now.isoformat(),
        "WARMUP_CLOCK_SPEED": "1",
    }
    listed = CliRunner().invoke(main, ["report", "owing", *options], env=env)
    assert listed.exit_code == 0, listed.output
    return listed.output.splitlines()
