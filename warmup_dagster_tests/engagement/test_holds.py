"""A mailbox that may not send answers nothing: its mail is still read, rescued and filed,
but no reply is queued while its health is PAUSED, its domain is held by the gate or its
owner paused it. Against real Dovecot on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster.clock import FixedClock
from warmup_dagster.db.models import JobKind, JobStatus, Mailbox, MailboxState, Placement, WarmupJob
from warmup_dagster.domains import store as domain_store
from warmup_dagster.domains.model import DMARC, Check, Report, Status
from warmup_dagster.health import store as health_store
from warmup_dagster.mailboxes.service import set_state
from warmup_dagster.testing.imap_server import DovecotServer
from warmup_dagster_tests.engagement.conftest import engage_settings
from warmup_dagster_tests.engagement.test_faults import NINE, deliver, engage, rows, two_boxes
from warmup_dagster_tests.factories import add_engagement, add_job


def _spam_from(engine, sender_id, recipient_id) -> None:
    """Ten of `sender_id`'s messages placed in spam the hour before."""
    with Session(engine) as session, session.begin():
        sender = session.get_one(Mailbox, sender_id)
        to = session.get_one(Mailbox, recipient_id)
        for k in range(10):
            job = add_job(session, sender, to, NINE - timedelta(minutes=60 - k), JobStatus.SENT)
            add_engagement(session, job, Placement.SPAM)


@pytest.mark.parametrize("hold", [None, "health", "domain", "owner"])
def test_a_mailbox_that_may_not_send_reads_its_mail_and_answers_none(engine, cipher, cert, hold):
    settings = engage_settings(cert, health_min_messages="5", domain_gate="hold")
    clock = FixedClock(NINE + timedelta(minutes=10))
    with DovecotServer() as dovecot:
        sender, recipient = two_boxes(engine, cipher, dovecot, reply_rate=1.0)
        if hold == "health":
            _spam_from(engine, recipient, sender)
            health_store.refresh(engine, settings, NINE)
        elif hold == "domain":
            failing = Check(DMARC, Status.FAIL, "no DMARC record")
            domain_store.save(engine, [Report("r.example", (failing,))], NINE)
        elif hold == "owner":
            set_state(engine, "rcpt@r.example", MailboxState.PAUSED, "owner's holiday", clock)
        (message_id,) = deliver(engine, dovecot, sender, recipient)
        summary = engage(engine, clock, settings, cipher)
        assert [m.message_id for m in dovecot.messages("rcpt@r.example", "Warmup")] == [message_id]
    e = rows(engine)[message_id]
    assert e.done and e.seen and e.filed and e.placement is Placement.INBOX
    with Session(engine) as session:
        replies = session.scalars(select(WarmupJob).where(WarmupJob.kind == JobKind.REPLY)).all()
        original = session.get_one(WarmupJob, e.job_id)
    if hold is None:  # the control: a mailbox free to send answers (reply rate 1)
        assert summary.replies == 1 and len(replies) == 1 and e.reply_job_id == replies[0].id
        assert original.status is JobStatus.REPLIED
    else:
        assert summary.replies == 0 and replies == [] and e.reply_job_id is None
        assert original.status is JobStatus.SENT
