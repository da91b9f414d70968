"""The OAuth2 tests' provider: the local OAuth2 server on the tests' fixed clock, and
mailboxes that sign in through it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from warmup_dagster.clock import FixedClock
from warmup_dagster.db.engine import writing
from warmup_dagster.oauth.providers import GENERIC
from warmup_dagster.oauth.tokens import save_connection
from warmup_dagster.settings import Settings, load_settings
from warmup_dagster.testing.oauth_server import OAuthServer
from warmup_dagster_tests.conftest import MONDAY_5AM
from warmup_dagster_tests.engagement.conftest import cert
from warmup_dagster_tests.factories import add_mailbox, add_user

__all__ = ["cert", "oauth_mailbox", "oauth_settings", "provider"]

LIFETIME = 3600  # seconds an access token lives at the test provider


@pytest.fixture
def provider(clock: FixedClock) -> Iterator[OAuthServer]:
    """The provider, judging expiry by the tests' fixed clock (a run on a clock of its own
    then sees its tokens never expire)."""
    with OAuthServer(clock=clock, lifetime=LIFETIME) as server:
        yield server


def oauth_settings(server: OAuthServer, **env: str) -> Settings:
    values = {
        **server.settings(),
        "WARMUP_OAUTH_RETRY_BASE_SECONDS": "0.01",
        "WARMUP_OAUTH_TIMEOUT_SECONDS": "5",
    }
    values.update({f"WARMUP_{k.upper()}": v for k, v in env.items()})
    return load_settings(values)


def oauth_mailbox(engine, cipher, server: OAuthServer, email: str, *, connected=True) -> int:
    """A mailbox signing in with the generic provider (the local server), its refresh token
    granted there (or none: not connected yet)."""
    with Session(engine) as session, session.begin():
        user = add_user(session, f"owner-{email}", MONDAY_5AM)
        box_id = add_mailbox(session, user, email, MONDAY_5AM, cipher).id
    with writing(engine) as conn:
        token = server.grant(email) if connected else None
        save_connection(conn, cipher, box_id, GENERIC, token, MONDAY_5AM)
    return box_id
