"""The catch-up's question, on both databases: which mailboxes owe what a re-plan can place."""

from collections import Counter

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


def _fail_and_send_due(engine, now, emails=None):
    """Every job due before `now` ends: those of `emails` FAILED, the others SENT (logged).
    Returns the FAILED count per mailbox id."""
    failed: dict[int, int] = {}
    with Session(engine) as s, s.begin():
        boxes = {b.id: b.email for b in s.scalars(select(Mailbox))}
        for job in s.scalars(select(WarmupJob).where(WarmupJob.due_at < now)):
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
    # a day later every window of the failed jobs' day has closed
    clock.advance(hours=24)
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
    env = {
        "WARMUP_DATABASE_URL": db_url,
        "DAGSTER_HOME": str(tmp_path),
        "WARMUP_CLOCK_START": clock.now().isoformat(),
        "WARMUP_CLOCK_SPEED": "1",
    }
    listed = CliRunner().invoke(main, ["report", "owing"], env=env)
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split()[0] == "email" and [line.split()[0] for line in lines[1:-1]] == expected
    selected = CliRunner().invoke(main, ["report", "owing", "--selection"], env=env)
    assert selected.output.strip() == ", ".join(f'"{email}"' for email in expected)
