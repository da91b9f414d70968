"""The local sandbox mail server: real SMTP on loopback, delivered into Maildir folders.

The embedded default sends its warmup mail through this server so the demo exercises a real
SMTP conversation (EHLO, AUTH, optional STARTTLS, MAIL, RCPT, DATA) without touching the
internet. Every accepted message is stored once per RCPT TO under
`<root>/<recipient address lowercased>/` as a `mailbox.Maildir`, so the files land in `new/`
atomically and any Maildir reader (Python's `mailbox`, Dovecot) can open them.

AUTH PLAIN and LOGIN are accepted over plaintext on purpose: the server is meant to listen on
loopback only, where TLS protects nothing.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import email.utils
import logging
import mailbox
import re
import signal
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from warmup_dagster.local_smtp import AuthGatedHandler, ThreadedServer, login_of

logger = logging.getLogger(__name__)

Authenticator = Callable[[str, str], bool]
"""Checks one `(username, password)` pair; returns True to accept it."""

SANDBOX_HOSTNAME = "sandbox.localhost"
"""Name in the 220 greeting and in `Received` headers (fixed: avoids a DNS lookup per
connection, which aiosmtpd does by default)."""

_ATEXT = r"[\w!#$%&'*+\-=?^`{|}~]"  # RFC 5322 atext minus "/", which would split the path
_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
_ADDRESS = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*@{_LABEL}(?:\.{_LABEL})*")
_MAX_ADDRESS_LENGTH = 254  # RFC 5321 path limit; also keeps the folder name a legal file name
_MALFORMED = "553 5.1.3 Error: malformed address"
_MAILDIR_KEY = re.compile(r"^(\d+)\.M(\d+)P(\d+)Q(\d+)")


def accept_any(username: str, password: str) -> bool:
    """Accept any non-empty username and password.

    Args:
        username: The SMTP AUTH username.
        password: The SMTP AUTH password.

    Returns:
        True when both are non-empty.
    """
    return bool(username) and bool(password)


def is_deliverable_address(address: str) -> bool:
    """Tell whether an address is plain `local@domain` the sandbox can use as a folder name.

    Quoted local parts, address literals and anything containing a path separator are refused.

    Args:
        address: The envelope address, without angle brackets.

    Returns:
        True when the address is syntactically acceptable.
    """
    return len(address) <= _MAX_ADDRESS_LENGTH and _ADDRESS.fullmatch(address) is not None


class _MaildirHandler(AuthGatedHandler):
    """aiosmtpd handler: gates MAIL on AUTH, checks recipients, writes each copy to Maildir."""

    def __init__(self, root: Path, require_auth: bool, shared: bool = False) -> None:
        self.root = root
        self.require_auth = require_auth
        self.shared = shared
        self.delivered_count = 0
        self._maildirs: dict[str, mailbox.Maildir] = {}

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not is_deliverable_address(address):
            return _MALFORMED
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # SMTP lines end in CRLF; Maildir files use the local convention (LF).
        body = (envelope.original_content or b"").replace(b"\r\n", b"\n")
        protocol = "ESMTP" if session.extended_smtp else "SMTP"
        protocol += "S" if session.ssl is not None else ""
        protocol += "A" if session.authenticated else ""
        peer_ip = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        date = email.utils.formatdate(localtime=True)
        try:
            for recipient in envelope.rcpt_tos:
                trace = (
                    f"Return-Path: <{envelope.mail_from or ''}>\n"
                    f"X-Sandbox-Delivered-To: {recipient}\n"
                    f"Received: from {session.host_name} ({peer_ip})\n"
                    f"\tby {SANDBOX_HOSTNAME} (warmup-dagster sandbox) with {protocol}\n"
                    f"\tfor <{recipient}>; {date}\n"
                )
                self._maildir(recipient).add(trace.encode("utf-8") + body)
                self.delivered_count += 1
        except OSError:
            logger.exception("sandbox could not store a message for %s", envelope.rcpt_tos)
            return "451 4.3.0 Local delivery failed"
        return "250 OK"

    def _maildir(self, address: str) -> mailbox.Maildir:
        key = address.lower()
        box = self._maildirs.get(key)
        if box is None:
            box = mailbox.Maildir(self.root / key, factory=None, create=True)
            if self.shared:
                # The IMAP server's mail user renames, flags and moves what this one writes.
                for folder in ("", "tmp", "new", "cur"):
                    (self.root / key / folder).chmod(0o777)
            self._maildirs[key] = box
        return box


class SandboxServer(ThreadedServer):
    """A local SMTP server with AUTH that delivers every message into per-recipient Maildirs.

    Runs aiosmtpd in a background thread. AUTH PLAIN and LOGIN are offered without TLS because
    the server is meant for loopback; STARTTLS is offered only when a `tls_context` is given.

    Args:
        maildir_root: Folder holding one Maildir per recipient; created on start.
        host: Address to listen on.
        port: Port to listen on; 0 picks a free port on each start (see `port`).
        authenticator: Checks `(username, password)`; None means `accept_any`.
        require_auth: When True, MAIL FROM before a successful AUTH gets 530.
        tls_context: Server-side SSL context; when given, STARTTLS is offered.
        shared: Make the Maildirs writable by every user, for an IMAP server running as
            another user (`warmup sandbox --imap-port`: Dovecot's mail user) to serve them.
    """

    def __init__(
        self,
        maildir_root: Path,
        host: str = "127.0.0.1",
        port: int = 2525,
        authenticator: Authenticator | None = None,
        require_auth: bool = True,
        tls_context: ssl.SSLContext | None = None,
        shared: bool = False,
    ) -> None:
        super().__init__(host, port)
        self.maildir_root = Path(maildir_root)
        self.authenticator: Authenticator = authenticator or accept_any
        self.require_auth = require_auth
        self.tls_context = tls_context
        self.shared = shared
        self._handler = _MaildirHandler(self.maildir_root, require_auth, shared)

    @property
    def delivered_count(self) -> int:
        """Messages times recipients stored since this object was created."""
        return self._handler.delivered_count

    def _controller_for(self, port: int) -> Controller:
        self.maildir_root.mkdir(parents=True, exist_ok=True)
        if self.shared:
            self.maildir_root.chmod(0o777)
        return Controller(
            self._handler,
            hostname=self.host,
            port=port,
            server_hostname=SANDBOX_HOSTNAME,
            authenticator=self._check_credentials,
            auth_require_tls=False,
            tls_context=self.tls_context,
        )

    def _check_credentials(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """Adapt the simple `(username, password)` authenticator to aiosmtpd's callback."""
        login = login_of(auth_data)
        if login is None:
            return AuthResult(success=False, handled=False)
        username, password = login
        if self.authenticator(username, password):
            return AuthResult(success=True, auth_data=auth_data)
        logger.info("sandbox rejected %s credentials for %r", mechanism, username)
        # handled=False makes aiosmtpd answer "535 5.7.8 Authentication credentials invalid".
        return AuthResult(success=False, handled=False)


def run_forever(server: SandboxServer) -> None:
    """Run the server in the foreground until SIGINT or SIGTERM, then stop it.

    Must be called from the main thread (Python delivers signals only there).

    Args:
        server: The server to run; it is started and stopped here.
    """
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        logger.info(
            "sandbox SMTP listening on %s:%d, delivering to %s",
            server.host,
            server.port,
            server.maildir_root,
        )
        while not stop_requested.wait(1.0):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def read_maildir(maildir_root: Path, address: str) -> list[email.message.EmailMessage]:
    """Read every message the sandbox stored for one recipient, oldest first.

    Args:
        maildir_root: The server's `maildir_root`.
        address: The recipient address (any case).

    Returns:
        The parsed messages (with the `email.policy.default` policy); empty if none arrived.
    """
    folder = Path(maildir_root) / address.lower()
    if not (folder / "new").is_dir():
        return []
    box = mailbox.Maildir(folder, factory=None, create=False)
    messages = []
    for key in sorted(box.keys(), key=_delivery_order):
        parsed = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
        messages.append(cast(email.message.EmailMessage, parsed))
    return messages


def _delivery_order(key: str) -> tuple[int, int, int, int, str]:
    """Sort key for Maildir names `<seconds>.M<micros>P<pid>Q<counter>.<host>`."""
    match = _MAILDIR_KEY.match(key)
    if match is None:
        return (0, 0, 0, 0, key)
    seconds, micros, pid, counter = (int(part) for part in match.groups())
    return (seconds, micros, pid, counter, key)
