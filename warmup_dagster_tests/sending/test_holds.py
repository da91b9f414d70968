"""A mailbox whose health is PAUSED, or whose domain the gate holds, sends nothing: neither
the jobs planned before the verdict nor replies. Real Sender runs against the test SMTP
server on both databases, the verdicts written by their own writers (`health.store`,
`domains.store`)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from warmup_dagster.clock import FixedClock
from warmup_dagster.db.models import (
    Engagement,
    JobKind,
    JobStatus,
    Mailbox,
    Placement,
    SendCounter,
    SendLog,
)
from warmup_dagster.domains import store as domain_store
from warmup_dagster.domains.model import SPF, Check, Report, Status
from warmup_dagster.health import store as health_store
from warmup_dagster.queue.holds import RECHECK
from warmup_dagster.sending.worker import Sender
from warmup_dagster_tests.factories import add_engagement, add_job
from warmup_dagster_tests.sending.test_sender import (
    KEY,
    START,
    job_rows,
    jobs,
    mailboxes,
    settings_for,
)

PAUSED_REASON = "health paused: spam rate 100% of 10 placed (paused at 60%)"
HELD_REASON = "held: domain u1.example fails SPF: no SPF record"


def send(engine, settings, cipher, at, worker="w1"):
    """One sender run on a clock fixed at `at` (it moves only while the run waits)."""
    return Sender(engine, FixedClock(at), settings, cipher, KEY, worker, max_seconds=20).run()


def reply_job(engine, box_id, at) -> int:
    with Session(engine) as session, session.begin():
        box = session.get_one(Mailbox, box_id)
        return add_job(
            session,
            box,
            box,
            at,
            JobStatus.PENDING,
            kind=JobKind.REPLY,
            recipient_email=f"answered@{box.domain}",
            recipient_mailbox_id=None,
            subject="Re: hello",
            body="Thanks, will do.",
            in_reply_to="<original@x.example>",
            references="<original@x.example>",
        ).id


def spam_verdict(engine, settings, sender_id, recipient_id) -> None:
    """Ten of the sender's messages found in spam in the last hour; health judged now."""
    with Session(engine) as session, session.begin():
        sender = session.get_one(Mailbox, sender_id)
        to = session.get_one(Mailbox, recipient_id)
        for k in range(10):
            at = START - timedelta(minutes=60 - k)
            add_engagement(
                session, add_job(session, sender, to, at, JobStatus.SENT), Placement.SPAM
            )
    health_store.refresh(engine, settings, START)


def test_a_paused_or_held_mailbox_sends_nothing_replies_included_until_it_is_lifted(
    engine, cipher, server, cert
):
    settings = settings_for(cert, domain_gate="hold", health_min_messages="5")
    paused, held, healthy = mailboxes(engine, cipher, server, n_users=3)
    spam_verdict(engine, settings, paused, healthy)
    domain_store.save(
        engine, [Report("u1.example", (Check(SPF, Status.FAIL, "no SPF record"),))], START
    )
    later = START + timedelta(minutes=3)
    sends = {box: jobs(engine, [box], [f"to@{box}.example"])[0] for box in (paused, held, healthy)}
    replies = {box: reply_job(engine, box, later) for box in (paused, held, healthy)}

    send(engine, settings, cipher, START)
    send(engine, settings, cipher, later)

    assert sorted(r.rcpt_tos[0] for r in server.received) == sorted(
        [f"to@{healthy}.example", "answered@u2.example"]
    )
    rows = job_rows(engine)
    assert rows[sends[healthy]].status is JobStatus.SENT
    assert rows[replies[healthy]].status is JobStatus.SENT
    for box, reason in ((paused, PAUSED_REASON), (held, HELD_REASON)):
        for job_id, claimed_at in ((sends[box], START), (replies[box], later)):
            job = rows[job_id]
            assert (job.status, job.error) == (JobStatus.PENDING, f"waiting: {reason}")
            assert job.due_at == claimed_at + RECHECK and job.attempts == 0
    with Session(engine) as session:
        # held jobs took no count and left no attempt
        assert not session.scalars(
            select(SendLog).where(SendLog.mailbox_id.in_([paused, held]))
        ).all()
        counted = {c.subject_id for c in session.scalars(select(SendCounter))}
        assert paused not in counted and held not in counted

    # The domain is fixed (a passing check), and health finds the spam gone: both send.
    domain_store.save(
        engine, [Report("u1.example", (Check(SPF, Status.PASS, "v=spf1 -all"),))], START
    )
    with Session(engine) as session, session.begin():
        session.execute(
            update(Engagement)
            .where(Engagement.sender_mailbox_id == paused)
            .values(placement=Placement.INBOX)
        )
    health_store.refresh(engine, settings, later)
    send(engine, settings, cipher, later + RECHECK)
    send(engine, settings, cipher, later + RECHECK + timedelta(minutes=3))
    rows = job_rows(engine)
    assert {rows[j].status for j in [*sends.values(), *replies.values()]} == {JobStatus.SENT}
    assert len(server.received) == 6


def test_with_the_gate_flagging_only_a_failing_domain_still_sends(engine, cipher, server, cert):
    settings = settings_for(cert, domain_gate="flag")
    [box] = mailboxes(engine, cipher, server, n_users=2, per_user=1)[1:]  # box0@u1.example
    domain_store.save(
        engine, [Report("u1.example", (Check(SPF, Status.FAIL, "no SPF record"),))], START
    )
    [job] = jobs(engine, [box], ["to@x.example"])
    send(engine, settings, cipher, START)
    assert job_rows(engine)[job].status is JobStatus.SENT


def test_a_held_job_expires_with_its_day_saying_why_it_waited(engine, cipher, server, cert):
    settings = settings_for(cert, health_min_messages="5")
    paused, other = mailboxes(engine, cipher, server, n_users=2)
    spam_verdict(engine, settings, paused, other)
    evening = START.replace(hour=21, minute=50)  # a UTC mailbox: its window ends at 22:00
    [job] = jobs(engine, [paused], ["to@x.example"], at=evening)
    send(engine, settings, cipher, evening)
    assert job_rows(engine)[job].error == f"waiting: {PAUSED_REASON}"
    summary = send(engine, settings, cipher, evening + RECHECK)
    assert summary.refused == 1 and not server.received
    failed = job_rows(engine)[job]
    assert failed.status is JobStatus.FAILED
    assert failed.error == (
        f"not sent: expired: its day (2026-03-02) is over; it had been waiting: {PAUSED_REASON}"
    )
