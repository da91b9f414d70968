"""The whole loop against real servers, on both databases: plan, send through the real Sender
to an SMTP server that delivers into Dovecot (every other message into Junk), engage over
IMAPS (rescue, seen, flag, file, the senders' copies too), reply, send the replies, engage
them: thread headers, statuses, placements and the counters all as they should be, and the
senders' placement per local date and their health recorded, which the next plan follows."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster.clock import FixedClock
from warmup_dagster.core.content import is_warmup_message_id
from warmup_dagster.core.engagement import wants_flag
from warmup_dagster.core.health import Figures, HealthState
from warmup_dagster.db.models import (
    Engagement,
    EngagementMailbox,
    JobKind,
    JobStatus,
    MailboxHealth,
    Placement,
    SendLog,
    SentCopy,
    WarmupJob,
)
from warmup_dagster.engagement.run import Engager
from warmup_dagster.health import placement, store
from warmup_dagster.planning.planner import plan_mailboxes
from warmup_dagster.queue.audit import counter_mismatches
from warmup_dagster.queue.counting import count_sends
from warmup_dagster.sending.worker import Sender
from warmup_dagster.testing.imap_server import JUNK, SENT
from warmup_dagster_tests.conftest import MONDAY_5AM
from warmup_dagster_tests.engagement.conftest import engage_settings, pool
from warmup_dagster_tests.sending.test_sender import KEY

WARMUP = "Warmup"


def send_until(engine, clock: FixedClock, settings, cipher, until, step_minutes: float = 5):
    """Sender runs every `step_minutes` of the fixed clock until `until`; each ends once
    nothing more is due (the fixed clock stands still while it runs)."""
    while clock.now() < until:
        Sender(engine, clock, settings, cipher, KEY, "sender", max_seconds=1).run()
        clock.advance(minutes=step_minutes)


def engage(engine, clock, settings, cipher):
    return Engager(engine, clock, settings, cipher, KEY, "engager").run()


def jobs(engine, kind=None):
    with Session(engine) as session:
        query = select(WarmupJob).order_by(WarmupJob.id)
        if kind is not None:
            query = query.where(WarmupJob.kind == kind)
        return list(session.scalars(query))


def engagements(engine):
    with Session(engine) as session:
        return {e.message_id: e for e in session.scalars(select(Engagement))}


@pytest.mark.slow(20)
def test_the_whole_loop_plan_send_deliver_engage_reply(engine, cipher, smtp, dovecot, cert):
    settings = engage_settings(cert)
    boxes = pool(engine, cipher, smtp, dovecot)
    clock = FixedClock(MONDAY_5AM)
    plans = plan_mailboxes(engine, boxes.emails, settings, clock, replan=False)
    assert sum(p.planned for p in plans) == 8  # ramp start 2, four mailboxes

    # Monday's window, 06:00-12:00 UTC: every planned message goes out and is delivered.
    send_until(engine, clock, settings, cipher, MONDAY_5AM.replace(hour=12))
    sends = jobs(engine, JobKind.SEND)
    assert [j.status for j in sends] == [JobStatus.SENT] * 8
    delivered = {message_id: (to, folder) for to, folder, message_id in smtp.delivered}
    assert len(delivered) == 8
    assert Counter(folder for _, folder in delivered.values()) == {"INBOX": 4, JUNK: 4}

    # The recipients look after the send's human-like delay; nothing is looked at before it.
    summary = engage(engine, clock, settings, cipher)
    assert summary.taken_in == 8 and summary.replies == 8
    handled = engagements(engine)
    by_address = {v: k for k, v in boxes.ids.items()}
    for job in sends:
        e = handled[job.message_id]
        to, folder = delivered[job.message_id]
        assert by_address[e.recipient_mailbox_id] == to == job.recipient_email
        assert e.sender_mailbox_id == job.mailbox_id and e.turn == 1
        assert e.placement is (Placement.SPAM if folder == JUNK else Placement.INBOX)
        assert e.done and e.seen and e.filed
        assert e.flagged == wants_flag(job.message_id, settings.engage_flag_rate)
        assert e.sent_copy is SentCopy.FILED and e.reply_job_id is not None
        assert e.sent_at == job.sent_at or abs(e.sent_at - job.sent_at) < timedelta(seconds=5)
    assert summary.placements == {"INBOX": 4, "SPAM": 4}

    # Placement is the sender's, per local date: where the server put each one's mail.
    monday = MONDAY_5AM.date()
    landed = Counter((j.mailbox_id, delivered[j.message_id][1]) for j in sends)
    with engine.connect() as conn:
        assert placement.by_day(conn, monday, monday) == {
            (box_id, monday): Figures(inbox=landed[box_id, "INBOX"], spam=landed[box_id, JUNK])
            for box_id in boxes.ids.values()
        }
    # Health: two placed each (WARMUP_HEALTH_MIN_MESSAGES=2); half in spam throttles (35%),
    # all of it pauses (60%).
    assert store.refresh(engine, settings, clock.now()) == 4
    expected = {0: HealthState.HEALTHY, 1: HealthState.THROTTLED, 2: HealthState.PAUSED}
    with Session(engine) as session:
        health = {h.mailbox_id: h for h in session.scalars(select(MailboxHealth))}
    for box_id in boxes.ids.values():
        assert health[box_id].state is expected[landed[box_id, JUNK]]
        assert (health[box_id].spam, health[box_id].inbox) == (
            landed[box_id, JUNK],
            landed[box_id, "INBOX"],
        )

    # On the server: inboxes, spam and sent folders are empty, everything is in Warmup, seen,
    # the chosen ones flagged; the senders' copies are in their own Warmup folders.
    for address in boxes.emails:
        assert dovecot.messages(address, "INBOX") == []
        assert dovecot.messages(address, JUNK) == []
        assert dovecot.messages(address, SENT) == []
        filed = dovecot.messages(address, WARMUP)
        received = [m for m in filed if delivered.get(m.message_id, ("",))[0] == address]
        assert received and all("\\Seen" in m.flags for m in received)
        for m in received:
            assert ("\\Flagged" in m.flags) == wants_flag(m.message_id, settings.engage_flag_rate)
        sent_by = {j.message_id for j in sends if j.mailbox_id == boxes.ids[address]}
        assert sent_by <= {m.message_id for m in filed}

    # Every original is REPLIED; each reply is queued from its recipient, in thread.
    originals = {j.id: j for j in jobs(engine, JobKind.SEND)}
    assert {j.status for j in originals.values()} == {JobStatus.REPLIED}
    replies = jobs(engine, JobKind.REPLY)
    assert len(replies) == 8
    for reply in replies:
        original = originals[reply.parent_job_id]
        assert reply.status is JobStatus.PENDING
        assert reply.mailbox_id == original.recipient_mailbox_id
        assert reply.recipient_mailbox_id == original.mailbox_id
        assert reply.in_reply_to == original.message_id == reply.references
        assert reply.subject == "Re: " + original.subject
        assert is_warmup_message_id(KEY, reply.message_id)
        # scheduled inside the replier's window (the next day's: Monday's closed at 12:00)
        assert reply.due_at.hour in range(6, 12) and reply.due_at > clock.now()

    # Tuesday: the replies are sent inside their window, as the repliers' sends; those of a
    # mailbox health paused after they were queued are held at the claim, with the reason.
    # (Which sender had both its messages in Junk depends on the order of arrival: none, in
    # some runs. sending/test_holds.py holds a paused mailbox's replies deterministically.)
    paused = {b for b, h in health.items() if h.state is HealthState.PAUSED}
    sent_replies = [r for r in replies if r.mailbox_id not in paused]
    tuesday = MONDAY_5AM + timedelta(days=1)
    clock.advance(seconds=(tuesday - clock.now()).total_seconds())
    smtp.reset()
    send_until(engine, clock, settings, cipher, tuesday.replace(hour=12))
    for job in jobs(engine, JobKind.REPLY):
        if job.mailbox_id in paused:
            assert job.status is JobStatus.PENDING and job.attempts == 0
            assert job.error.startswith("waiting: health paused: spam rate 100% of 2 placed")
        else:
            assert job.status is JobStatus.SENT
    got = {r.message["Message-ID"]: r.message for r in smtp.received}
    assert set(got) == {r.message_id for r in sent_replies}
    for reply in sent_replies:
        message = got[reply.message_id]
        assert message["In-Reply-To"] == reply.in_reply_to
        assert message["References"] == reply.references
        assert message["Subject"].startswith("Re: ") and not message["Subject"].startswith(
            "Re: Re:"
        )
    with Session(engine) as session:
        for reply in sent_replies:
            assert count_sends(
                session,
                MONDAY_5AM,
                clock.now(),
                mailbox_id=reply.mailbox_id,
                kind=JobKind.REPLY,
            ) == sum(1 for r in sent_replies if r.mailbox_id == reply.mailbox_id)
        logged = Counter((k, s) for k, s in session.execute(select(SendLog.kind, SendLog.status)))
    # the originals' log rows stay SENT; the held replies left no attempt
    assert logged == {
        (JobKind.SEND, JobStatus.SENT): 8,
        (JobKind.REPLY, JobStatus.SENT): len(sent_replies),
    }
    assert counter_mismatches(engine, MONDAY_5AM, clock.now()) == []

    # The other side engages the replies: found and filed, no third turn (max turns 2).
    clock.advance(minutes=30)
    summary = engage(engine, clock, settings, cipher)
    assert summary.taken_in == len(sent_replies) and summary.replies == 0
    now_handled = engagements(engine)
    for reply in sent_replies:
        e = now_handled[reply.message_id]
        assert e.turn == 2 and e.done and e.filed and e.reply_job_id is None
        assert e.placement in (Placement.INBOX, Placement.SPAM)
    assert len(jobs(engine, JobKind.REPLY)) == 8
    for address in boxes.emails:
        assert dovecot.messages(address, "INBOX") == dovecot.messages(address, JUNK) == []
    with Session(engine) as session:
        passes = list(session.scalars(select(EngagementMailbox)))
    assert {p.mailbox_id for p in passes} == set(boxes.ids.values())
    assert all(p.paused_reason is None and p.leased_until is None for p in passes)

    # Wednesday's plan follows the health judged on Monday: a throttled mailbox gets half its
    # quota, a paused one none.
    clock.advance(seconds=(MONDAY_5AM + timedelta(days=2) - clock.now()).total_seconds())
    plans = plan_mailboxes(engine, boxes.emails, settings, clock, replan=False)
    for plan in plans:
        state = health[plan.mailbox_id].state
        kept = {HealthState.THROTTLED: plan.quota.ramp // 2, HealthState.PAUSED: 0}
        assert plan.quota.value == kept.get(state, plan.quota.ramp), plan
        assert ("health" in plan.quota.reason) is (state in kept)
