"""What a sender run hands the SMTP transport and gets back, and the email built from it.

`Account` is one sending mailbox's connection settings, `Outgoing` one message to send and
`Delivery` what became of it; `build_message` turns an `Outgoing` into the email on the wire.
"""

from __future__ import annotations

import binascii
import contextlib
import email.errors
import email.header
import email.message
import email.quoprimime
import email.utils
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address

from warmup_dagster.core.delivery import Outcome
from warmup_dagster.db.models import Security


class UnsafeHeaderError(ValueError):
    """A header value that would inject into the mail or that a reader would decode into
    something unsafe; the message is refused, not repaired.

    Attributes:
        header: The header's name (`Subject`, `From`, ...).
    """

    def __init__(self, header: str, problem: str) -> None:
        super().__init__(f"{header} header refused: {problem}")
        self.header = header


# An RFC 2047 encoded word, matched as leniently as mail clients decode them: any charset
# (with an RFC 2231 `*language`), either encoding, spaces inside the text.
_ENCODED_WORD = re.compile(r"=\?([^?]*)\?([bBqQ])\?(.*?)\?=")


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
        UnsafeHeaderError: a header value is refused (`check_headers`).
        ValueError: `date` is naive, or a header value is otherwise unusable.
    """
    if date.tzinfo is None:
        raise ValueError(f"naive datetime {date!r}: the Date header needs a timezone")
    check_headers(message)
    built = email.message.EmailMessage()
    with _parsing("From"):
        _set_from(built, message)
    headers = {"To": message.recipient, "Subject": message.subject}
    headers |= {"Date": email.utils.format_datetime(date), "Message-ID": message.message_id}
    headers |= {"In-Reply-To": message.in_reply_to, "References": message.references}
    for name, value in headers.items():
        if name == "Subject" and not value.isascii():
            # The header registry's folding drops the space between two encoded words where
            # it folds a long subject (the fault `_set_from` works around): replies arrived as
            # "Re: Σημειώσειςτου τριμήνου".
            built.set_raw(name, email.header.Header(value, "utf-8", header_name=name).encode())
        elif value or name not in ("In-Reply-To", "References"):
            with _parsing(name):
                built[name] = value
    built.set_content(message.body, charset="utf-8")
    return built


@contextlib.contextmanager
def _parsing(header: str) -> Iterator[None]:
    """Turn the email package's failures on a malformed value into a refusal naming the
    header: it raises IndexError (`<` as a Message-ID or an address, `=??B??=`) and
    HeaderParseError as well as ValueError, and the sender fails the job on a ValueError only.
    """
    try:
        yield
    except (ValueError, IndexError, email.errors.HeaderParseError) as exc:
        raise UnsafeHeaderError(header, f"does not parse ({exc})") from exc


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


def check_headers(message: Outgoing) -> None:
    """Refuse a message whose header values could inject headers, as sent or once decoded.

    The values come from imported CSVs and received mail. The email package refuses a line
    break inside a value but not one at its end, nor NUL and other controls, nor an RFC 2047
    encoded word whose text is `\\r\\nBcc: ...`: a client decoding it shows (or a gateway
    re-emits) the injected header.

    Raises:
        UnsafeHeaderError: naming the first header refused and why.
    """
    values = {
        "From": message.sender,
        "From display name": message.sender_name,
        "To": message.recipient,
        "Subject": message.subject,
        "Message-ID": message.message_id,
        "In-Reply-To": message.in_reply_to,
        "References": message.references,
    }
    for header, value in values.items():
        if value is None:
            continue
        problem = _unsafe_characters(value)
        if problem is None and header in ("From", "To"):
            problem = _not_one_address(value)
        if problem is None:
            problem = next(filter(None, map(_encoded_problem, _ENCODED_WORD.finditer(value))), None)
        if problem is not None:
            raise UnsafeHeaderError(header, problem)


def _not_one_address(text: str) -> str | None:
    """Why `text` is not exactly one address, if it is not: `a@x.example, b@y.example` in To
    would add a recipient, and `x:y z:w` starts a group the parser reads past the header."""
    try:
        address = Address(addr_spec=text)
    # The email package raises header defects (ValueErrors), HeaderParseError on `:`, and
    # IndexError on ''.
    except (ValueError, IndexError, email.errors.HeaderParseError) as exc:
        return f"is not one address ({exc or 'empty'})"
    if not address.username or not address.domain:
        return "is not one address (it needs a local part and a domain)"
    return None


def _unsafe_characters(text: str) -> str | None:
    """What is wrong with `text` as header text: CR or LF, or another control character
    (a tab is folding whitespace), or a Unicode line or paragraph separator, which Python's
    `str.splitlines` (and so the email package's folding) treats as a line break."""
    if "\r" in text or "\n" in text:
        return "carries CR or LF"
    for char in text:
        if char != "\t" and (unicodedata.category(char) == "Cc" or char in "\u2028\u2029"):
            return f"carries the control character U+{ord(char):04X}"
    return None


def _encoded_problem(word: re.Match[str]) -> str | None:
    """What a reader would find unsafe in one encoded word once decoded, if anything.

    A word that does not decode (bad base64) is refused: readers differ in what they make of
    it. A word in a charset Python does not know is judged by its bytes: no C0 control or DEL
    byte, and its text read as UTF-8.
    """
    charset, encoding, text = word.group(1).split("*", 1)[0], word.group(2), word.group(3)
    try:
        if encoding in "bB":
            raw = binascii.a2b_base64(text + "=" * (-len(text) % 4))
        else:
            raw = email.quoprimime.header_decode(text).encode("latin-1")
    except ValueError:  # binascii.Error, non-ASCII base64, non-Latin-1 quoted-printable
        return f"the encoded word {word.group(0)[:40]!r} does not decode"
    try:
        decoded = raw.decode(charset, errors="replace")
    except LookupError:
        if any((byte < 0x20 and byte != 0x09) or byte == 0x7F for byte in raw):
            return f"the encoded word {word.group(0)[:40]!r} decodes to a control byte"
        decoded = raw.decode("utf-8", errors="replace")
    problem = _unsafe_characters(decoded)
    if problem is None:
        return None
    return f"the encoded word {word.group(0)[:40]!r} {problem.replace('carries', 'decodes to')}"
