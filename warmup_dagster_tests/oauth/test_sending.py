"""Sender runs with OAuth2 mailboxes against an SMTP server taking XOAUTH2 only: a token the
server refuses before its expiry is renewed once, a fresh one refused pauses the mailbox
(no loop of refreshes), a provider that is down leaves the jobs to be retried, and a token
that runs out while its run goes on is refreshed in that run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from warmup_dagster.clock import RealClock
from warmup_dagster.core.delivery import Outcome
from warmup_dagster.db.engine import writing
from warmup_dagster.db.models import JobStatus, Mailbox, MailboxState
from warmup_dagster.oauth.providers import GENERIC
from warmup_dagster.oauth.tokens import TokenStore, save_connection
from warmup_dagster.sending.worker import Sender
from warmup_dagster.testing.oauth_server import OAuthServer
from warmup_dagster.testing.smtp_server import FaultySmtpServer
from warmup_dagster_tests.oauth.test_loop import MARGIN
from warmup_dagster_tests.sending.test_sender import (
    KEY,
    START,
    clock,
    job_rows,
    jobs,
    mailboxes,
    run,
    settings_for,
)

EMAIL = "box0@u0.example"


@pytest.fixture
def smtp(cert, provider):
    with FaultySmtpServer(
        users={}, oauth=provider, tls="starttls", cert=cert[0], key=cert[1]
    ) as server:
        yield server


def oauth_box(engine, cipher, smtp, provider) -> int:
    (box_id,) = mailboxes(engine, cipher, smtp, password="")
    smtp.users.clear()  # no password works here: only XOAUTH2
    with writing(engine) as conn:
        save_connection(conn, cipher, box_id, GENERIC, provider.grant(EMAIL), START)
    return box_id


def settings(cert, provider, speed: float = 1.0):
    """For runs whose clock goes at `speed`: the timeouts (clock time) are real seconds."""
    env = {k.removeprefix("WARMUP_").lower(): v for k, v in provider.settings().items()}
    return settings_for(
        cert, speed, oauth_retry_base_seconds="0.01", oauth_timeout_seconds=str(10 * speed), **env
    )


def test_a_token_refused_before_its_expiry_is_renewed_once(engine, cipher, cert, smtp, provider):
    box = oauth_box(engine, cipher, smtp, provider)
    s = settings(cert, provider)
    TokenStore(engine, RealClock(), s, cipher).login(box)  # an earlier run's token, stored
    provider.drop_access(EMAIL)
    (job,) = jobs(engine, [box], ["p@x.example"], at=START - timedelta(minutes=1))
    run(engine, s, cipher)
    assert job_rows(engine)[job].status is JobStatus.SENT
    assert smtp.logins_refused == 1 and provider.refreshes[EMAIL] == 2
    with Session(engine) as session:
        assert session.get(Mailbox, box).state is MailboxState.ACTIVE


def test_a_fresh_token_refused_pauses_without_refreshing_again(engine, cipher, cert, provider):
    with OAuthServer() as elsewhere, FaultySmtpServer(
        users={}, oauth=elsewhere, tls="starttls", cert=cert[0], key=cert[1]
    ) as smtp:  # fmt: skip
        box = oauth_box(engine, cipher, smtp, provider)
        jobs(engine, [box], ["p@x.example", "q@x.example"], at=START - timedelta(minutes=10))
        summary = run(engine, settings(cert, provider), cipher)
    assert summary.paused_mailboxes == {box}
    assert provider.refreshes[EMAIL] == 1 and smtp.logins_refused == 1
    assert {j.status for j in job_rows(engine).values()} == {JobStatus.PENDING}
    with Session(engine) as session:
        paused = session.get(Mailbox, box)
        assert paused.state is MailboxState.PAUSED and "535" in paused.state_reason


def test_a_provider_that_is_down_leaves_the_jobs_to_retry(engine, cipher, cert, smtp, provider):
    box = oauth_box(engine, cipher, smtp, provider)
    provider.fail_next(3)  # every attempt of the refresh
    (job,) = jobs(engine, [box], ["p@x.example"], at=START - timedelta(minutes=1))
    run(engine, settings(cert, provider), cipher)
    row = job_rows(engine)[job]
    assert row.status is JobStatus.RETRY
    assert "OAuth2 token refresh at generic failed for now: HTTP 503" in row.error
    assert smtp.received == []
    with Session(engine) as session:
        assert session.get(Mailbox, box).state is MailboxState.ACTIVE


@pytest.mark.slow(15)
def test_a_token_that_runs_out_mid_run_is_refreshed_in_that_run(engine, cipher, cert):
    """One run on a moving clock sends a mailbox's mail 3 clock minutes apart for 21 minutes
    while its access tokens live 15: the run refreshes the token when it comes within the
    margin of its expiry, and the server (asking the provider) never sees an expired one."""
    speed, lifetime = 120.0, 900
    moving = clock(speed)
    # The provider's `expires_in` is real seconds: 7.5, 15 clock minutes at 120x.
    with OAuthServer(clock=moving, lifetime=lifetime / speed) as provider, FaultySmtpServer(
        users={}, oauth=provider, tls="starttls", cert=cert[0], key=cert[1]
    ) as smtp:  # fmt: skip
        box = oauth_box(engine, cipher, smtp, provider)
        sent = jobs(engine, [box], [f"p{k}@x.example" for k in range(8)], at=START)
        sender = Sender(
            engine, moving, settings(cert, provider, speed), cipher, KEY, "w1", max_seconds=25 * 60
        )
        summary = sender.run()
    rows = job_rows(engine)
    assert [rows[j].status for j in sent] == [JobStatus.SENT] * 8
    assert summary.outcomes[Outcome.SENT] == 8
    assert len(smtp.received) == 8 and smtp.logins_refused == 0
    # Sessions at minutes 0-21 of one run: a refresh at the first, then one each time a
    # session comes within the margin of the last token's expiry, 10 minutes on (the session
    # at 12; a third if a loaded machine ran the last sessions late), never one per send.
    assert lifetime - MARGIN == 600
    assert 2 <= provider.refreshes[EMAIL] <= 3
