"""Before a reclaimed job is sent again, the sender looks for its message over IMAP in the
recipient's mailbox (real Dovecot, and an SMTP server delivering into it).

A run "dies" after its server took its messages and before it wrote so: its outcome writes
are switched off, so its jobs stay in flight with their leases, as a SIGKILL leaves them
(`test_killed_runs` kills real processes). Another run takes them over past the lease.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster import queue
from warmup_dagster.clock import FixedClock
from warmup_dagster.db.models import JobStatus, Mailbox, SendLog, WarmupJob
from warmup_dagster.queue import Recorded
from warmup_dagster.sending.worker import Sender
from warmup_dagster.testing.imap_server import DeliveringSmtp
from warmup_dagster.testing.smtp_server import closed_port
from warmup_dagster_tests.conftest import MONDAY_5AM
from warmup_dagster_tests.engagement.conftest import engage_settings, pool, started_dovecot
from warmup_dagster_tests.factories import add_job
from warmup_dagster_tests.sending.test_sender import KEY

NINE = MONDAY_5AM.replace(hour=9)
LEASE = 600


@pytest.fixture(scope="module")
def dovecot(cert):
    """One Dovecot for the module (each test's Message-IDs are its own): starting and stopping
    it is most of a test's time."""
    server = started_dovecot(cert)
    yield server
    server.stop()


@pytest.fixture
def smtp(dovecot, cert):
    """Delivers into Dovecot, to the INBOX until a test sets its `rule` for Junk."""
    with DeliveringSmtp(
        dovecot,
        rule=lambda message_id: False,
        users={},
        tls="starttls",
        cert=cert[0],
        key=cert[1],
    ) as server:
        yield server


def send_jobs(engine, ids, pairs):
    """One job per (sender, recipient) address pair, due at nine; returns their ids."""
    with Session(engine) as session, session.begin():
        out = []
        for sender, recipient in pairs:
            box, to = session.get(Mailbox, ids[sender]), session.get(Mailbox, ids[recipient])
            out.append(add_job(session, box, to, NINE, JobStatus.PENDING, subject=None).id)
        return out


def run(engine, cipher, settings, worker, at):
    return Sender(engine, FixedClock(at), settings, cipher, KEY, worker, max_seconds=20).run()


def die_after_sending(engine, cipher, settings, monkeypatch):
    """A run whose server takes every message and that dies before writing any outcome."""
    monkeypatch.setattr(queue, "record", lambda *args, **kwargs: Recorded())
    summary = run(engine, cipher, settings, "dead", NINE)
    monkeypatch.undo()
    return summary


def log_of(engine, worker):
    with Session(engine) as session:
        rows = session.scalars(select(SendLog).where(SendLog.worker_id == worker))
        return {e.job_id: e for e in rows}


def message_ids(engine):
    with Session(engine) as session:
        return {j.id: j.message_id for j in session.scalars(select(WarmupJob))}


def statuses(engine):
    with Session(engine) as session:
        return {j.id: j.status for j in session.scalars(select(WarmupJob))}


def test_a_reclaimed_job_found_in_the_recipients_mailbox_is_not_sent_again(
    engine, cipher, cert, dovecot, smtp, monkeypatch, caplog
):
    boxes = pool(engine, cipher, smtp, dovecot, n=4)
    a, b, c, d = boxes.emails
    settings = engage_settings(cert, send_lease_seconds=str(LEASE), same_mailbox_delay_min="0.1")
    # the dead run's server took these two: a -> b (filed in b's Junk), c -> d (in d's INBOX)
    to_b, to_d = send_jobs(engine, boxes.ids, [(a, b), (c, d)])
    ids = message_ids(engine)
    smtp.rule = lambda message_id: message_id == ids[to_b]
    # d's IMAP server is down (nothing listens where its settings say): the look fails
    with Session(engine) as session, session.begin():
        session.get(Mailbox, boxes.ids[d]).imap_port = closed_port()
    assert die_after_sending(engine, cipher, settings, monkeypatch).claimed == 2
    # and this one it claimed, then died before its session: b -> a never went out
    [to_a] = send_jobs(engine, boxes.ids, [(b, a)])
    assert len(queue.claim(engine, settings, lambda: NINE, "dead", 10, KEY).jobs) == 1
    assert len(smtp.received) == 2

    past_lease = NINE + timedelta(seconds=LEASE + 1)
    caplog.set_level(logging.INFO)
    summary = run(engine, cipher, settings, "w2", past_lease)

    assert summary.reclaimed == 3
    assert summary.metadata()["reclaimed, found delivered (not sent again)"] == 1
    sent = Counter(r.message["Message-ID"] for r in smtp.received)
    ids = message_ids(engine)
    # found in b's Junk: not sent again; not found in a's: sent; d's look failed: sent again
    assert sent == {ids[to_b]: 1, ids[to_a]: 1, ids[to_d]: 2}
    assert statuses(engine) == dict.fromkeys([to_b, to_d, to_a], JobStatus.SENT)
    log = log_of(engine, "w2")
    assert {job: e.status for job, e in log.items()} == dict.fromkeys(
        [to_b, to_d, to_a], JobStatus.SENT
    )
    assert log[to_b].smtp_code is None
    assert log[to_b].error == (
        f"reclaimed; found over IMAP in {b}'s Junk: its abandoned attempt had delivered it, "
        "not sent again"
    )
    assert log[to_a].smtp_code == 250
    assert log[to_a].error == (
        f"reclaimed; looked over IMAP in {a}'s mailbox first, not found: sent again"
    )
    assert log[to_d].smtp_code == 250
    assert log[to_d].error.startswith(f"reclaimed; the IMAP look in {d}'s mailbox failed (")
    assert "ConnectionRefusedError" in log[to_d].error
    assert log[to_d].error.endswith(": sent again")
    # the run's log says which, job by job
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("job ")]
    assert sorted(lines) == sorted(
        f"job {job} {ids[job]} to {to}: {log[job].error}"
        for job, to in ((to_b, b), (to_a, a), (to_d, d))
    )
    # the abandoned attempts stay on record as possibly delivered
    closed = log_of(engine, "dead")
    assert {e.error.split(";")[0] for e in closed.values()} == {
        "abandoned: outcome unknown, possibly delivered"
    }


def test_without_the_look_a_reclaimed_job_is_sent_again(
    engine, cipher, cert, dovecot, smtp, monkeypatch
):
    boxes = pool(engine, cipher, smtp, dovecot, n=2)
    a, b = boxes.emails
    settings = engage_settings(cert, send_lease_seconds=str(LEASE), reclaim_imap_check="false")
    [job] = send_jobs(engine, boxes.ids, [(a, b)])
    die_after_sending(engine, cipher, settings, monkeypatch)

    summary = run(engine, cipher, settings, "w2", NINE + timedelta(seconds=LEASE + 1))

    assert summary.reclaimed == 1 and summary.found_delivered == 0
    assert [r.message["Message-ID"] for r in smtp.received] == [message_ids(engine)[job]] * 2
    assert log_of(engine, "w2")[job].error is None
