"""The SMTP transport of sender runs: one connection per mailbox, one `Delivery` per message.

`send_group` opens one connection for all of a mailbox's due messages (TLS as the mailbox's
`Security` says, verified against the given context), logs in, sends them in order and reports
what happened to each. It never raises for SMTP or network trouble: every reply code goes
through `warmup_dagster.core.delivery.classify`, and the failures without a reply (refused
connection, dropped connection, timeout) are temporary. Settings that can't work (plaintext to
a remote host, STARTTLS missing, a certificate that fails verification, a rejected login) pause
the mailbox instead of retrying it forever.

Error texts are short sentences for the send log and never contain the password.
"""

from __future__ import annotations

import contextlib
import email.message
import email.utils
import errno
import ipaddress
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import aiosmtplib

from warmup_dagster.core.delivery import Outcome, classify
from warmup_dagster.db.models import Security

CONNECTION_LOST = "connection lost before this message was sent"

# PLAIN first: universally implemented where advertised, and TLS already hides the password.
# CRAM-MD5 last: servers storing hashed passwords advertise it but often can't check it.
_AUTH_PREFERENCE = {"plain": "auth_plain", "login": "auth_login", "cram-md5": "auth_crammd5"}
_CREDENTIALS_INVALID = 535


@dataclass(frozen=True)
class Account:
    """One sending mailbox's SMTP settings, with the password already decrypted.

    Attributes:
        mailbox_id: The mailbox's id.
        host: SMTP server host name or address.
        port: SMTP server port.
        security: How the connection is protected.
        username: Login name.
        password: Login password; left out of `repr` and `str`.
    """

    mailbox_id: int
    host: str
    port: int
    security: Security
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Outgoing:
    """One message to send.

    Attributes:
        job_id: The send job this message belongs to.
        sender: Envelope sender and From header.
        recipient: Envelope recipient and To header.
        message_id: The Message-ID header, `<...@domain>`; derived from the job, so retries
            carry the same one.
        subject: The Subject header.
        body: The plain-text body.
        in_reply_to: The In-Reply-To header of a reply, if any.
        references: The References header of a reply, if any.
    """

    job_id: int
    sender: str
    recipient: str
    message_id: str
    subject: str
    body: str
    in_reply_to: str | None = None
    references: str | None = None


@dataclass(frozen=True)
class Delivery:
    """What happened to one `Outgoing`.

    Attributes:
        job_id: The message's send job.
        outcome: What the job should do next.
        code: The SMTP reply code; None when there was no reply (connection refused or
            dropped, timeout) or the message was never handed to the server.
        reply: The server's reply text; empty when there was none.
        error: None when sent; otherwise a short sentence saying what went wrong.
    """

    job_id: int
    outcome: Outcome
    code: int | None
    reply: str
    error: str | None


@dataclass(frozen=True)
class _Failure:
    """One failure, before it is stamped onto the messages it affects."""

    outcome: Outcome
    code: int | None
    reply: str
    error: str


def is_loopback(host: str) -> bool:
    """Tell whether a host name or address is the local machine's loopback.

    Args:
        host: "localhost", an IPv4 or IPv6 address (brackets allowed), or any other name.

    Returns:
        True for "localhost", 127.0.0.0/8, ::1 and IPv4-mapped loopback addresses.
    """
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def security_refusal(account: Account) -> str | None:
    """Say why an account's connection settings must not be used, if they must not.

    Plaintext SMTP would send the password and the mail unencrypted, which is only
    acceptable when it never leaves the machine.

    Args:
        account: The mailbox's SMTP settings.

    Returns:
        The reason, or None when the settings may be used.
    """
    if account.security is Security.NONE and not is_loopback(account.host):
        return f"smtp_security none is only allowed for loopback hosts, not {account.host}"
    return None


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


def build_message(message: Outgoing, date: datetime) -> email.message.EmailMessage:
    """Build the email for one `Outgoing`: headers as planned, a UTF-8 plain-text body.

    Args:
        message: The message to build.
        date: The Date header; must carry a timezone.

    Returns:
        The message, ready for `aiosmtplib.SMTP.send_message`.

    Raises:
        ValueError: `date` is naive, or a header value is unusable (e.g. contains a line
            break).
    """
    if date.tzinfo is None:
        raise ValueError(f"naive datetime {date!r}: the Date header needs a timezone")
    built = email.message.EmailMessage()
    built["From"] = message.sender
    built["To"] = message.recipient
    built["Subject"] = message.subject
    built["Date"] = email.utils.format_datetime(date)
    built["Message-ID"] = message.message_id
    if message.in_reply_to:
        built["In-Reply-To"] = message.in_reply_to
    if message.references:
        built["References"] = message.references
    built.set_content(message.body, charset="utf-8")
    return built


async def send_group(
    account: Account,
    messages: Sequence[Outgoing],
    *,
    date: datetime,
    timeout: float,
    tls: ssl.SSLContext,
    local_hostname: str | None = None,
) -> list[Delivery]:
    """Send one mailbox's messages over one SMTP connection.

    Args:
        account: The sending mailbox's settings.
        messages: The messages, all from this mailbox; sent in this order.
        date: The Date header of every message; must carry a timezone.
        timeout: Seconds allowed for connecting and for each command's reply.
        tls: Client TLS context for SSL and STARTTLS (see `tls_context`).
        local_hostname: Name to give in EHLO; None looks up this machine's FQDN.

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
        return _all(messages, _Failure(Outcome.PAUSE, None, "", reason), account)

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
        unusable = _Failure(Outcome.PAUSE, None, "", f"unusable connection settings: {exc}")
        return _all(messages, unusable, account)
    try:
        failure = await _open(client, account, timeout)
        if failure is not None:
            return _all(messages, failure, account)
        deliveries: list[Delivery] = []
        for index, message in enumerate(messages):
            # A 421 reply, a timeout or a drop closes the connection; what is left was
            # never handed over, so it is retried rather than guessed at.
            if not client.is_connected:
                lost = _Failure(Outcome.RETRY, None, "", CONNECTION_LOST)
                deliveries.extend(_all(messages[index:], lost, account))
                break
            deliveries.append(await _send_one(client, account, message, date, timeout))
        await _quit(client)
        return deliveries
    finally:
        client.close()


async def _open(client: aiosmtplib.SMTP, account: Account, timeout: float) -> _Failure | None:
    """Connect, greet, secure and log in; return the failure that ends the group, if any."""
    try:
        await client.connect()
        await _greet(client)
        if account.security is Security.STARTTLS:
            if not client.supports_extension("starttls"):
                return _Failure(
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
        code = _code(exc.code)
        return _Failure(
            Outcome.RETRY if code is None else classify(code),
            code,
            exc.message,
            f"login as {account.username} rejected: {exc.code} {exc.message}",
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        # Before ValueError: ssl.SSLCertVerificationError is both.
        return _failure(exc, account, timeout)
    except ValueError as exc:
        return _Failure(Outcome.PAUSE, None, "", f"unusable connection settings: {exc}")
    return None


async def _login(client: aiosmtplib.SMTP, account: Account) -> _Failure | None:
    """Log in with the first mechanism the server accepts; stop at wrong credentials.

    Unlike `aiosmtplib.SMTP.login`, a 535 ends the attempt: trying the same wrong password
    with every other mechanism only adds failed logins, which providers count toward
    locking the account. Other refusals (a mechanism advertised but not really supported)
    move on to the next mechanism.

    Raises:
        aiosmtplib.SMTPAuthenticationError: Every mechanism tried was refused.
    """
    mechanisms = [name for name in _AUTH_PREFERENCE if name in client.server_auth_methods]
    if not mechanisms:
        offered = " ".join(client.server_auth_methods) or "none"
        return _Failure(
            Outcome.PAUSE,
            None,
            "",
            f"{account.host}:{account.port} offers no AUTH mechanism we support "
            f"(offered: {offered})",
        )
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
        failure = _Failure(Outcome.FAILED, None, "", f"message not sendable: {exc.message}")
    except (aiosmtplib.SMTPException, OSError) as exc:
        failure = _failure(exc, account, timeout)
    except ValueError as exc:
        # A bad address or header: the same message would fail the same way again.
        failure = _Failure(Outcome.FAILED, None, "", f"message not sendable: {exc}")
    else:
        # send_message only returns when DATA got 250 (anything else raises).
        return Delivery(message.job_id, Outcome.SENT, 250, reply, None)
    return _delivery(message, failure, account)


async def _quit(client: aiosmtplib.SMTP) -> None:
    """Say QUIT if the connection is still up; the messages' fates are already known."""
    if not client.is_connected:
        return
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await client.quit()


def _failure(exc: BaseException, account: Account, timeout: float) -> _Failure:
    """Translate an aiosmtplib or socket exception into an outcome and a sentence."""
    where = f"{account.host}:{account.port}"
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        # One recipient per transaction, so "all refused" is that recipient's reply.
        if exc.recipients:
            exc = exc.recipients[0]
        else:
            return _Failure(Outcome.RETRY, None, "", "recipient refused without a reply")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        code = _code(exc.code)
        if code is None:
            # aiosmtplib's pseudo-code -1: the reply could not be parsed, so no real code.
            return _Failure(Outcome.RETRY, None, "", f"unreadable reply from {where}: {exc}")
        return _Failure(classify(code), code, exc.message, f"{_refused(exc)}: {code} {exc.message}")
    verification = _verification_error(exc)
    if verification is not None:
        detail = verification.verify_message or verification.reason or str(verification)
        return _Failure(
            Outcome.PAUSE,
            None,
            "",
            f"the TLS certificate of {account.host} failed verification: {detail}",
        )
    if isinstance(exc, TimeoutError):
        return _Failure(Outcome.RETRY, None, "", f"timed out after {timeout} s talking to {where}")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return _Failure(Outcome.RETRY, None, "", f"connection dropped: {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        cause = exc.__cause__
        detail = _os_error_text(cause) if isinstance(cause, OSError) else exc.message
        return _Failure(Outcome.RETRY, None, "", f"could not connect to {where}: {detail}")
    if isinstance(exc, ssl.SSLError):
        return _Failure(Outcome.RETRY, None, "", f"{_os_error_text(exc)} with {where}")
    if isinstance(exc, OSError):
        return _Failure(Outcome.RETRY, None, "", f"connection dropped: {_os_error_text(exc)}")
    message = exc.message if isinstance(exc, aiosmtplib.SMTPException) else str(exc)
    return _Failure(Outcome.RETRY, None, "", f"SMTP error with {where}: {message}")


def _refused(exc: aiosmtplib.SMTPResponseException) -> str:
    """What the server refused, for the start of an error sentence."""
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        return f"recipient {exc.recipient} refused"
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return f"sender {exc.sender} refused"
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return "message refused"
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return "connection refused by the server's greeting"
    if isinstance(exc, aiosmtplib.SMTPHeloError):
        return "EHLO/HELO refused"
    return "command refused"


def _code(code: int) -> int | None:
    """A real SMTP reply code, or None for aiosmtplib's "no parseable reply" (-1)."""
    return code if 100 <= code <= 599 else None


def _verification_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind an exception, if that is what it was.

    aiosmtplib wraps it in SMTPConnectError for implicit TLS but lets it through as is
    from STARTTLS, so the whole cause chain is searched.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _os_error_text(exc: OSError) -> str:
    """A socket error as words ("Connection refused"), not asyncio's address dump."""
    if isinstance(exc, ssl.SSLError):
        # Its errno is an OpenSSL error class, not an errno: strerror would mislead.
        return f"TLS handshake failed ({exc.reason or exc})"
    if exc.errno is not None and exc.errno in errno.errorcode:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


def _delivery(message: Outgoing, failure: _Failure, account: Account) -> Delivery:
    """Stamp a failure onto one message, with the password scrubbed from the texts."""
    return Delivery(
        message.job_id,
        failure.outcome,
        failure.code,
        _scrub(failure.reply, account.password),
        _scrub(failure.error, account.password),
    )


def _all(messages: Sequence[Outgoing], failure: _Failure, account: Account) -> list[Delivery]:
    """The same failure for every message (the connection never got as far as sending)."""
    return [_delivery(message, failure, account) for message in messages]


def _scrub(text: str, password: str) -> str:
    """Remove the password from a text a server (or library) might have echoed it in."""
    if password and password in text:
        return text.replace(password, "********")
    return text
