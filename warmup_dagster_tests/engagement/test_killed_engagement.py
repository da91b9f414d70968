"""Engagement runs SIGKILLed mid-pass against real Dovecot, on both databases: the next run
finishes the work, nothing is engaged twice and nothing is lost.

Eight mailboxes each received mail from the next, half of it in Junk, with the senders' copies in
their Sent folders. Engagement runs in child processes (`testing.engager_process`), one IMAP
session at a time, are each SIGKILLed a random moment after the database shows their first
step (a placement recorded, which a session writes before it moves anything): mid-session,
between a rescue and the filing, between a pass's two transactions. Each next run starts on a
clock past the dead run's lease. A last run, in this process, goes to its end. Afterwards each
message was found where it was delivered, rescued and filed once (one copy, in the Warmup
folder, seen), answered by one reply job, and its sender's copy filed once.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from warmup_dagster.clock import FixedClock
from warmup_dagster.core.content import job_message_id
from warmup_dagster.db.models import (
    Engagement,
    EngagementMailbox,
    JobKind,
    JobStatus,
    Mailbox,
    Placement,
    Security,
    SentCopy,
    WarmupJob,
)
from warmup_dagster.engagement.run import Engager
from warmup_dagster.sending.messages import Outgoing, build_message
from warmup_dagster.settings import load_settings
from warmup_dagster.testing.engager_process import EngagerProcess
from warmup_dagster.testing.imap_server import JUNK, SENT
from warmup_dagster_tests.conftest import MONDAY_5AM, TEST_SECRET
from warmup_dagster_tests.engagement.conftest import PASSWORD
from warmup_dagster_tests.factories import add_job, add_mailbox, add_user, log_send
from warmup_dagster_tests.sending.test_sender import KEY

NINE = MONDAY_5AM.replace(hour=9)
WARMUP = "Warmup"
BOXES, PER_BOX = 8, 6
KILLS = 3
LEASE_S = 600
# Real seconds: a child to be ready, its first step to show, the sessions to end.
READY_WITHIN_S = 30.0
STEP_WITHIN_S = 30.0


def values(cert) -> dict[str, str]:
    return {
        "WARMUP_SECRET_KEY": TEST_SECRET,
        "WARMUP_IMAP_CA_FILE": str(cert[0]),
        "WARMUP_IMAP_TIMEOUT_SECONDS": "5",
        "WARMUP_ENGAGE_LEASE_SECONDS": str(LEASE_S),
        "WARMUP_ENGAGE_CONCURRENCY": "1",  # one session at a time: a kill always cuts one
        "WARMUP_SEND_WINDOW_START_HOUR": "6",
        "WARMUP_SEND_WINDOW_END_HOUR": "12",
        "WARMUP_ENGAGE_LOOK_DELAY_MIN": "1",
        "WARMUP_ENGAGE_LOOK_DELAY_MAX": "5",
        "WARMUP_ENGAGE_REPLY_DELAY_MIN": "5",
        "WARMUP_ENGAGE_REPLY_DELAY_MAX": "30",
        "WARMUP_ENGAGE_NOT_FOUND_MINUTES": "240",
        "WARMUP_ENGAGE_RECHECK_MINUTES": "10",
        "WARMUP_ENGAGE_FLAG_RATE": "0.5",
        "WARMUP_ENGAGE_MAX_TURNS": "2",
    }


def delivered_pool(engine, cipher, dovecot) -> dict[str, tuple[str, str, str]]:
    """Mailbox k sends `PER_BOX` messages to mailbox k+1 (IMAPS on `dovecot`), every other one
    into Junk, its own copy into Sent; returns Message-ID -> (sender, recipient, folder)."""
    mail: dict[str, tuple[str, str, str]] = {}
    raws: list[tuple[str, str, str, bytes]] = []
    with Session(engine) as session, session.begin():
        owners = [add_user(session, f"owner{u}", MONDAY_5AM, plan="pro") for u in range(2)]
        boxes = []
        for k in range(BOXES):
            address = f"person{k}@d{k}.example"
            boxes.append(
                add_mailbox(
                    session,
                    owners[k % 2],
                    address,
                    MONDAY_5AM,
                    cipher,
                    imap_host="localhost",
                    imap_port=dovecot.ssl_port,
                    imap_security=Security.SSL,
                    imap_password_enc=cipher.encrypt(PASSWORD),
                    reply_rate=1.0,
                )
            )
            dovecot.add_user(address, PASSWORD)
        for k, sender in enumerate(boxes):
            recipient = boxes[(k + 1) % BOXES]
            for n in range(PER_BOX):
                job = add_job(session, sender, recipient, NINE, JobStatus.SENT, message_id=None)
                job.message_id, job.token = job_message_id(KEY, job.id, n, sender.domain)
                job.sent_at = NINE
                session.flush()
                log_send(session, job, NINE)
                raw = build_message(
                    Outgoing(
                        job.id, sender.email, recipient.email, job.message_id, job.subject, "hi"
                    ),
                    NINE,
                ).as_bytes()
                folder = JUNK if n % 2 == 0 else "INBOX"
                mail[job.message_id] = (sender.email, recipient.email, folder)
                raws.append((sender.email, recipient.email, folder, raw))
    for sender, recipient, folder, raw in raws:
        dovecot.append(recipient, folder, raw)
        dovecot.append(sender, SENT, raw, flags=("\\Seen",))
    return mail


def steps(engine) -> int:
    """How far the engagement has got: placements recorded, messages done, copies settled."""
    with engine.connect() as conn:
        return conn.scalar(
            select(
                func.count(Engagement.id).filter(Engagement.placement != Placement.PENDING)
                + func.count(Engagement.id).filter(Engagement.done.is_(True))
                + func.count(Engagement.id).filter(Engagement.sent_copy != SentCopy.PENDING)
            )
        )


def wait_for_step(engine, child: EngagerProcess, since: int) -> None:
    pause = threading.Event()
    for _ in range(int(STEP_WITHIN_S / 0.005)):
        if steps(engine) > since:
            return
        if not child.is_alive():
            raise AssertionError(f"{child.name} ended before its first step")
        pause.wait(0.005)
    raise AssertionError(f"{child.name} made no step in {STEP_WITHIN_S} s")


def leased_by(engine, worker_id: str) -> list[int]:
    with engine.connect() as conn:
        return list(
            conn.scalars(
                select(EngagementMailbox.mailbox_id).where(EngagementMailbox.leased_by == worker_id)
            )
        )


def done_count(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(
            select(func.count()).select_from(Engagement).where(Engagement.done.is_(True))
        )


@pytest.mark.slow(15)
def test_an_engagement_run_killed_mid_pass_is_finished_by_the_next_once_and_loses_nothing(
    engine, db_url, cipher, cert, dovecot
):
    mail = delivered_pool(engine, cipher, dovecot)
    rng = random.Random(13)
    start = NINE + timedelta(minutes=10)
    left_leased = []  # mailboxes a dead run held when it died
    for n in range(KILLS):
        child = EngagerProcess(db_url, values(cert), TEST_SECRET, f"engager{n}", start)
        before = steps(engine)
        child.start()
        child.wait_ready(READY_WITHIN_S)
        wait_for_step(engine, child, before)
        threading.Event().wait(rng.uniform(0, 0.03))
        assert child.kill(), f"{child.name} ended before its kill"
        # The kill cut a pass short: work was left (the next run must find and finish it).
        assert done_count(engine) < len(mail)
        left_leased += leased_by(engine, child.worker_id)
        start += timedelta(seconds=LEASE_S + 60)  # past the dead run's lease
    # The kills cut sessions: the dead runs died holding mailboxes, never given back.
    assert left_leased

    clock = FixedClock(start)
    summary = Engager(engine, clock, load_settings(values(cert)), cipher, KEY, "last").run()
    assert summary.failed_mailboxes == summary.paused_mailboxes == 0

    assert_engaged_once(engine, dovecot, mail)


def assert_engaged_once(engine, dovecot, mail: dict[str, tuple[str, str, str]]) -> None:
    """Every message of `mail` handled once and nothing lost: found where it was delivered,
    rescued and filed once (one copy, in its recipient's Warmup folder, seen), answered by one
    reply job, its sender's copy filed once; every lease given back."""
    with Session(engine) as session:
        engagements = {e.message_id: e for e in session.scalars(select(Engagement))}
        jobs = list(session.scalars(select(WarmupJob)))
        passes = list(session.scalars(select(EngagementMailbox)))
    # Nothing lost: every message found where it was delivered, handled and filed, its
    # sender's copy filed.
    assert set(engagements) == set(mail)
    for message_id, (_, _, folder) in mail.items():
        e = engagements[message_id]
        assert e.placement is (Placement.SPAM if folder == JUNK else Placement.INBOX), e
        assert e.done and e.seen and e.filed, e
        assert e.sent_copy is SentCopy.FILED, e
    # Nothing twice: one reply job per message answered, the one its engagement names.
    originals = {j.id: j for j in jobs if j.kind is JobKind.SEND}
    replies = [j for j in jobs if j.kind is JobKind.REPLY]
    assert Counter(j.parent_job_id for j in replies) == Counter(set(originals))
    by_parent = {j.parent_job_id: j.id for j in replies}
    assert {e.job_id: e.reply_job_id for e in engagements.values()} == by_parent
    assert {j.status for j in originals.values()} == {JobStatus.REPLIED}
    # On the server each message is in its recipient's Warmup folder once, seen, and its
    # sender's copy in the sender's once: rescued once, filed once, nothing left behind.
    for address in {to for _, to, _ in mail.values()}:
        assert dovecot.messages(address, "INBOX") == []
        assert dovecot.messages(address, JUNK) == []
        assert dovecot.messages(address, SENT) == []
        filed = dovecot.messages(address, WARMUP)
        expected = [m for m, (s, to, _) in mail.items() if address in (s, to)]
        assert Counter(m.message_id for m in filed) == Counter(expected)
        received = [m for m in filed if mail[m.message_id][1] == address]
        assert all("\\Seen" in m.flags for m in received)
    # Every lease given back, by the run that finished.
    assert all(p.leased_until is None and p.leased_by is None for p in passes)
    with Session(engine) as session:
        boxes = session.scalar(select(func.count()).select_from(Mailbox))
    assert len(passes) == boxes
