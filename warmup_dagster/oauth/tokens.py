"""The access tokens of OAuth2 mailboxes, shared by every run on every machine.

`TokenStore.login` gives a run the mailbox's current access token, or None for a password
mailbox. The token lives in `mailbox_oauth` (encrypted, with its expiry), so every sender and
engagement run uses the same one; it is refreshed only when it is within
`WARMUP_OAUTH_REFRESH_MARGIN_SECONDS` of its expiry (or a server refused it), and one refresh
at a time per mailbox: the refresh happens under a lock named by the mailbox (a PostgreSQL
advisory lock; SQLite's write lock), and whoever gets the lock second finds the new token and
uses it. A run also keeps the tokens it got in memory until their margin, so a sender run
reads the table once per mailbox, not once per send. This module is the table's only writer:
the refreshes, and `save_connection` / `forget` for the import and `warmup mailboxes connect`.

A refresh the provider refuses (invalid_grant: revoked, expired consent) pauses the mailbox
with the reason, as a refused password does, and is remembered (`refused_reason`): no run
asks the provider again until a new refresh token is stored. A provider's temporary error
(5xx, 429, timeout) is retried `WARMUP_OAUTH_MAX_ATTEMPTS` times with a doubling delay, the
lock released in between (so SQLite's write lock is held for one request at most); if it
still fails, the send is retried later as any temporary failure is.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine, Row

from warmup_dagster.clock import Clock
from warmup_dagster.crypto import Cipher
from warmup_dagster.db.dialect import exclusive
from warmup_dagster.db.engine import chunks
from warmup_dagster.db.models import Mailbox, MailboxOAuth, MailboxState
from warmup_dagster.oauth import client
from warmup_dagster.oauth.providers import ProviderNotConfigured, provider
from warmup_dagster.settings import Settings

# What a mailbox paused for OAuth2 trouble has as its reason's start (`connect` resumes it).
REASON_PREFIX = "OAuth2"

_TABLE = MailboxOAuth.__table__


class TokenRefused(Exception):
    """The mailbox can't sign in until its owner connects it again; the message says why."""


class TokenUnavailable(Exception):
    """The provider could not refresh the token now; a later attempt may work."""


@dataclass(frozen=True)
class Login:
    """An access token to sign in with, and whether it was just refreshed (a server refusing
    a fresh token is not helped by refreshing again)."""

    token: str = field(repr=False)
    fresh: bool


def connect_hint(email: str, provider_name: str) -> str:
    return f"connect it again: warmup mailboxes connect {email} --provider {provider_name}"


@dataclass
class _Cached:
    token: str = field(repr=False)
    usable_until: datetime


class TokenStore:
    """Access tokens for one run (see the module docstring); safe to share between threads."""

    def __init__(self, engine: Engine, clock: Clock, settings: Settings, cipher: Cipher) -> None:
        self.engine, self.clock, self.settings, self.cipher = engine, clock, settings, cipher
        self.margin = timedelta(seconds=settings.oauth_refresh_margin_seconds)
        self._cache: dict[int, _Cached | None] = {}  # None: a password mailbox
        self._lock = threading.Lock()

    def prefetch(self, mailbox_ids: set[int]) -> None:
        """Learn which of `mailbox_ids` sign in with a password, in one query for those not
        known yet (a sender run's claim), so that `uses_password` can tell without a query."""
        with self._lock:
            unknown = sorted(i for i in mailbox_ids if i not in self._cache)
        if not unknown:
            return
        with self.engine.connect() as conn:
            oauth = {
                box_id
                for part in chunks(unknown)
                for box_id in conn.scalars(
                    select(_TABLE.c.mailbox_id).where(_TABLE.c.mailbox_id.in_(part))
                )
            }
        with self._lock:
            for box_id in set(unknown) - oauth:
                self._cache.setdefault(box_id, None)

    def uses_password(self, mailbox_id: int) -> bool:
        """Whether the mailbox is known (`prefetch`, `login`) to sign in with a password."""
        with self._lock:
            return mailbox_id in self._cache and self._cache[mailbox_id] is None

    def login(self, mailbox_id: int) -> Login | None:
        """The mailbox's access token, refreshed if it is about to expire; None when the
        mailbox signs in with a password.

        Raises:
            TokenRefused: not connected, refused by the provider, provider not configured:
                the mailbox can't sign in; its run pauses it (a provider's refusal is also
                recorded here and pauses it at once).
            TokenUnavailable: the provider stayed unavailable through every attempt.
        """
        now = self.clock.now()
        with self._lock:
            if mailbox_id in self._cache:
                cached = self._cache[mailbox_id]
                if cached is None:
                    return None
                if now < cached.usable_until:
                    return Login(cached.token, fresh=False)
        with self.engine.connect() as conn:
            row = _row(conn, mailbox_id)
        if row is None:
            with self._lock:
                self._cache[mailbox_id] = None
            return None
        if row.refused_reason is None and _usable(row, now + self.margin):
            return self._remember(mailbox_id, self.cipher.decrypt(row.access_token_enc), row)
        return self._refresh(mailbox_id, rejected=None)

    def renew(self, mailbox_id: int, rejected: str) -> Login:
        """A new access token for a mailbox whose server refused `rejected` (revoked early,
        or expired sooner than the provider said).

        Raises:
            TokenRefused, TokenUnavailable: as `login`.
        """
        with self._lock:
            self._cache.pop(mailbox_id, None)
        return self._refresh(mailbox_id, rejected=rejected)

    def _remember(self, mailbox_id: int, token: str, row: Row) -> Login:
        expires_at = row.access_expires_at
        with self._lock:
            self._cache[mailbox_id] = _Cached(token, expires_at - self.margin)
        return Login(token, fresh=False)

    def _refresh(self, mailbox_id: int, rejected: str | None) -> Login:
        s = self.settings
        delay = s.oauth_retry_base_seconds
        for attempt in range(1, s.oauth_max_attempts + 1):
            try:
                return self._refresh_once(mailbox_id, rejected)
            except TokenUnavailable:
                if attempt == s.oauth_max_attempts:
                    raise
            time.sleep(self.clock.real_seconds(delay))
            delay *= 2
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _refresh_once(self, mailbox_id: int, rejected: str | None) -> Login:
        """One refresh under the mailbox's lock, unless another run refreshed meanwhile.

        A refusal is written (and the lock's transaction committed) before it is raised.
        """
        timeout = self.clock.real_seconds(self.settings.oauth_timeout_seconds)
        failure: Exception | None = None
        with exclusive(self.engine, f"warmup-oauth-{mailbox_id}") as conn:
            now = self.clock.now()
            row = _row(conn, mailbox_id)
            if row is None:
                raise TokenRefused(f"{REASON_PREFIX}: the mailbox no longer signs in with OAuth2")
            if row.refused_reason is not None:
                raise TokenRefused(row.refused_reason)
            if _usable(row, now + self.margin):
                token = self.cipher.decrypt(row.access_token_enc)
                if token != rejected:  # another run refreshed while this one waited
                    return self._remember(mailbox_id, token, row)
            email = conn.scalar(select(Mailbox.email).where(Mailbox.id == mailbox_id))
            hint = connect_hint(email, row.provider)
            if row.refresh_token_enc is None:
                raise TokenRefused(f"{REASON_PREFIX} not connected yet: {hint}")
            try:
                where = provider(self.settings, row.provider)
                answer = client.refresh(where, self.cipher.decrypt(row.refresh_token_enc), timeout)
            except ProviderNotConfigured as exc:
                raise TokenRefused(f"{REASON_PREFIX}: {exc}") from None
            except client.Refused as exc:
                failure = TokenRefused(
                    f"{REASON_PREFIX} refresh refused by {row.provider}: {exc}; {hint}"
                )
                _refused(conn, mailbox_id, str(failure), now)
            except client.Unavailable as exc:
                raise TokenUnavailable(
                    f"{REASON_PREFIX} token refresh at {row.provider} failed for now: {exc}"
                ) from None
            else:
                expires_at = now + timedelta(seconds=answer.expires_in * self.clock.speed)
                _store(conn, self.cipher, mailbox_id, answer, expires_at, now)
        if failure is not None:
            raise failure
        with self._lock:
            self._cache[mailbox_id] = _Cached(answer.access_token, expires_at - self.margin)
        return Login(answer.access_token, fresh=True)


def _row(conn: Connection, mailbox_id: int) -> Row | None:
    return conn.execute(select(_TABLE).where(_TABLE.c.mailbox_id == mailbox_id)).one_or_none()


def _usable(row: Row, at: datetime) -> bool:
    """Whether the row's access token is still good at `at`."""
    expires_at = row.access_expires_at
    return row.access_token_enc is not None and expires_at is not None and at < expires_at


def _store(
    conn: Connection,
    cipher: Cipher,
    mailbox_id: int,
    answer: client.Token,
    expires_at: datetime,
    now: datetime,
) -> None:
    """Write a token endpoint's answer: the shared access token, a rotated refresh token."""
    values = {
        "access_token_enc": cipher.encrypt(answer.access_token),
        "access_expires_at": expires_at,
        "refreshed_at": now,
        "refused_reason": None,
        "updated_at": now,
    }
    if answer.refresh_token:  # a provider that rotates its refresh tokens
        values["refresh_token_enc"] = cipher.encrypt(answer.refresh_token)
    conn.execute(update(_TABLE).where(_TABLE.c.mailbox_id == mailbox_id).values(values))


def _refused(conn: Connection, mailbox_id: int, reason: str, now: datetime) -> None:
    """Remember the refusal and pause the mailbox with it, as a refused password does."""
    conn.execute(
        update(_TABLE)
        .where(_TABLE.c.mailbox_id == mailbox_id)
        .values(
            refused_reason=reason, access_token_enc=None, access_expires_at=None, updated_at=now
        )
    )
    conn.execute(
        update(Mailbox)
        .where(Mailbox.id == mailbox_id, Mailbox.state == MailboxState.ACTIVE)
        .values(
            state=MailboxState.PAUSED,
            state_reason=f"paused: {reason}",
            state_changed_at=now,
            updated_at=now,
        )
    )


def save_connection(
    conn: Connection,
    cipher: Cipher,
    mailbox_id: int,
    provider_name: str,
    refresh_token: str | None,
    now: datetime,
    token: client.Token | None = None,
    clock_speed: float = 1.0,
) -> None:
    """Make a mailbox sign in with `provider_name` (an import's row, `connect`).

    With a refresh token, it replaces the stored one, any refusal is forgotten and the cached
    access token with it (`token`, when the flow that got the refresh token gave one too).
    Without one (an import that names only the provider), the stored token is kept if it is
    the same provider's; a changed provider's old token is dropped (not connected yet).
    """
    existing = _row(conn, mailbox_id)
    values: dict[str, object] = {"provider": provider_name, "updated_at": now}
    if refresh_token is not None:
        values |= {
            "refresh_token_enc": cipher.encrypt(refresh_token),
            "refused_reason": None,
            "access_token_enc": None if token is None else cipher.encrypt(token.access_token),
            "access_expires_at": None
            if token is None
            else now + timedelta(seconds=token.expires_in * clock_speed),
            "refreshed_at": None if token is None else now,
        }
    elif existing is not None and existing.provider != provider_name:
        values |= {
            "refresh_token_enc": None,
            "refused_reason": None,
            "access_token_enc": None,
            "access_expires_at": None,
        }
    if existing is None:
        conn.execute(_TABLE.insert().values(mailbox_id=mailbox_id, **values))
    else:
        conn.execute(update(_TABLE).where(_TABLE.c.mailbox_id == mailbox_id).values(values))


def forget(conn: Connection, mailbox_ids: list[int]) -> None:
    """Make mailboxes sign in with their passwords again (an import's `auth` password)."""
    for part in chunks(mailbox_ids):
        conn.execute(_TABLE.delete().where(_TABLE.c.mailbox_id.in_(part)))
