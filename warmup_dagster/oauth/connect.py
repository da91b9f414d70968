"""`warmup mailboxes connect EMAIL --provider P`: get a mailbox's refresh token from its owner
through the provider's device-code flow, and store it.

The command shows the owner a URL and a code; the owner opens it anywhere (a phone will do),
signs in as the mailbox and consents; the command polls the provider meanwhile and stores the
refresh token it then gets, encrypted, with the first access token. A mailbox paused for an
OAuth2 reason (not connected yet, its token refused) is resumed: connecting is its fix.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine

from warmup_dagster.clock import Clock
from warmup_dagster.crypto import Cipher
from warmup_dagster.db.engine import writing
from warmup_dagster.db.models import Mailbox, MailboxState
from warmup_dagster.mailboxes.service import MailboxNotFound, set_state
from warmup_dagster.oauth import client
from warmup_dagster.oauth.providers import provider
from warmup_dagster.oauth.tokens import REASON_PREFIX, save_connection
from warmup_dagster.settings import Settings


class ConnectFailed(RuntimeError):
    """The flow ended without a refresh token; the message says why."""


@dataclass(frozen=True)
class Connected:
    email: str
    provider: str
    resumed: bool  # it had been paused for an OAuth2 reason and is active again


def connect(
    engine: Engine,
    clock: Clock,
    settings: Settings,
    cipher: Cipher,
    email: str,
    provider_name: str,
    show: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> Connected:
    """Run the device-code flow for one mailbox and store its refresh token.

    Raises:
        MailboxNotFound: no mailbox has that address.
        ProviderNotConfigured: the provider is unknown or its client is not configured.
        ConnectFailed: the provider refused (declined, code expired) or stayed unavailable.
    """
    email = email.strip().lower()
    with engine.connect() as conn:
        box = conn.execute(
            select(Mailbox.id, Mailbox.state, Mailbox.state_reason).where(Mailbox.email == email)
        ).one_or_none()
    if box is None:
        raise MailboxNotFound(email)
    where = provider(settings, provider_name)
    timeout = clock.real_seconds(settings.oauth_timeout_seconds)
    try:
        device = client.start_device(where, timeout)
        minutes = max(1, round(device.expires_in / 60))
        show(
            f"To connect {email}: open {device.verification_uri} and enter the code "
            f"{device.user_code}, signing in as {email} (the code is good for {minutes} min)."
        )
        if device.verification_uri_complete:
            show(f"Or open {device.verification_uri_complete}")
        token = client.poll_device(where, device, timeout, sleep)
    except (client.Refused, client.Unavailable) as exc:
        raise ConnectFailed(f"{provider_name} did not connect {email}: {exc}") from None
    if not token.refresh_token:
        raise ConnectFailed(
            f"{provider_name} gave no refresh token for {email}: the client's scopes must allow "
            "offline access (Microsoft: offline_access)"
        )
    with writing(engine) as conn:
        save_connection(
            conn, cipher, box.id, where.name, token.refresh_token, clock.now(), token, clock.speed
        )
    resumed = (
        box.state is MailboxState.PAUSED
        and box.state_reason is not None
        and REASON_PREFIX in box.state_reason
    )
    if resumed:
        set_state(engine, email, MailboxState.ACTIVE, None, clock)
    return Connected(email, where.name, resumed)
