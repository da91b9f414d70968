"""What a sender run hands the SMTP transport and gets back, and the email built from it.

`Account` is one sending mailbox's connection settings, `Outgoing` one message to send and
`Delivery` what became of it; `build_message` turns an `Outgoing` into the email on the wire.
"""

from __future__ import annotations

import email.header
import email.message
import email.utils
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address

from warmup_dagster.core.delivery import Outcome
from warmup_dagster.db.models import Security


@dataclass(frozen=True)
class Account:
    """One mailbox's SMTP settings (or its IMAP settings, for the receiving side), with the
    password already decrypted.

    Attributes:
        mailbox_id: The mailbox's id.
        host: Server host name or address.
        port: Server port.
        security: How the connection is protected.
        username: Login name.
        password: Login password, or with `xoauth2` the OAuth2 access token; left out of
            `repr` and `str` (and scrubbed from every error text).
        xoauth2: Sign in with XOAUTH2 (the mailbox's OAuth2 access token), not a password.
    """

    mailbox_id: int
    host: str
    port: int
    security: Security
    username: str
    password: str = field(repr=False)
    xoauth2: bool = False


@dataclass(frozen=True)
class Outgoing:
    """One message to send.

    Attributes:
        job_id: The send job this message belongs to.
        sender: Envelope sender and the From header's address.
        recipient: Envelope recipient and To header.
        message_id: The Message-ID header, `<...@domain>`; derived from the job, so retries
            carry the same one.
        subject: The Subject header.
        body: The plain-text body.
        in_reply_to: The In-Reply-To header of a reply, if any.
        references: The References header of a reply, if any.
        sender_name: The display name in From (`Name <sender>`); None: the bare address.
    """

    job_id: int
    sender: str
    recipient: str
    message_id: str
    subject: str
    body: str
    in_reply_to: str | None = None
    references: str | None = None
    sender_name: str | None = None


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


def build_message(message: Outgoing, date: datetime) -> email.message.EmailMessage:
    """Build the email for one `Outgoing`: headers as planned, a UTF-8 plain-text body.

    From carries the display name as the email package writes it: quoted where it needs
    quotes, RFC 2047-encoded where it is not ASCII. The envelope sender stays the bare
    address (`sending.smtp` passes it explicitly).

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
    _set_from(built, message)
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


def _set_from(built: email.message.EmailMessage, message: Outgoing) -> None:
    """From: the bare address, or `Name <address>` through the email package.

    A name that is not ASCII is encoded by `email.header.Header`, whose encoded words split
    inside the name: the header registry's folding (Python 3.11) drops the space between two
    encoded words when it folds a long name at a space, which RFC 2047 readers then join
    ("Papadopoulos Karamanlis" arriving as one word).
    """
    if not message.sender_name:
        built["From"] = message.sender
        return
    local, _, domain = message.sender.rpartition("@")
    # Refuses CR or LF in any part.
    address = Address(display_name=message.sender_name, username=local, domain=domain)
    if message.sender_name.isascii():
        built["From"] = address
        return
    header = email.header.Header(message.sender_name, "utf-8", header_name="From")
    header.append(f"<{address.addr_spec}>", "us-ascii")
    built.set_raw("From", header.encode())
