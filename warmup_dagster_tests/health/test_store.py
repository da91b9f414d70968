"""Placement per mailbox and local date, health over the window, and what planning and
`warmup mailboxes list` make of it: on both databases."""

from __future__ import annotations

import random
from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster.cli import main
from warmup_dagster.core.health import Figures, HealthState
from warmup_dagster.db.models import (
    DailyQuota,
    Engagement,
    JobStatus,
    Mailbox,
    MailboxHealth,
    Placement,
)
from warmup_dagster.health import placement, store
from warmup_dagster.planning.planner import plan_mailboxes
from warmup_dagster.settings import load_settings
from warmup_dagster_tests.conftest import MONDAY_5AM, TEST_SECRET
from warmup_dagster_tests.factories import add_engagement, add_job, add_mailbox, add_user, log_send

HEALTH = {"WARMUP_HEALTH_MIN_MESSAGES": "10", "WARMUP_DAILY_VARIANCE": "0"}


def refusal(session, sender, to, at, code: int, status: JobStatus, late: bool = False) -> None:
    job = add_job(session, sender, to, at, status)
    entry = log_send(session, job, at, status)
    entry.smtp_code, entry.late = code, late


def mail(session, sender, to, at, placements: dict[Placement, int]) -> None:
    for where, n in placements.items():
        for _ in range(n):
            add_engagement(session, add_job(session, sender, to, at, JobStatus.SENT), where)


def boxes(engine, cipher, n=3):
    with Session(engine) as session, session.begin():
        made = [
            add_mailbox(
                session,
                add_user(session, f"owner{k}", MONDAY_5AM - timedelta(days=30), plan="pro"),
                f"b{k}@d{k}.example",
                MONDAY_5AM - timedelta(days=30),
                cipher,
                ramp_start=10,
                daily_limit=40,
                warmup_start_date=MONDAY_5AM.date(),
            )
            for k in range(n)
        ]
        return [(b.id, b.email) for b in made]


def test_placement_is_the_senders_by_local_date_with_bounces_and_auth_failures(engine, cipher):
    (a, _), (b, _), _ = boxes(engine, cipher)
    monday, tuesday = MONDAY_5AM.replace(hour=9), MONDAY_5AM.replace(hour=9) + timedelta(days=1)
    with Session(engine) as session, session.begin():
        sender, to = session.get_one(Mailbox, a), session.get_one(Mailbox, b)
        mail(session, sender, to, monday, {Placement.INBOX: 3, Placement.SPAM: 1})
        mail(session, sender, to, tuesday, {Placement.SPAM: 2, Placement.NOT_FOUND: 1})
        mail(session, sender, to, tuesday, {Placement.PENDING: 4})  # not placed yet
        mail(session, to, sender, monday, {Placement.INBOX: 2})  # b's mail, placed at a
        refusal(session, sender, to, monday, 550, JobStatus.FAILED)
        refusal(session, sender, to, tuesday, 535, JobStatus.RETRY)  # login refused (paused)
        refusal(session, sender, to, tuesday, 535, JobStatus.RETRY, late=True)  # counted nowhere
        refusal(session, sender, to, tuesday, 451, JobStatus.FAILED)  # not permanent
        refusal(session, sender, to, tuesday, 552, JobStatus.RETRY)  # retried: no bounce yet
    with engine.connect() as conn:
        days = placement.by_day(conn, monday.date(), tuesday.date())
        assert days == {
            (a, monday.date()): Figures(inbox=3, spam=1, bounces=1),
            (a, tuesday.date()): Figures(spam=2, not_found=1, auth_failures=1),
            (b, monday.date()): Figures(inbox=2),
        }
        assert placement.by_day(conn, tuesday.date(), tuesday.date(), [b]) == {}
        assert placement.by_day(conn, monday.date(), monday.date(), [b, a]) == {
            k: v for k, v in days.items() if k[1] == monday.date()
        }
        window = placement.over_window(conn, monday - timedelta(hours=1))
        assert window == {
            a: Figures(inbox=3, spam=3, not_found=1, bounces=1, auth_failures=1),
            b: Figures(inbox=2),
        }
        assert placement.over_window(conn, tuesday - timedelta(hours=1))[a].inbox == 0


def test_health_throttles_and_pauses_the_next_plan_and_shows_in_the_list(
    engine, db_url, cipher, clock, monkeypatch
):
    (a, a_email), (b, b_email), (c, c_email) = boxes(engine, cipher)
    sunday = MONDAY_5AM - timedelta(hours=12)
    with Session(engine) as session, session.begin():
        sa, sb, sc = (session.get_one(Mailbox, i) for i in (a, b, c))
        mail(session, sa, sb, sunday, {Placement.INBOX: 6, Placement.SPAM: 4})  # 40%: throttled
        mail(session, sb, sc, sunday, {Placement.INBOX: 3, Placement.SPAM: 7})  # 70%: paused
        mail(session, sc, sa, sunday, {Placement.INBOX: 10})
        refusal(session, sc, sa, sunday, 550, JobStatus.FAILED)  # one bounce: watch
        # mail from before the window counts for nothing
        mail(session, sc, sa, sunday - timedelta(days=8), {Placement.SPAM: 30})
    settings = load_settings(HEALTH)
    assert store.refresh(engine, settings, clock.now()) == 3
    with Session(engine) as session:
        rows = {h.mailbox_id: h for h in session.scalars(select(MailboxHealth))}
    assert {k: v.state for k, v in rows.items()} == {
        a: HealthState.THROTTLED,
        b: HealthState.PAUSED,
        c: HealthState.WATCH,
    }
    assert rows[a].reason == "spam rate 40% of 10 placed (throttled at 35%)"
    assert rows[c].reason == "1 bounces (watch at 1)" and rows[c].since == clock.now()
    assert store.counts(engine) == {
        "mailboxes_healthy": 0,
        "mailboxes_watch": 1,
        "mailboxes_throttled": 1,
        "mailboxes_paused": 1,
        "window_inbox": 19,
        "window_spam": 11,
        "window_not_found": 0,
        "window_bounces": 1,
        "window_auth_failures": 0,
    }
    assert [h.email for h in store.not_healthy(engine, 2)] == [b_email, a_email]

    plans = {
        p.email: p
        for p in plan_mailboxes(
            engine, [a_email, b_email, c_email], settings, clock, rng=random.Random(1)
        )
    }
    assert plans[c_email].quota.value == plans[c_email].planned == 10  # watch: no change
    # throttled: WARMUP_HEALTH_THROTTLE of 10
    assert plans[a_email].quota.value == plans[a_email].planned == 5
    assert "health throttled: spam rate 40%" in plans[a_email].quota.reason
    assert plans[b_email].quota.value == 0 and plans[b_email].planned == 0
    assert plans[b_email].quota.reason.startswith("health paused: spam rate 70% of 10 placed")
    with Session(engine) as session:
        stored = {q.mailbox_id: q.reason for q in session.scalars(select(DailyQuota))}
    assert "health paused" in stored[b]

    monkeypatch.setenv("WARMUP_DATABASE_URL", db_url)
    monkeypatch.setenv("WARMUP_SECRET_KEY", TEST_SECRET)
    listed = CliRunner().invoke(main, ["mailboxes", "list"])
    assert listed.exit_code == 0, listed.output
    lines = {line.split()[0]: line for line in listed.output.splitlines()[1:-1]}
    assert "PAUSED" in lines[b_email] and "70% of 10" in lines[b_email]
    assert "health: spam rate 70% of 10 placed (paused at 60%)" in lines[b_email]
    assert "THROTTLED" in lines[a_email] and "WATCH" in lines[c_email]

    # Recovered: a later judgement with the spam gone keeps no row for a, and c's `since`
    # stays while its state does.
    with Session(engine) as session, session.begin():
        session.query(Engagement).filter(
            Engagement.sender_mailbox_id == a, Engagement.placement == Placement.SPAM
        ).update({"placement": Placement.INBOX})
    later = clock.now() + timedelta(hours=1)
    store.refresh(engine, settings, later)
    with Session(engine) as session:
        rows = {h.mailbox_id: h for h in session.scalars(select(MailboxHealth))}
    assert rows[a].state is HealthState.HEALTHY and rows[a].reason is None
    assert rows[c].since == clock.now() and rows[c].computed_at == later
    assert rows[b].since == clock.now()
    # a week on, nothing is in the window: no verdicts, everybody healthy
    assert store.refresh(engine, settings, later + timedelta(days=8)) == 0
    assert store.counts(engine)["mailboxes_healthy"] == 3
