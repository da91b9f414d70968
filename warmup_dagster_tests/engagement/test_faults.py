"""Engagement against real Dovecot when things go wrong, on both databases: a wrong IMAP
password, a connection dropped mid-session, folders that do not exist, mail that never came,
and an untrusted certificate."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster.clock import FixedClock
from warmup_dagster.core.content import job_message_id
from warmup_dagster.core.health import HealthState
from warmup_dagster.db.models import (
    Engagement,
    EngagementMailbox,
    ImapRefusal,
    JobKind,
    JobStatus,
    Mailbox,
    MailboxHealth,
    MailboxState,
    Placement,
    Security,
    SentCopy,
    WarmupJob,
)
from warmup_dagster.engagement.mailboxes import due_mailboxes
from warmup_dagster.engagement.run import Engager
from warmup_dagster.health import placement
from warmup_dagster.health import store as health_store
from warmup_dagster.mailboxes.service import list_mailboxes, set_state
from warmup_dagster.sending.messages import Outgoing, build_message
from warmup_dagster.testing.certificates import self_signed_cert
from warmup_dagster.testing.imap_server import JUNK, SENT, DovecotServer, DroppingProxy
from warmup_dagster_tests.conftest import MONDAY_5AM
from warmup_dagster_tests.engagement.conftest import PASSWORD, engage_settings
from warmup_dagster_tests.factories import add_engagement, add_job, add_mailbox, add_user, log_send
from warmup_dagster_tests.sending.test_sender import KEY

NINE = MONDAY_5AM.replace(hour=9)


def two_boxes(engine, cipher, dovecot, port=None, security=Security.NONE, **recipient):
    """A sender and a recipient on `dovecot` (the recipient's IMAP settings overridable)."""
    with Session(engine) as session, session.begin():
        owner = add_user(session, "owner", MONDAY_5AM, plan="pro")
        boxes = []
        for name, extra in (("sender@s.example", {}), ("rcpt@r.example", recipient)):
            values = dict(
                imap_host="127.0.0.1",
                imap_port=port or dovecot.port,
                imap_security=security,
                imap_password_enc=cipher.encrypt(PASSWORD),
                reply_rate=0.0,
            )
            values.update(extra)
            boxes.append(add_mailbox(session, owner, name, MONDAY_5AM, cipher, **values))
            dovecot.add_user(name, PASSWORD)
        return boxes[0].id, boxes[1].id


def deliver(engine, dovecot, sender_id, recipient_id, folder="INBOX", n=1, at=NINE):
    """`n` sent jobs from sender to recipient, logged as sent at `at` and delivered into
    `folder` (with the sender's copy in its Sent folder); returns their Message-IDs."""
    ids = []
    with Session(engine) as session, session.begin():
        sender, recipient = session.get(Mailbox, sender_id), session.get(Mailbox, recipient_id)
        for k in range(n):
            job = add_job(session, sender, recipient, at, JobStatus.SENT, message_id=None)
            job.message_id, job.token = job_message_id(KEY, job.id, k, sender.domain)
            job.sent_at = at
            session.flush()
            log_send(session, job, at)
            raw = build_message(
                Outgoing(job.id, sender.email, recipient.email, job.message_id, job.subject, "hi"),
                at,
            ).as_bytes()
            ids.append((job.message_id, raw))
    for _, raw in ids:
        dovecot.append("rcpt@r.example", folder, raw)
        if dovecot.sent:
            dovecot.append("sender@s.example", SENT, raw, flags=("\\Seen",))
    return [m for m, _ in ids]


def engage(engine, clock, settings, cipher):
    return Engager(engine, clock, settings, cipher, KEY, "engager").run()


def rows(engine):
    with Session(engine) as session:
        return {e.message_id: e for e in session.scalars(select(Engagement))}


def box_state(engine, box_id):
    with Session(engine) as session:
        return session.get(EngagementMailbox, box_id)


@pytest.fixture
def plain_dovecot():
    with DovecotServer() as server:
        yield server


def test_a_wrong_imap_password_pauses_engagement_of_that_mailbox_with_the_reason(
    engine, cipher, plain_dovecot, tmp_path
):
    cert = self_signed_cert(tmp_path)
    settings = engage_settings(cert)
    sender, recipient = two_boxes(
        engine, cipher, plain_dovecot, imap_password_enc=cipher.encrypt("wrong")
    )
    (message_id,) = deliver(engine, plain_dovecot, sender, recipient)
    clock = FixedClock(NINE + timedelta(minutes=10))
    summary = engage(engine, clock, settings, cipher)

    assert summary.paused_mailboxes == 1
    state = box_state(engine, recipient)
    assert state.paused_reason.startswith("IMAP login refused by 127.0.0.1:")
    e = rows(engine)[message_id]
    assert not e.done and e.placement is Placement.PENDING and e.error == state.paused_reason
    # the message is untouched, the sender's own pass went on
    assert [m.message_id for m in plain_dovecot.messages("rcpt@r.example")] == [message_id]
    assert e.sent_copy is SentCopy.FILED
    # visible where operators look; not taken again while paused
    views = {v.email: v for v in list_mailboxes(engine)}
    assert views["rcpt@r.example"].engagement_paused == state.paused_reason
    with engine.connect() as conn:
        assert recipient not in due_mailboxes(conn, clock.advance(hours=1), 100)
    # resuming the mailbox lifts the pause; with the right password the mail is handled
    set_state(engine, "rcpt@r.example", MailboxState.ACTIVE, None, clock)
    with Session(engine) as session, session.begin():
        session.get(Mailbox, recipient).imap_password_enc = cipher.encrypt(PASSWORD)
    assert box_state(engine, recipient).paused_reason is None
    engage(engine, clock, settings, cipher)
    e = rows(engine)[message_id]
    assert e.done and e.placement is Placement.INBOX and e.seen and e.filed


def test_a_refused_imap_login_is_an_auth_failure_in_health(engine, cipher, plain_dovecot, tmp_path):
    """Each refusal is kept (`imap_refusals`) and health counts it with the SMTP auth failures
    of the mailbox whose login it was: one is WATCH, a second after a resume THROTTLED; a
    week on, out of the window, none."""
    settings = engage_settings(self_signed_cert(tmp_path))
    sender, recipient = two_boxes(
        engine, cipher, plain_dovecot, imap_password_enc=cipher.encrypt("wrong")
    )
    deliver(engine, plain_dovecot, sender, recipient)
    clock = FixedClock(NINE + timedelta(minutes=10))
    engage(engine, clock, settings, cipher)
    reason = box_state(engine, recipient).paused_reason
    with Session(engine) as session:
        [refusal] = session.scalars(select(ImapRefusal)).all()
    assert (refusal.mailbox_id, refusal.at, refusal.reason) == (recipient, clock.now(), reason)
    monday = NINE.date()
    assert refusal.local_date == monday
    with engine.connect() as conn:
        assert placement.by_day(conn, monday, monday)[recipient, monday].auth_failures == 1
    health_store.refresh(engine, settings, clock.now())
    with Session(engine) as session:
        verdict = session.get_one(MailboxHealth, recipient)
    assert (verdict.state, verdict.auth_failures) == (HealthState.WATCH, 1)
    assert verdict.reason == "1 auth failures (watch at 1)"

    # Resumed with the password still wrong: refused again, paused again, counted again.
    set_state(engine, "rcpt@r.example", MailboxState.ACTIVE, None, clock)
    clock.advance(minutes=settings.engage_recheck_minutes)
    engage(engine, clock, settings, cipher)
    assert box_state(engine, recipient).paused_reason == reason
    health_store.refresh(engine, settings, clock.now())
    with Session(engine) as session:
        verdict = session.get_one(MailboxHealth, recipient)
        assert len(session.scalars(select(ImapRefusal)).all()) == 2
    assert (verdict.state, verdict.auth_failures) == (HealthState.THROTTLED, 2)
    assert verdict.reason == "2 auth failures (throttled at 2)"
    with Session(engine) as session:  # the sender's logins were never refused, its mail unplaced
        assert session.get(MailboxHealth, sender) is None

    later = clock.now() + timedelta(days=settings.health_window_days + 1)
    health_store.refresh(engine, settings, later)
    with Session(engine) as session:
        assert session.get(MailboxHealth, recipient) is None  # nothing in the window


def test_a_connection_dropped_mid_session_fails_that_mailbox_and_loses_nothing(
    engine, cipher, plain_dovecot, tmp_path
):
    """The session is cut after the rescue from Junk and before the filing: the pass fails
    cleanly, the placement stays SPAM, and the next pass finishes the job."""
    cert = self_signed_cert(tmp_path)
    settings = engage_settings(cert)
    with DroppingProxy(
        (plain_dovecot.host, plain_dovecot.port), on=b"UID MOVE", let_through=1
    ) as proxy:
        sender, recipient = two_boxes(
            engine, cipher, plain_dovecot, imap_port=proxy.port, imap_security=Security.NONE
        )
        junk = deliver(engine, plain_dovecot, sender, recipient, JUNK, n=2)
        inbox = deliver(engine, plain_dovecot, sender, recipient, "INBOX", n=1)
        clock = FixedClock(NINE + timedelta(minutes=10))
        summary = engage(engine, clock, settings, cipher)
        assert proxy.drops == 1 and summary.failed_mailboxes == 1

    state = box_state(engine, recipient)
    assert "IMAP session with 127.0.0.1" in state.last_error and state.paused_reason is None
    assert state.leased_until is None  # given back: another pass may take it
    found = rows(engine)
    for message_id in junk + inbox:
        e = found[message_id]
        assert not e.done and e.attempts == 1 and e.error == state.last_error
        assert e.due_at == clock.now() + timedelta(minutes=settings.engage_recheck_minutes)
    # where each landed was recorded before anything moved; the rescue had happened
    assert {found[m].placement for m in junk} == {Placement.SPAM}
    assert found[inbox[0]].placement is Placement.INBOX
    assert plain_dovecot.messages("rcpt@r.example", JUNK) == []
    assert len(plain_dovecot.messages("rcpt@r.example", "INBOX")) == 3

    # The server answers again (straight, no proxy): the next pass, once due, finishes.
    with Session(engine) as session, session.begin():
        session.get(Mailbox, recipient).imap_port = plain_dovecot.port
    clock.advance(minutes=settings.engage_recheck_minutes)
    engage(engine, clock, settings, cipher)
    found = rows(engine)
    assert {found[m].placement for m in junk} == {Placement.SPAM}
    assert all(found[m].done and found[m].filed and found[m].seen for m in junk + inbox)
    assert plain_dovecot.messages("rcpt@r.example", "INBOX") == []
    assert sorted(m.message_id for m in plain_dovecot.messages("rcpt@r.example", "Warmup")) == (
        sorted(junk + inbox)
    )


def test_folders_that_do_not_exist_are_created_or_done_without(engine, cipher, tmp_path):
    """No Junk and no Sent folder, and a Warmup folder under a parent that does not exist:
    mail is found in the inbox, filed into the new folder, the sender's copy is ABSENT."""
    cert = self_signed_cert(tmp_path)
    settings = engage_settings(cert, engage_folder="Archive/Warmup")
    with DovecotServer(junk=False, sent=False) as dovecot:
        sender, recipient = two_boxes(engine, cipher, dovecot)
        assert dovecot.folders("rcpt@r.example") == ["INBOX"]
        ids = deliver(engine, dovecot, sender, recipient, JUNK, n=2)  # no Junk: the inbox
        clock = FixedClock(NINE + timedelta(minutes=10))
        summary = engage(engine, clock, settings, cipher)
        assert summary.failed_mailboxes == 0 and summary.paused_mailboxes == 0
        assert "Archive/Warmup" in dovecot.folders("rcpt@r.example")
        assert sorted(m.message_id for m in dovecot.messages("rcpt@r.example", "Archive/Warmup"))
        assert dovecot.messages("rcpt@r.example", "INBOX") == []
    found = rows(engine)
    for message_id in ids:
        e = found[message_id]
        assert e.done and e.placement is Placement.INBOX and e.filed
        assert e.sent_copy is SentCopy.ABSENT


def test_mail_that_never_came_is_looked_for_until_the_grace_period_then_not_found(
    engine, cipher, plain_dovecot, tmp_path
):
    cert = self_signed_cert(tmp_path)
    settings = engage_settings(cert)
    sender, recipient = two_boxes(engine, cipher, plain_dovecot)
    (message_id,) = deliver(engine, plain_dovecot, sender, recipient)
    # the owner deleted it before anyone looked
    imap = plain_dovecot.client("rcpt@r.example")
    imap.select_folder("INBOX")
    imap.delete_messages(imap.search("ALL"))
    imap.expunge()
    imap.logout()
    clock = FixedClock(NINE + timedelta(minutes=10))
    engage(engine, clock, settings, cipher)
    e = rows(engine)[message_id]
    assert not e.done and e.placement is Placement.PENDING
    assert e.due_at == clock.now() + timedelta(minutes=settings.engage_recheck_minutes)
    clock.advance(minutes=settings.engage_not_found_minutes)
    engage(engine, clock, settings, cipher)
    e = rows(engine)[message_id]
    assert e.done and e.placement is Placement.NOT_FOUND and not e.seen
    with Session(engine) as session:
        job = session.scalar(select(WarmupJob).where(WarmupJob.kind == JobKind.SEND))
    assert job.status is JobStatus.SENT  # never answered


def test_an_untrusted_certificate_pauses_engagement_and_plaintext_goes_to_loopback_only(
    engine, cipher, tmp_path
):
    (tmp_path / "server").mkdir()
    (tmp_path / "other").mkdir()
    cert = self_signed_cert(tmp_path / "server")
    other = self_signed_cert(tmp_path / "other")
    settings = engage_settings(other)  # trusts another CA, not the server's
    with DovecotServer(cert=cert[0], key=cert[1]) as dovecot:
        sender, recipient = two_boxes(
            engine, cipher, dovecot, port=dovecot.ssl_port, security=Security.SSL
        )
        with Session(engine) as session, session.begin():
            for box_id in (sender, recipient):
                session.get(Mailbox, box_id).imap_host = "localhost"
            # the sender's IMAP is plaintext to another host: refused, never tried
            sender_box = session.get(Mailbox, sender)
            sender_box.imap_host, sender_box.imap_security = "imap.s.example", Security.NONE
        deliver(engine, dovecot, sender, recipient)
        engage(engine, FixedClock(NINE + timedelta(minutes=10)), settings, cipher)
    assert box_state(engine, recipient).paused_reason.startswith("certificate of localhost:")
    assert "plaintext IMAP is allowed to loopback only" in box_state(engine, sender).paused_reason
    with Session(engine) as session:  # paused, but no login was refused: no auth failure
        assert session.scalars(select(ImapRefusal)).all() == []


def test_mail_whose_message_id_is_not_a_warmup_id_is_settled_in_one_pass(
    engine, cipher, plain_dovecot, tmp_path
):
    """Neither side looks for it: the recipient's row is NOT_FOUND with the reason, the
    sender's copy ABSENT, and neither mailbox is due again (the run leased each once; a copy
    left PENDING kept its sender due, leased again and again up to the run's limit)."""
    settings = engage_settings(self_signed_cert(tmp_path))
    sender, recipient = two_boxes(engine, cipher, plain_dovecot)
    with Session(engine) as session, session.begin():
        job = add_job(
            session,
            session.get_one(Mailbox, sender),
            session.get_one(Mailbox, recipient),
            NINE,
            JobStatus.SENT,
        )
        message_id = job.message_id
        add_engagement(session, job)
    clock = FixedClock(NINE + timedelta(minutes=10))
    summary = engage(engine, clock, settings, cipher)
    assert summary.mailboxes == 2
    e = rows(engine)[message_id]
    assert e.done and e.placement is Placement.NOT_FOUND
    assert e.error == "not a warmup Message-ID: not looked for"
    assert e.sent_copy is SentCopy.ABSENT
    with engine.connect() as conn:
        assert due_mailboxes(conn, clock.now(), 100) == []
