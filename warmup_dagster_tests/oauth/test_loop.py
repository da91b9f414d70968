"""The whole loop with OAuth2 mailboxes, on both databases, against real servers: the local
OAuth2 provider, an SMTP server that takes only XOAUTH2 (checked against it) and delivers
into Dovecot, whose `oauth2` passdb checks tokens at the provider's introspection endpoint.
Plan, send with XOAUTH2, engage with XOAUTH2, the tokens refreshed when they run out (not per
send), and a revoked consent pausing its mailbox with the reason."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster.db.engine import writing
from warmup_dagster.db.models import (
    EngagementMailbox,
    JobKind,
    JobStatus,
    Mailbox,
    MailboxState,
    Security,
)
from warmup_dagster.oauth.providers import GENERIC
from warmup_dagster.oauth.tokens import save_connection
from warmup_dagster.planning.planner import plan_mailboxes
from warmup_dagster.testing.imap_server import DeliveringSmtp, DovecotServer
from warmup_dagster_tests.conftest import MONDAY_5AM
from warmup_dagster_tests.engagement.conftest import engage_settings, started_dovecot
from warmup_dagster_tests.engagement.test_loop import engage, jobs, send_until
from warmup_dagster_tests.factories import add_mailbox, add_user
from warmup_dagster_tests.oauth.conftest import LIFETIME

MARGIN = 300  # WARMUP_OAUTH_REFRESH_MARGIN_SECONDS's default
SENDS = 4  # each mailbox's Monday (ramp start)


@pytest.fixture
def dovecot(cert, provider) -> Iterator[DovecotServer]:
    server = started_dovecot(cert, oauth2_introspection_url=provider.introspection_url)
    yield server
    server.stop()


@pytest.fixture
def smtp(dovecot, cert, provider) -> Iterator[DeliveringSmtp]:
    """Takes XOAUTH2 only (no password users); every other message it delivers to Junk."""
    turn = itertools.count()
    with DeliveringSmtp(
        dovecot,
        rule=lambda message_id: next(turn) % 2 == 0,
        users={},
        oauth=provider,
        tls="starttls",
        cert=cert[0],
        key=cert[1],
    ) as server:
        yield server


def oauth_pool(engine, cipher, smtp, dovecot, provider, n: int = 4) -> dict[str, int]:
    """`n` mailboxes of two owners that sign in with OAuth2 only: their stored passwords are
    empty (as an oauth2 import row leaves them), so a login by password could not succeed."""
    ids = {}
    with Session(engine) as session, session.begin():
        owners = [add_user(session, f"owner{u}", MONDAY_5AM, plan="pro") for u in range(2)]
        for k in range(n):
            email = f"person{k}@d{k}.example"
            box = add_mailbox(
                session,
                owners[k % 2],
                email,
                MONDAY_5AM,
                cipher,
                smtp_host="localhost",
                smtp_port=smtp.port,
                smtp_security=Security.STARTTLS,
                smtp_password_enc=cipher.encrypt(""),
                imap_host="localhost",
                imap_port=dovecot.ssl_port,
                imap_security=Security.SSL,
                imap_password_enc=cipher.encrypt(""),
                reply_rate=1.0,
                ramp_start=SENDS,
            )
            ids[email] = box.id
            # The delivering server stores mail as the user by password; the mailbox never.
            dovecot.add_user(email, "delivery-only")
    with writing(engine) as conn:
        for email, box_id in ids.items():
            save_connection(conn, cipher, box_id, GENERIC, provider.grant(email), MONDAY_5AM)
    return ids


def expected_refreshes(session_times: list) -> int:
    """Refreshes a mailbox needs for sessions at these times: the first, then one each time
    a session comes within the margin of the last token's expiry."""
    count, last = 0, None
    for at in sorted(set(session_times)):
        if last is None or at >= last + timedelta(seconds=LIFETIME - MARGIN):
            count, last = count + 1, at
    return count


@pytest.mark.slow(30)
def test_plan_send_and_engage_with_xoauth2_refreshing_and_a_revoked_consent(
    engine,
    cipher,
    clock,
    smtp,
    dovecot,
    provider,
    cert,
):
    settings = engage_settings(
        cert,
        **{k.removeprefix("WARMUP_").lower(): v for k, v in provider.settings().items()},
        oauth_retry_base_seconds="0.01",
    )
    boxes = oauth_pool(engine, cipher, smtp, dovecot, provider)
    plans = plan_mailboxes(engine, list(boxes), settings, clock, replan=False)
    assert sum(p.planned for p in plans) == 4 * SENDS

    # Monday 06:00-12:00: everything goes out by XOAUTH2 (the server has no password users).
    send_until(engine, clock, settings, cipher, MONDAY_5AM.replace(hour=12))
    sends = jobs(engine, JobKind.SEND)
    assert [j.status for j in sends] == [JobStatus.SENT] * (4 * SENDS)
    assert len(smtp.delivered) == 4 * SENDS and smtp.logins_refused == 0
    # Each mailbox's token was refreshed when it ran out, not per send: the sender's sessions
    # (a run's clock stands still, so `sent_at` is its session's time) say how often.
    sessions = defaultdict(list)
    for job in sends:
        sessions[job.mailbox_id].append(job.sent_at)
    for email, box_id in boxes.items():
        assert len(sessions[box_id]) == SENDS
        assert provider.refreshes[email] == expected_refreshes(sessions[box_id]), email
    assert sum(provider.refreshes.values()) < len(sends)
    before = dict(provider.refreshes)

    # Two hours on every token has expired: each mailbox's engagement pass (its received mail
    # and its sent copies in one session) refreshes it once, mid-loop, and signs in by XOAUTH2.
    clock.advance(hours=2)
    summary = engage(engine, clock, settings, cipher)
    assert summary.taken_in == 4 * SENDS and summary.replies == 4 * SENDS
    assert summary.paused_mailboxes == summary.failed_mailboxes == 0
    assert sum(summary.placements.values()) == 4 * SENDS
    for email in boxes:
        assert provider.refreshes[email] == before[email] + 1
        assert dovecot.messages(email, "INBOX") == []
    log = (dovecot.folder / "dovecot.log").read_text()
    for email in boxes:
        assert f"Login: user=<{email}>, method=XOAUTH2" in log
    assert provider.introspections >= 4

    # person0's owner revokes the consent. Tuesday its replies would go out: its token has
    # expired, the provider refuses the refresh (invalid_grant), and the mailbox pauses with
    # the reason, its replies held; the provider is asked once, not once per reply.
    revoked = "person0@d0.example"
    provider.revoke(revoked)
    tuesday = MONDAY_5AM + timedelta(days=1)
    clock.advance(seconds=(tuesday - clock.now()).total_seconds())
    send_until(engine, clock, settings, cipher, tuesday.replace(hour=12))
    replies = jobs(engine, JobKind.REPLY)
    assert len(replies) == 4 * SENDS
    held = [r for r in replies if r.mailbox_id == boxes[revoked]]
    assert held and all(r.status in (JobStatus.PENDING, JobStatus.RETRY) for r in held)
    assert {r.status for r in replies if r.mailbox_id != boxes[revoked]} == {JobStatus.SENT}
    assert provider.refused[revoked] == 1
    with Session(engine) as session:
        box = session.get(Mailbox, boxes[revoked])
        assert box.state is MailboxState.PAUSED
        assert "invalid_grant" in box.state_reason
        assert f"warmup mailboxes connect {revoked} --provider generic" in box.state_reason
        others = session.scalars(select(Mailbox).where(Mailbox.id != boxes[revoked]))
        assert {b.state for b in others} == {MailboxState.ACTIVE}

    # Its engagement pauses with it, without asking the provider again; the others engage,
    # person1 although the provider ended its access token early: Dovecot refuses the stored
    # token, which is renewed once and the pass done with the new one.
    clock.advance(minutes=30)
    early = "person1@d1.example"
    provider.drop_access(early)
    refreshed = provider.refreshes[early]
    summary = engage(engine, clock, settings, cipher)
    assert provider.refreshes[early] == refreshed + 1
    assert summary.paused_mailboxes == 1 and summary.failed_mailboxes == 0
    with Session(engine) as session:
        paused = {p.mailbox_id: p.paused_reason for p in session.scalars(select(EngagementMailbox))}
    assert "invalid_grant" in paused[boxes[revoked]]
    assert all(paused[i] is None for e, i in boxes.items() if e != revoked)
    assert provider.refused[revoked] == 1
