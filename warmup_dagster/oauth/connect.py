"""`warmup mailboxes connect EMAIL --provider P`: get a mailbox's refresh token from its owner,
and store it.

The device-code flow (Microsoft, the generic provider): the command shows the owner a URL and
a code; the owner opens it anywhere (a phone will do), signs in as the mailbox and consents;
the command polls the provider meanwhile. The browser flow (Google, whose device-code flow
does not allow the mail scope): the command shows a URL to open in a browser on the same
machine, and the browser comes back to a loopback port with the code. Either way the refresh
token is stored encrypted, with the first access token. A mailbox paused for an
OAuth2 reason (not connected yet, its token refused) is resumed: connecting is its fix.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select
from sqlalchemy.engine import Engine

from warmup_dagster.clock import Clock
from warmup_dagster.crypto import Cipher
from warmup_dagster.db.engine import writing
from warmup_dagster.db.models import Mailbox, MailboxState
from warmup_dagster.mailboxes.service import MailboxNotFound, set_state
from warmup_dagster.oauth import client
from warmup_dagster.oauth.providers import BROWSER, Provider, provider
from warmup_dagster.oauth.tokens import REASON_PREFIX, save_connection
from warmup_dagster.settings import Settings

# How long the browser flow waits for the owner's browser to come back: real seconds, a
# person's time, whatever the clock's speed.
BROWSER_WAIT_S = 600


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
    flow: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    wait: float = BROWSER_WAIT_S,
) -> Connected:
    """Get a mailbox's refresh token through `flow` (None: the provider's own, see
    `providers.Provider.flow`) and store it.

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
        if (flow or where.flow) == BROWSER:
            token = _browser(where, email, timeout, show, wait)
        else:
            token = _device(where, email, timeout, show, sleep)
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


def _device(
    where: Provider,
    email: str,
    timeout: float,
    show: Callable[[str], None],
    sleep: Callable[[float], None],
) -> client.Token:
    device = client.start_device(where, timeout)
    minutes = max(1, round(device.expires_in / 60))
    show(
        f"To connect {email}: open {device.verification_uri} and enter the code "
        f"{device.user_code}, signing in as {email} (the code is good for {minutes} min)."
    )
    if device.verification_uri_complete:
        show(f"Or open {device.verification_uri_complete}")
    return client.poll_device(where, device, timeout, sleep)


def _browser(
    where: Provider, email: str, timeout: float, show: Callable[[str], None], wait: float
) -> client.Token:
    """The authorization-code flow: the owner's browser comes back to a port of this machine
    (loopback only, RFC 8252), where the code is picked up."""
    with _Redirect() as redirect:
        state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        url = client.authorization_url(where, redirect.uri, verifier, state)
        show(
            f"To connect {email}: open this URL in a browser on this machine and sign in as "
            f"{email} (waiting {round(wait / 60)} min):\n{url}"
        )
        answer = redirect.wait(wait)
    if answer is None:
        raise client.Refused("expired_token", "no browser came back in time")
    error = parse_qs(urlsplit(answer).query).get("error")
    if error:
        raise client.Refused(error[0], "the consent was not given")
    return client.exchange_code(where, redirect.uri, answer, verifier, state, timeout)


class _Redirect:
    """A one-shot HTTP listener on 127.0.0.1 that keeps the first request's URL."""

    def __init__(self) -> None:
        self._got = threading.Event()
        self._url: str | None = None
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if owner._url is None:
                    owner._url = f"{owner.uri}{self.path.removeprefix('/')}"
                    owner._got.set()
                body = b"warmup: you can close this window and return to the command.\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the URL carries the code."""

        self._http = HTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self._http.server_address[1]}/"

    def wait(self, seconds: float) -> str | None:
        self._got.wait(seconds)
        return self._url

    def __enter__(self) -> _Redirect:
        threading.Thread(
            target=self._http.serve_forever, name="oauth-redirect", daemon=True
        ).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._http.shutdown()
        self._http.server_close()
