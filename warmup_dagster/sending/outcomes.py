"""What a send attempt's trouble means: SMTP replies and errors classified into outcomes.

Every reply code goes through `warmup_dagster.core.delivery.classify`; the failures without a
reply (refused connection, dropped connection, timeout) are temporary. Settings that can't work
(plaintext to a remote host, a certificate that fails verification) pause the mailbox instead
of retrying it forever. Error texts are short sentences for the send log, and the credentials
are scrubbed from every text before it leaves this module (`secrets.redact`).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import aiosmtplib

from warmup_dagster.core.delivery import Outcome, classify
from warmup_dagster.db.models import Security
from warmup_dagster.secrets.redact import scrub, secret_forms
from warmup_dagster.sending.messages import Account, Delivery, Outgoing


@dataclass(frozen=True)
class Failure:
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


def failure_from(exc: BaseException, account: Account, timeout: float) -> Failure:
    """Translate an aiosmtplib or socket exception into an outcome and a sentence."""
    where = f"{account.host}:{account.port}"
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        # One recipient per transaction, so "all refused" is that recipient's reply.
        if exc.recipients:
            exc = exc.recipients[0]
        else:
            return Failure(Outcome.RETRY, None, "", "recipient refused without a reply")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        code = reply_code(exc.code)
        if code is None:
            # aiosmtplib's pseudo-code -1: the reply could not be parsed, so no real code.
            return Failure(Outcome.RETRY, None, "", f"unreadable reply from {where}: {exc}")
        return Failure(classify(code), code, exc.message, f"{_refused(exc)}: {code} {exc.message}")
    verification = _verification_error(exc)
    if verification is not None:
        detail = verification.verify_message or verification.reason or str(verification)
        return Failure(
            Outcome.PAUSE,
            None,
            "",
            f"the TLS certificate of {account.host} failed verification: {detail}",
        )
    if isinstance(exc, TimeoutError):
        return Failure(Outcome.RETRY, None, "", f"timed out after {timeout} s talking to {where}")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return Failure(Outcome.RETRY, None, "", f"connection dropped: {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        cause = exc.__cause__
        detail = _os_error_text(cause) if isinstance(cause, OSError) else exc.message
        return Failure(Outcome.RETRY, None, "", f"could not connect to {where}: {detail}")
    if isinstance(exc, ssl.SSLError):
        return Failure(Outcome.RETRY, None, "", f"{_os_error_text(exc)} with {where}")
    if isinstance(exc, OSError):
        return Failure(Outcome.RETRY, None, "", f"connection dropped: {_os_error_text(exc)}")
    message = exc.message if isinstance(exc, aiosmtplib.SMTPException) else str(exc)
    return Failure(Outcome.RETRY, None, "", f"SMTP error with {where}: {message}")


def login_refused(exc: aiosmtplib.SMTPAuthenticationError, account: Account) -> Failure:
    """The failure of a refused login: its reply code decides (a 535 pauses the mailbox)."""
    code = reply_code(exc.code)
    return Failure(
        classify(code),
        code,
        exc.message,
        f"login as {account.username} rejected: {exc.code} {exc.message}",
    )


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


def reply_code(code: int) -> int | None:
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


def delivery_for(message: Outgoing, failure: Failure, account: Account) -> Delivery:
    """Stamp a failure onto one message, with the credentials scrubbed from the texts."""
    return Delivery(
        message.job_id,
        failure.outcome,
        failure.code,
        scrubbed(failure.reply, account),
        scrubbed(failure.error, account),
    )


def deliveries_for(
    messages: Sequence[Outgoing], failure: Failure, account: Account
) -> list[Delivery]:
    """The same failure for every message (the connection never got as far as sending)."""
    return [delivery_for(message, failure, account) for message in messages]


def scrubbed(text: str, account: Account) -> str:
    """`text` without the account's password in any form a server might echo it in
    (`secrets.redact`)."""
    return scrub(text, secret_forms(account.password, account.username))
