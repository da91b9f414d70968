"""The counter ledger agrees with the send log, step by step through a day of sends on both
databases, and the audit catches a ledger that does not."""

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from warmup_dagster import queue
from warmup_dagster.clock import FixedClock
from warmup_dagster.core.admission import Scope
from warmup_dagster.core.delivery import Outcome, RetryPolicy
from warmup_dagster.db.models import (
    JobKind,
    JobStatus,
    Mailbox,
    Security,
    SendCounter,
    SendLog,
    WarmupJob,
)
from warmup_dagster.queue import outcomes
from warmup_dagster.queue.audit import counter_mismatches
from warmup_dagster.queue.counting import count_possibly_delivered, count_sends
from warmup_dagster.queue.enqueue import NewJob, enqueue
from warmup_dagster.sending.worker import Sender
from warmup_dagster_tests.factories import add_mailbox, add_user
from warmup_dagster_tests.sending.test_sender import KEY, jobs, mailboxes, settings_for

DAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday; the window is 06-22 UTC
SPAN = (DAY - timedelta(hours=1), DAY + timedelta(days=1, hours=1))


def day_settings(cert):
    return settings_for(
        cert,
        send_lease_seconds="600",
        send_retry_base_seconds="600",
        send_max_attempts="3",
        user_sends_per_minute="2",
        # a run ends as soon as nothing is due: the clock only moves between runs
        scheduler_interval_ms="1000",
    )


class Day:
    """A day of sends on a fixed clock: each step runs a real sender, then audits."""

    def __init__(self, engine, cipher, settings, start):
        self.engine, self.cipher, self.settings = engine, cipher, settings
        self.clock = FixedClock(start)
        self.summaries = []

    def at(self, hour, minute=0):
        self.clock._now = DAY.replace(hour=hour, minute=minute)
        return self.clock.now()

    def run(self, worker="w1"):
        sender = Sender(
            self.engine, self.clock, self.settings, self.cipher, KEY, worker, max_seconds=20
        )
        self.summaries.append(sender.run())
        self.audit()

    def dead_claim(self, box_id, recipient):
        """A run claims a job and dies: its lease will run out."""
        [job_id] = jobs(self.engine, [box_id], [recipient], at=self.clock.now())
        claim = queue.claim(self.engine, self.settings, self.clock.now, "dead", 1, KEY)
        [claimed] = claim.jobs
        assert claimed.candidate.job_id == job_id
        self.audit()
        return claimed

    def audit(self):
        assert counter_mismatches(self.engine, *SPAN) == [], self.clock.now()


def mailbox_with_a_wrong_password(engine, cipher, server) -> int:
    """A mailbox of its own owner whose login the server refuses (535)."""
    with Session(engine) as session, session.begin():
        owner = add_user(session, "bad-owner", DAY)
        bad = add_mailbox(
            session, owner, "bad@bad.example", DAY, cipher, smtp_host="localhost",
            smtp_port=server.port, smtp_security=Security.STARTTLS,
            smtp_password_enc=cipher.encrypt("wrong"),
        ).id  # fmt: skip
    server.users["bad@bad.example"] = "pw"
    return bad


def enqueue_reply(engine, box_id: int, at, body: str = "yes") -> int:
    """A reply of `box_id` due 10 minutes after `at`, in the thread of <m1@x.example>; returns
    the mailbox's owner."""
    with engine.begin() as conn:
        user = conn.scalar(select(Mailbox.user_id).where(Mailbox.id == box_id))
        reply = NewJob(
            JobKind.REPLY, box_id, user, at.date(), "peer@x.example", at + timedelta(minutes=10),
            message_id="<reply-1@u0.example>", subject="Re: hello", body=body,
            in_reply_to="<m1@x.example>", references="<m1@x.example>",
        )  # fmt: skip
        assert enqueue(conn, at, [reply]) == 1
    return user


@pytest.mark.slow(15)
def test_a_day_of_sends_keeps_the_ledger_exact(engine, cipher, server, cert):
    settings = day_settings(cert)
    day = Day(engine, cipher, settings, DAY.replace(hour=8, minute=55))
    b0, b1, spare, _ = mailboxes(engine, cipher, server, n_users=2, per_user=2)
    bad = mailbox_with_a_wrong_password(engine, cipher, server)
    at = DAY.replace(hour=9)
    jobs(engine, [b0], ["fine@x.example", "code451@x.example", "code550@x.example"], at=at)
    jobs(engine, [b1], ["drop@x.example", "ok@x.example", "ok2@x.example"], at=at)
    jobs(engine, [bad], ["p@x.example", "q@x.example"], at=at)
    user = enqueue_reply(engine, b1, at, body='yes,\n"quoted"')
    day.audit()

    late = None
    for minute in range(0, 125, 5):
        day.at(9 + minute // 60, minute % 60)
        day.run()
        if minute == 20:  # after the run, so nothing else is due for the dead run to claim
            late = day.dead_claim(spare, "lost@x.example")
        if minute == 35:  # the dead run's lease ran out at 09:30: this step reclaimed its job
            assert day.summaries[-1].reclaimed == 1
            # the dead run reports after all: it had sent the mail too
            result = queue.Result(late, Outcome.SENT, 250, "", None, day.clock.now(), "s", "b")
            recorded = queue.record(engine, [result], "dead", RetryPolicy(), random.Random(1))
            assert not recorded.outcomes and recorded.late == {Outcome.SENT: 1}
            day.audit()

    # The end of the day: a run claims a job at 21:55 and dies; after the window it is refused.
    day.at(21, 55)
    day.run()
    day.dead_claim(spare, "evening@x.example")
    day.at(22, 30)
    day.run()
    assert day.summaries[-1].refused == 1
    with Session(engine) as session:
        evening = session.scalar(
            select(WarmupJob.error).where(WarmupJob.recipient_email == "evening@x.example")
        )
    assert evening == (
        "not sent: expired: its day (2026-03-02) is over; it had been claimed and its lease ran out"
    )

    outcomes_seen = sum((s.outcomes for s in day.summaries), Counter())
    assert {Outcome.SENT, Outcome.RETRY, Outcome.FAILED, Outcome.PAUSE} <= set(outcomes_seen)
    assert sum(s.reclaimed for s in day.summaries) == 1  # the evening job was refused
    assert day.summaries[-1].reclaimed == 0
    assert sum(s.deferred for s in day.summaries) > 0
    with Session(engine) as session:
        log = list(session.scalars(select(SendLog)))
        # the duplicate send is on record, once counted
        lost = [e for e in log if e.recipient_email == "lost@x.example"]
        assert sorted((e.status.name, e.late) for e in lost) == [
            ("RETRY", False),  # the abandoned attempt, closed by the reclaim
            ("SENT", False),
            ("SENT", True),
        ]
        sent = [e for e in log if e.status is JobStatus.SENT and not e.late]
        assert count_sends(session, *SPAN) == len(sent)
        assert any(e.kind is JobKind.REPLY for e in sent)
        counters = {(c.scope, c.subject_id): c.used for c in session.scalars(select(SendCounter))}
    assert counters[Scope.MAILBOX_DAY, b1] == len([e for e in sent if e.mailbox_id == b1]) - 1
    assert counters[Scope.USER_DAY, user] == len([e for e in sent if e.user_id == user])


def test_the_audit_names_each_counter_that_disagrees(engine, cipher, server, cert):
    settings = day_settings(cert)
    day = Day(engine, cipher, settings, DAY.replace(hour=9))
    [box] = mailboxes(engine, cipher, server)
    jobs(engine, [box], ["fine@x.example"], at=DAY.replace(hour=9))
    day.run()
    with Session(engine) as session:
        user = session.get(Mailbox, box).user_id
    with engine.begin() as conn:
        conn.execute(
            update(SendCounter)
            .where(SendCounter.scope == Scope.USER_DAY, SendCounter.subject_id == user)
            .values(used=SendCounter.used + 2)
        )
    [wrong] = counter_mismatches(engine, *SPAN)
    assert (wrong.scope, wrong.subject_id, wrong.stored, wrong.expected) == (
        Scope.USER_DAY,
        user,
        3,
        1,
    )
    assert str(wrong) == (
        f"USER_DAY of user {user} in local date 2026-03-02: the counter says 3, "
        "the send log and the jobs in flight say 1"
    )
    with engine.begin() as conn:
        conn.execute(
            update(SendCounter)
            .where(SendCounter.scope == Scope.USER_DAY)
            .values(used=SendCounter.used - 2)
        )
        conn.execute(SendCounter.__table__.delete().where(SendCounter.scope == Scope.GLOBAL_HOUR))
    [missing] = counter_mismatches(engine, *SPAN)
    assert (missing.scope, missing.subject_id, missing.stored, missing.expected) == (
        Scope.GLOBAL_HOUR,
        0,
        0,
        1,
    )
    assert str(missing).startswith("GLOBAL_HOUR of everyone in the hour from 2026-03-02T09:00")


def test_the_audit_catches_a_lost_counter_update(engine, cipher, server, cert, monkeypatch):
    """Recording that forgets to give back a failed attempt's day reservation is reported."""
    settings = day_settings(cert)
    day = Day(engine, cipher, settings, DAY.replace(hour=9))
    [box] = mailboxes(engine, cipher, server)
    jobs(engine, [box], ["code451@x.example"], at=DAY.replace(hour=9))
    monkeypatch.setattr(outcomes, "bump_counters", lambda conn, deltas: None)
    with pytest.raises(AssertionError):
        day.run()
    found = {(m.scope, m.stored, m.expected) for m in counter_mismatches(engine, *SPAN)}
    assert found == {(Scope.USER_DAY, 1, 0), (Scope.MAILBOX_DAY, 1, 0)}


def test_a_reclaim_closes_the_abandoned_attempt_even_when_the_job_waits(engine, cipher, cert):
    """A taken-over job that must wait (its mailbox's spacing) still gets its closing row."""
    settings = day_settings(cert)
    with Session(engine) as session, session.begin():
        user = add_user(session, "owner", DAY)
        box = add_mailbox(session, user, "a@one.example", DAY, cipher).id
    start = DAY.replace(hour=9)
    jobs(engine, [box], ["a@x.example"], at=start)
    queue.claim(engine, settings, lambda: start, "dead", 10, KEY)  # its lease ends at 09:10
    second = start + timedelta(minutes=9)
    jobs(engine, [box], ["b@x.example"], at=second)
    assert len(queue.claim(engine, settings, lambda: second, "w2", 10, KEY).jobs) == 1
    assert counter_mismatches(engine, *SPAN) == []
    later = start + timedelta(minutes=10, seconds=30)
    claim = queue.claim(engine, settings, lambda: later, "w3", 10, KEY)
    # the dead run's job is taken over, and waits for the spacing after w2's claim
    assert claim.jobs == [] and claim.deferred == 1
    assert counter_mismatches(engine, *SPAN) == []
    with Session(engine) as session:
        [closing] = session.scalars(select(SendLog))
    assert (closing.worker_id, closing.status, closing.claimed_at) == (
        "dead",
        JobStatus.RETRY,
        start,
    )
    assert closing.error == (
        "abandoned: outcome unknown, possibly delivered; its lease ran out, taken over by w3"
    )
    with Session(engine) as session:
        # counted apart: possibly delivered, and no send
        assert count_possibly_delivered(session, *SPAN) == 1
        assert count_possibly_delivered(session, *SPAN, mailbox_id=box) == 1
        assert count_possibly_delivered(session, *SPAN, mailbox_id=box + 1) == 0
        assert count_sends(session, *SPAN) == 0


def test_a_taken_over_job_that_waited_is_still_possibly_delivered_when_claimed(
    engine, cipher, cert
):
    """The deferral made it a RETRY without a lease; the claim that sends it must still say
    its message may be delivered, so the sender looks over IMAP before sending it again."""
    settings = day_settings(cert)
    with Session(engine) as session, session.begin():
        user = add_user(session, "owner", DAY)
        box = add_mailbox(session, user, "a@one.example", DAY, cipher).id
    start = DAY.replace(hour=9)
    [dead_job] = jobs(engine, [box], ["a@x.example"], at=start)
    queue.claim(engine, settings, lambda: start, "dead", 10, KEY)
    second = start + timedelta(minutes=9)
    jobs(engine, [box], ["b@x.example"], at=second)
    [fresh] = queue.claim(engine, settings, lambda: second, "w2", 10, KEY).jobs
    assert not fresh.possibly_delivered  # never claimed before
    later = start + timedelta(minutes=10, seconds=30)
    claim = queue.claim(engine, settings, lambda: later, "w3", 10, KEY)
    assert claim.jobs == [] and claim.deferred == 1  # taken over, waits for the spacing
    with Session(engine) as session:
        job = session.get(WarmupJob, dead_job)
        assert job is not None and job.status is JobStatus.RETRY and job.lease_expires_at is None
        due = job.due_at
    claimed = {
        j.candidate.job_id: j
        for j in queue.claim(engine, settings, lambda: due, "w4", 10, KEY).jobs
    }
    taken = claimed[dead_job]
    assert not taken.candidate.reclaimed  # no lease of it ran out this time ...
    assert taken.possibly_delivered  # ... but the abandoned attempt may have delivered it
