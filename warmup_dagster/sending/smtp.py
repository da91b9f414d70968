"""The SMTP transport of sender runs: one connection per mailbox, one `Delivery` per message.

`send_group` opens one connection for all of a mailbox's due messages (TLS as the mailbox's
`Security` says, verified against the given context), logs in, sends them in order and reports
what happened to each. It never raises for SMTP or network trouble: what each reply or error
means is decided in `warmup_dagster.sending.outcomes`, and a missing STARTTLS or AUTH mechanism
pauses the mailbox instead of falling back to something weaker.

The types it takes and returns (`Account`, `Outgoing`, `Delivery`) live in
`warmup_dagster.sending.messages`; they are named here too, as the sender loop imports the
transport's whole interface from this module.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable, Sequence
from datetime import datetime

import aiosmtplib

from warmup_dagster.core.delivery import Outcome
from warmup_dagster.db.models import Security
from warmup_dagster.sending.messages import Account, Delivery, Outgoing, build_message
from warmup_dagster.sending.outcomes import (
    Failure,
    deliveries_for,
    delivery_for,
    failure_from,
    login_refused,
    scrubbed,
    security_refusal,
)

__all__ = ["CONNECTION_LOST", "Account", "Delivery", "Outgoing", "send_group", "tls_context"]

CONNECTION_LOST = "connection lost before this message was sent"

# PLAIN first: universally implemented where advertised, and TLS already hides the password.
# CRAM-MD5 last: servers storing hashed passwords advertise it but often can't check it.
_AUTH_PREFERENCE = {"plain": "auth_plain", "login": "auth_login", "cram-md5": "auth_crammd5"}
_CREDENTIALS_INVALID = 535


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A client TLS context that verifies the server's certificate and host name.

    Args:
        ca_file: A PEM file of extra certificates to trust besides the system's (a private
            CA, or a test server's self-signed certificate).

    Returns:
        The context; share one across connections.
    """
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    return context


async def send_group(
    account: Account,
    messages: Sequence[Outgoing],
    *,
    date: datetime,
    timeout: float,
    tls: ssl.SSLContext,
    local_hostname: str | None = None,
    delivered: Callable[[Delivery], None] | None = None,
) -> list[Delivery]:
    """Send one mailbox's messages over one SMTP connection.

    Args:
        account: The sending mailbox's settings.
        messages: The messages, all from this mailbox; sent in this order.
        date: The Date header of every message; must carry a timezone.
        timeout: Seconds allowed for connecting and for each command's reply.
        tls: Client TLS context for SSL and STARTTLS (see `tls_context`).
        local_hostname: Name to give in EHLO; None looks up this machine's FQDN.
        delivered: Called with each message's `Delivery` the moment the server accepts it
            (250 to DATA), before the next message goes: the caller can write it at once
            instead of at the session's end, so a run killed mid-session keeps it.

    Returns:
        One `Delivery` per message, in the same order.

    Raises:
        ValueError: `date` is naive.
    """
    if date.tzinfo is None:
        raise ValueError(f"naive datetime {date!r}: the Date header needs a timezone")
    if not messages:
        return []
    reason = security_refusal(account)
    if reason is not None:
        return deliveries_for(messages, Failure(Outcome.PAUSE, None, "", reason), account)

    try:
        client = aiosmtplib.SMTP(
            hostname=account.host,
            port=account.port,
            local_hostname=local_hostname,
            timeout=timeout,
            use_tls=account.security is Security.SSL,
            # STARTTLS is done by hand in _open so a server that doesn't offer it is an
            # error, never a silent fall back to plaintext.
            start_tls=False,
            tls_context=tls,
        )
    except ValueError as exc:
        # aiosmtplib refuses a host or EHLO name with line breaks or spaces this way.
        unusable = Failure(Outcome.PAUSE, None, "", f"unusable connection settings: {exc}")
        return deliveries_for(messages, unusable, account)
    try:
        failure = await _open(client, account, timeout)
        if failure is not None:
            return deliveries_for(messages, failure, account)
        deliveries: list[Delivery] = []
        for index, message in enumerate(messages):
            # A 421 reply, a timeout or a drop closes the connection; what is left was
            # never handed over, so it is retried rather than guessed at.
            if not client.is_connected:
                lost = Failure(Outcome.RETRY, None, "", CONNECTION_LOST)
                deliveries.extend(deliveries_for(messages[index:], lost, account))
                break
            delivery = await _send_one(client, account, message, date, timeout)
            deliveries.append(delivery)
            if delivered is not None and delivery.outcome is Outcome.SENT:
                delivered(delivery)
        await _quit(client)
        return deliveries
    finally:
        client.close()


async def _open(client: aiosmtplib.SMTP, account: Account, timeout: float) -> Failure | None:
    """Connect, greet, secure and log in; return the failure that ends the group, if any."""
    try:
        await client.connect()
        await _greet(client)
        if account.security is Security.STARTTLS:
            if not client.supports_extension("starttls"):
                return Failure(
                    Outcome.PAUSE,
                    None,
                    "",
                    f"{account.host}:{account.port} does not offer STARTTLS, which "
                    "smtp_security starttls requires; not sending in plaintext",
                )
            await client.starttls()
            await _greet(client)
        if client.supports_extension("auth"):
            return await _login(client, account)
    except aiosmtplib.SMTPAuthenticationError as exc:
        return login_refused(exc, account)
    except (aiosmtplib.SMTPException, OSError) as exc:
        # Before ValueError: ssl.SSLCertVerificationError is both.
        return failure_from(exc, account, timeout)
    except ValueError as exc:
        return Failure(Outcome.PAUSE, None, "", f"unusable connection settings: {exc}")
    return None


async def _login(client: aiosmtplib.SMTP, account: Account) -> Failure | None:
    """Log in with the first mechanism the server accepts; stop at wrong credentials.

    Unlike `aiosmtplib.SMTP.login`, a 535 ends the attempt: trying the same wrong password
    with every other mechanism only adds failed logins, which providers count toward
    locking the account. Other refusals (a mechanism advertised but not really supported)
    move on to the next mechanism.

    Raises:
        aiosmtplib.SMTPAuthenticationError: Every mechanism tried was refused.
    """
    if account.xoauth2:
        return await _xoauth2(client, account)
    mechanisms = [name for name in _AUTH_PREFERENCE if name in client.server_auth_methods]
    if not mechanisms:
        return _unsupported(client, account, "offers no AUTH mechanism we support")
    refusal: aiosmtplib.SMTPAuthenticationError | None = None
    for name in mechanisms:
        authenticate = getattr(client, _AUTH_PREFERENCE[name])
        try:
            await authenticate(account.username, account.password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            refusal = exc
            if exc.code == _CREDENTIALS_INVALID or not client.is_connected:
                break
        else:
            return None
    assert refusal is not None
    raise refusal


async def _xoauth2(client: aiosmtplib.SMTP, account: Account) -> Failure | None:
    """Log in with AUTH XOAUTH2, the account's password being its OAuth2 access token.

    A refused token gets a 334 challenge carrying the provider's error, which aiosmtplib
    answers with an empty line; the server's final refusal (535 at Google and Microsoft)
    pauses the mailbox like a wrong password.

    Raises:
        aiosmtplib.SMTPAuthenticationError: the server refused the token.
    """
    if "xoauth2" not in client.server_auth_methods:
        return _unsupported(
            client, account, "does not offer AUTH XOAUTH2, which an OAuth2 mailbox signs in with"
        )
    await client.auth_xoauth2(account.username, account.password)
    return None


def _unsupported(client: aiosmtplib.SMTP, account: Account, what: str) -> Failure:
    """The pause of a server that offers no way in this mailbox can use."""
    offered = " ".join(client.server_auth_methods) or "none"
    return Failure(
        Outcome.PAUSE, None, "", f"{account.host}:{account.port} {what} (offered: {offered})"
    )


async def _greet(client: aiosmtplib.SMTP) -> None:
    """EHLO, falling back to HELO for a server that doesn't speak ESMTP."""
    try:
        await client.ehlo()
    except aiosmtplib.SMTPHeloError:
        if not client.is_connected:
            raise
        await client.helo()


async def _send_one(
    client: aiosmtplib.SMTP, account: Account, message: Outgoing, date: datetime, timeout: float
) -> Delivery:
    """Send one message on an open connection; never raises for SMTP or network trouble."""
    try:
        built = build_message(message, date)
        # Explicit envelope: no header parsing, and exactly one recipient per transaction.
        _, reply = await client.send_message(
            built, sender=message.sender, recipients=[message.recipient]
        )
    except aiosmtplib.SMTPNotSupported as exc:
        # The message needs SMTPUTF8 and the server lacks it: no retry will change that.
        failure = Failure(Outcome.FAILED, None, "", f"message not sendable: {exc.message}")
    except (aiosmtplib.SMTPException, OSError) as exc:
        failure = failure_from(exc, account, timeout)
    except ValueError as exc:
        # A bad address or header: the same message would fail the same way again.
        failure = Failure(Outcome.FAILED, None, "", f"message not sendable: {exc}")
    else:
        # send_message only returns when DATA got 250 (anything else raises). The reply is
        # stored in the send log: a server echoing the login in it must not put it there.
        return Delivery(message.job_id, Outcome.SENT, 250, scrubbed(reply, account), None)
    return delivery_for(message, failure, account)


async def _quit(client: aiosmtplib.SMTP) -> None:
    """Say QUIT if the connection is still up; the messages' fates are already known."""
    if not client.is_connected:
        return
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await client.quit()
