"""The shared access tokens, on both databases, against the local OAuth2 server: one refresh
per lifetime for every store, one at a time per mailbox, a refusal pausing the mailbox and
remembered, a provider's bad minute retried."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster.db.engine import writing
from warmup_dagster.db.models import Mailbox, MailboxOAuth, MailboxState
from warmup_dagster.oauth.providers import GENERIC
from warmup_dagster.oauth.tokens import TokenRefused, TokenStore, TokenUnavailable, save_connection
from warmup_dagster_tests.factories import add_mailbox, add_user
from warmup_dagster_tests.oauth.conftest import LIFETIME, oauth_mailbox, oauth_settings

EMAIL = "owner@oauth.example"


def test_a_password_mailbox_has_no_token(engine, cipher, clock, provider):
    with Session(engine) as session, session.begin():
        user = add_user(session, "o", clock.now())
        box_id = add_mailbox(session, user, EMAIL, clock.now(), cipher).id
    store = TokenStore(engine, clock, oauth_settings(provider), cipher)
    store.prefetch({box_id})
    assert store.uses_password(box_id)
    assert store.login(box_id) is None
    assert sum(provider.refreshes.values()) == 0


def test_one_refresh_per_lifetime_shared_by_every_store(engine, cipher, clock, provider):
    box = oauth_mailbox(engine, cipher, provider, EMAIL)
    settings = oauth_settings(provider)
    first, second = (TokenStore(engine, clock, settings, cipher) for _ in range(2))
    login = first.login(box)
    assert login is not None and login.fresh
    assert provider.validate(login.token) == EMAIL
    # Another run (another store: another process or machine) uses the stored token.
    again = second.login(box)
    assert again is not None and again.token == login.token and not again.fresh
    for _ in range(5):
        assert first.login(box).token == login.token
    assert provider.refreshes[EMAIL] == 1
    with Session(engine) as session:
        row = session.get(MailboxOAuth, box)
        assert row.access_token_enc != login.token  # encrypted at rest
        assert cipher.decrypt(row.access_token_enc) == login.token
        assert row.access_expires_at == clock.now() + timedelta(seconds=LIFETIME)

    # Within the margin (300 s) before its expiry, the next login refreshes, once.
    clock.advance(seconds=LIFETIME - 299)
    renewed = second.login(box)
    assert renewed.fresh and renewed.token != login.token
    assert first.login(box).token == renewed.token
    assert provider.refreshes[EMAIL] == 2


def test_concurrent_logins_refresh_once(engine, cipher, clock, provider):
    box = oauth_mailbox(engine, cipher, provider, EMAIL)
    settings = oauth_settings(provider)
    tokens, start = [], threading.Barrier(6)

    def log_in():
        store = TokenStore(engine, clock, settings, cipher)
        start.wait()
        tokens.append(store.login(box).token)

    threads = [threading.Thread(target=log_in) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(tokens) == 6 and len(set(tokens)) == 1
    assert provider.refreshes[EMAIL] == 1


def test_a_refused_refresh_pauses_the_mailbox_and_is_not_asked_again(
    engine, cipher, clock, provider
):
    box = oauth_mailbox(engine, cipher, provider, EMAIL)
    provider.revoke(EMAIL)
    store = TokenStore(engine, clock, oauth_settings(provider), cipher)
    with pytest.raises(TokenRefused, match="invalid_grant") as refused:
        store.login(box)
    assert f"warmup mailboxes connect {EMAIL} --provider generic" in str(refused.value)
    with Session(engine) as session:
        mailbox = session.get(Mailbox, box)
        assert mailbox.state is MailboxState.PAUSED
        assert "invalid_grant" in mailbox.state_reason
    # Every later login, from any store, is refused from the table, not by the provider.
    with pytest.raises(TokenRefused, match="invalid_grant"):
        TokenStore(engine, clock, oauth_settings(provider), cipher).login(box)
    assert provider.refused[EMAIL] == 1

    # A new refresh token (connect, an import) lifts the refusal.
    with writing(engine) as conn:
        save_connection(conn, cipher, box, GENERIC, provider.grant(EMAIL), clock.now())
    assert TokenStore(engine, clock, oauth_settings(provider), cipher).login(box).fresh


def test_a_mailbox_not_connected_yet_says_how_to_connect(engine, cipher, clock, provider):
    box = oauth_mailbox(engine, cipher, provider, EMAIL, connected=False)
    with pytest.raises(TokenRefused, match=f"not connected yet: .*connect {EMAIL}"):
        TokenStore(engine, clock, oauth_settings(provider), cipher).login(box)


def test_a_providers_temporary_error_is_retried(engine, cipher, clock, provider):
    box = oauth_mailbox(engine, cipher, provider, EMAIL)
    provider.fail_next(2)
    login = TokenStore(engine, clock, oauth_settings(provider), cipher).login(box)
    assert login.fresh and provider.refreshes[EMAIL] == 1

    clock.advance(seconds=LIFETIME)
    provider.fail_next(3)  # as many as the attempts: the provider stays down
    with pytest.raises(TokenUnavailable, match="HTTP 503"):
        TokenStore(engine, clock, oauth_settings(provider), cipher).login(box)
    with Session(engine) as session:
        assert session.get(Mailbox, box).state is MailboxState.ACTIVE  # not paused
        assert session.get(MailboxOAuth, box).refused_reason is None


def test_renew_replaces_a_token_a_server_refused_once(engine, cipher, clock, provider):
    box = oauth_mailbox(engine, cipher, provider, EMAIL)
    settings = oauth_settings(provider)
    store = TokenStore(engine, clock, settings, cipher)
    old = store.login(box).token
    renewed = store.renew(box, old)
    assert renewed.fresh and renewed.token != old
    # A second run renewing the same refused token finds the new one instead of refreshing.
    assert TokenStore(engine, clock, settings, cipher).renew(box, old).token == renewed.token
    assert provider.refreshes[EMAIL] == 2
    with Session(engine) as session:
        stored = session.scalar(select(MailboxOAuth.access_token_enc))
        assert cipher.decrypt(stored) == renewed.token
