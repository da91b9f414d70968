"""Logging in to a mailbox over IMAP and finding messages by Message-ID (imapclient,
synchronous): what the engagement passes (`engagement.imap`) and the sender's look for a
reclaimed job's message (`sending.reclaim`) share.

TLS is verified as the mailbox's `Security` says, plaintext only to loopback, STARTTLS never
downgraded; the login is the password or XOAUTH2 with an OAuth2 access token.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import imaplib
import ssl
from collections.abc import Collection, Iterator
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from warmup_dagster.crypto import Cipher
from warmup_dagster.db.models import Security
from warmup_dagster.oauth.tokens import Login
from warmup_dagster.sending.messages import Account
from warmup_dagster.sending.outcomes import is_loopback


def imap_account(box: Any, cipher: Cipher, login: Login | None) -> Account:
    """A mailbox row's IMAP side as an `Account`: its OAuth2 access token with `login`
    (`TokenStore.login`), else its decrypted password."""
    return Account(
        mailbox_id=box.id,
        host=box.imap_host,
        port=box.imap_port,
        security=box.imap_security,
        username=box.imap_username,
        password=cipher.decrypt(box.imap_password_enc) if login is None else login.token,
        xoauth2=login is not None,
    )


# Message-IDs per SEARCH (an OR of HEADER criteria): about 6 KB of command at most.
SEARCH_BATCH = 100


class Unusable(Exception):
    """The mailbox's IMAP settings must not be used (plaintext to a remote host, STARTTLS
    required and not offered); nothing was sent to the server."""


# What a session may fail with, besides a refused login: OSError covers refused connections,
# timeouts, resets and TLS failures (an untrusted certificate among them).
SESSION_ERRORS = (TimeoutError, OSError, imaplib.IMAP4.abort, IMAPClientError)


@contextlib.contextmanager
def connected(account: Account, tls: ssl.SSLContext, timeout: float) -> Iterator[IMAPClient]:
    """An IMAP client logged in as `account` (TLS as its `Security` says), logged out after.

    Shared by the engagement passes and the sender's look for a reclaimed job's message
    (`sending.reclaim`).

    Raises:
        Unusable: The settings must not be used; checked before connecting where possible.
        LoginError: The server refused the login.
        SESSION_ERRORS: Connecting or talking to the server failed.
    """
    where = f"{account.host}:{account.port}"
    if account.security is Security.NONE and not is_loopback(account.host):
        raise Unusable(f"imap_security none to {where}: plaintext IMAP is allowed to loopback only")
    client: IMAPClient | None = None
    try:
        client = IMAPClient(
            account.host,
            account.port,
            ssl=account.security is Security.SSL,
            ssl_context=tls,
            timeout=timeout,
        )
        if account.security is Security.STARTTLS:
            if not client.has_capability("STARTTLS"):
                raise Unusable(
                    f"{where} does not offer STARTTLS, which imap_security starttls requires; "
                    "not logging in in plaintext"
                )
            client.starttls(tls)
        if account.xoauth2:
            client.oauth2_login(account.username, account.password)
        else:
            client.login(account.username, account.password)
        yield client
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.logout()
            with contextlib.suppress(Exception):
                client.shutdown()


def session_failure(account: Account, exc: BaseException) -> str:
    """The sentence of a session that failed with one of `SESSION_ERRORS`."""
    where = f"{account.host}:{account.port}"
    return f"IMAP session with {where} failed: {type(exc).__name__}: {text_of(exc)}"


def folders(client: IMAPClient) -> list[tuple[tuple[bytes, ...], str]]:
    """The account's folders, as (flags, name), for `core.engagement.find_folder`."""
    return [(flags, name) for flags, _, name in client.list_folders()]


def find_ids(client: IMAPClient, ids: Collection[str]) -> dict[str, list[int]]:
    """Message-ID -> UIDs in the selected folder, the header compared exactly.

    One SEARCH per `SEARCH_BATCH` ids, their HEADER criteria joined by OR: the server reads
    the folder once per search, and a pass of ten messages costs one round trip per folder,
    not ten (`make bench-engage` measured the difference). SEARCH matches substrings, so the
    fetched header says which id each UID is.
    """
    wanted = set(ids)
    candidates: set[int] = set()
    ordered = sorted(wanted)
    for start in range(0, len(ordered), SEARCH_BATCH):
        part = ordered[start : start + SEARCH_BATCH]
        criteria = ["OR"] * (len(part) - 1)
        for message_id in part:
            criteria += ["HEADER", "Message-ID", message_id]
        candidates.update(client.search(criteria))
    if not candidates:
        return {}
    fetched = client.fetch(sorted(candidates), ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
    found: dict[str, list[int]] = {}
    for uid, data in fetched.items():
        raw = next((v for k, v in data.items() if k.startswith(b"BODY")), b"")
        header = email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"]
        if header is not None and str(header).strip() in wanted:
            found.setdefault(str(header).strip(), []).append(uid)
    return found


def text_of(exc: BaseException) -> str:
    """An exception as one line of words (imapclient quotes the server's bytes)."""
    text = str(exc)
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return " ".join(text.split()) or type(exc).__name__
