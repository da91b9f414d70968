"""A real SMTP server on loopback that misbehaves on request, for tests and benchmarks only.

`FaultySmtpServer` runs aiosmtpd in a background thread. One server serves every case: the
recipient's local part picks the fault (`code421@`, `code451@`, `code550@`, `drop@`,
`slow@`), anything else is accepted. With `data_delay` it stands in for a real provider that
takes its time per message; with `keep_messages=False` it only counts, so it can sink tens of
thousands of messages a minute. Each kept message carries its arrival time on the clock the
server was given, so a benchmark on a scaled clock can audit arrivals in clock time.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.message
import email.policy
import json
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from warmup_dagster.clock import Clock, RealClock
from warmup_dagster.local_smtp import AuthGatedHandler, ThreadedServer, free_port, login_of
from warmup_dagster.testing.oauth_server import OAuthServer

TlsMode = Literal["none", "starttls", "ssl"]

SERVER_HOSTNAME = "faulty.localhost"
"""Name in the greeting (fixed: aiosmtpd would otherwise look up the FQDN)."""


@dataclass(frozen=True)
class Received:
    """One accepted message, as the server got it.

    Attributes:
        mail_from: The envelope sender.
        rcpt_tos: The accepted envelope recipients.
        data: The message bytes as received after DATA (CRLF line ends).
        encrypted: Whether the session was under TLS (implicit or after STARTTLS).
        arrived_at: When the server had the whole message, on the server's clock: before any
            `data_delay` and before its reply to DATA.
    """

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    encrypted: bool
    arrived_at: datetime

    @property
    def message(self) -> email.message.EmailMessage:
        """The message parsed with the `email.policy.default` policy."""
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        return cast(email.message.EmailMessage, parsed)


class _CountingSMTP(SMTP):
    """aiosmtpd's SMTP protocol that reports each new TCP connection to the server object."""

    def __init__(self, owner: FaultySmtpServer, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._owner = owner
        self._open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # aiosmtpd calls this again on the TLS transport after STARTTLS; that is the same
        # session, so only a connection without an original transport is a new one.
        if self._original_transport is None:
            self._owner._count_session()
            self._open = True
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        # Once per session: what a handler was doing for it (a delivery) is done by now.
        if self._open:
            self._open = False
            self._owner._end_session()


class _FaultyController(Controller):
    """Controller whose protocol objects count sessions."""

    def __init__(self, owner: FaultySmtpServer, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._owner = owner

    def factory(self) -> SMTP:
        return _CountingSMTP(self._owner, self.handler, **self.SMTP_kwargs)


class _FaultyHandler(AuthGatedHandler):
    """aiosmtpd handler: gates MAIL on AUTH, injects faults by recipient, records the rest."""

    def __init__(self, owner: FaultySmtpServer) -> None:
        self._owner = owner

    @property
    def require_auth(self) -> bool:
        return self._owner.users is not None

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        # aiosmtpd leaves this to the hook when one exists; later commands check it.
        session.host_name = hostname
        if self._owner.users is None:
            # aiosmtpd advertises AUTH even without an authenticator (and then refuses every
            # login); a server without users should look like one that has no AUTH at all.
            return [line for line in responses if not line[4:].upper().startswith("AUTH")]
        return responses

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """AUTH XOAUTH2 checked against the test OAuth2 server (aiosmtpd finds the mechanism
        by this name); only advertised when the server was given one.

        A refused token gets the 334 challenge with a JSON error that Google and Microsoft
        send, then (after the client's empty line) 535.
        """
        oauth = self._owner.oauth
        assert oauth is not None  # excluded from the mechanisms without one
        blob = args[1] if len(args) > 1 else await server.challenge_auth("")
        if not isinstance(blob, str | bytes):  # the client aborted (aiosmtpd answered it)
            return AuthResult(success=False, handled=True)
        try:
            raw = base64.b64decode(blob) if isinstance(blob, str) else blob
            fields = dict(part.split("=", 1) for part in raw.decode().split("\x01") if "=" in part)
        except (ValueError, UnicodeDecodeError):
            fields = {}
        user, bearer = fields.get("user", ""), fields.get("auth", "")
        token = bearer.removeprefix("Bearer ")
        if bearer.startswith("Bearer ") and oauth.validate(token) == user and user:
            return AuthResult(success=True, auth_data=user)
        with self._owner._lock:
            self._owner._logins_refused += 1
        await server.challenge_auth(json.dumps({"status": "401", "schemes": "bearer"}))
        return AuthResult(success=False, handled=False)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        local = address.partition("@")[0].lower()
        if local == "code421":
            return "421 4.7.0 Try again later, closing connection"
        if local == "code451":
            return "451 4.3.0 Temporary local problem, try again"
        if local == "code550":
            return "550 5.1.1 No such user" + self._owner._echo(session)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # The content is all here now; a delay below is the server's, not the message's.
        arrived_at = self._owner.clock.now()
        locals_ = {address.partition("@")[0].lower() for address in envelope.rcpt_tos}
        if "drop" in locals_:
            # Data received, reply never sent: the client can't know whether it arrived.
            self._owner._count_drop()
            if server.transport is not None:
                server.transport.abort()
            return "451 4.3.0 never seen by the client"
        if "slow" in locals_:
            await asyncio.sleep(self._owner.slow_seconds)
        elif self._owner.data_delay:
            await asyncio.sleep(self._owner.data_delay)
        self._owner._record(envelope, server, arrived_at)
        return "250 OK queued" + self._owner._echo(session)


class FaultySmtpServer(ThreadedServer):
    """A loopback SMTP server with optional AUTH and TLS, and faults chosen by recipient.

    Faults by recipient local part: `code421`, `code451` and `code550` get that reply to RCPT;
    `drop` makes the server abort the connection after receiving the DATA content and before
    replying; `slow` makes it wait `slow_seconds` before replying to DATA. Every other
    recipient is accepted.

    All counters and `received` may be read from any thread while the server runs.

    Args:
        users: Accepted `username: password` pairs; when given, AUTH (PLAIN or LOGIN) is
            required before MAIL, and a wrong password gets 535.
        tls: "none" (plaintext), "starttls" (offered and required before anything else) or
            "ssl" (implicit TLS from the first byte).
        cert: Certificate file for "starttls" and "ssl".
        key: Key file for "starttls" and "ssl".
        data_delay: Seconds to wait before accepting each message (an asyncio sleep, so
            sessions still run concurrently): a realistic provider's per-message latency.
        slow_seconds: Seconds a `slow@` message waits before its DATA reply.
        keep_messages: Store each accepted message in `received`; False only counts.
        echo_credentials: Quote the login back, as it came and as AUTH PLAIN's base64, in the
            reply to a refused login, to DATA and to a `code550` RCPT: a careless server's
            replies, which must never reach the send log.
        clock: What `Received.arrived_at` is read from: the deployment's clock (a scaled one
            gives arrivals in clock time); real time if None.
        oauth: The test OAuth2 server AUTH XOAUTH2 checks access tokens against; None: no
            XOAUTH2. With it, pass `users` (even empty) so that AUTH is required.
        host: Address to listen on.
        port: Port to listen on; 0 picks a free one.
    """

    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        tls: TlsMode = "none",
        cert: Path | None = None,
        key: Path | None = None,
        data_delay: float = 0.0,
        slow_seconds: float = 5.0,
        keep_messages: bool = True,
        echo_credentials: bool = False,
        clock: Clock | None = None,
        oauth: OAuthServer | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if tls not in ("none", "starttls", "ssl"):
            raise ValueError(f"tls must be none, starttls or ssl, not {tls!r}")
        if tls != "none" and (cert is None or key is None):
            raise ValueError(f"tls={tls} needs cert and key")
        super().__init__(host, port)
        self.users = dict(users) if users is not None else None
        self.tls: TlsMode = tls
        self.cert = cert
        self.key = key
        self.data_delay = data_delay
        self.slow_seconds = slow_seconds
        self.keep_messages = keep_messages
        self.echo_credentials = echo_credentials
        self.clock: Clock = clock if clock is not None else RealClock()
        self.oauth = oauth
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._transactions = 0
        self._sessions = 0
        self._open_sessions = 0
        self._drops = 0
        self._logins_refused = 0

    @property
    def received(self) -> list[Received]:
        """A snapshot of the accepted messages, oldest first (empty with keep_messages off)."""
        with self._lock:
            return list(self._received)

    @property
    def transactions(self) -> int:
        """Messages accepted with 250 after DATA."""
        with self._lock:
            return self._transactions

    @property
    def sessions(self) -> int:
        """SMTP sessions started: one per TCP connection, not counting STARTTLS again.

        With implicit TLS a connection counts only once its handshake succeeded.
        """
        with self._lock:
            return self._sessions

    def wait_idle(self, timeout: float) -> None:
        """Wait until no session is open: every message a dead client's session was handing
        over is accepted (and delivered) or dropped by now.

        Raises:
            TimeoutError: Sessions still open after `timeout` real seconds.
        """
        give_up = time.monotonic() + timeout
        while True:
            with self._lock:
                if self._open_sessions <= 0:
                    return
            if time.monotonic() >= give_up:
                raise TimeoutError(f"SMTP sessions still open after {timeout} s")
            time.sleep(0.01)

    @property
    def drops(self) -> int:
        """Connections aborted on purpose in the middle of DATA."""
        with self._lock:
            return self._drops

    @property
    def logins_refused(self) -> int:
        """AUTH attempts refused with 535 (passwords and XOAUTH2 tokens)."""
        with self._lock:
            return self._logins_refused

    def reset(self) -> None:
        """Forget received messages and zero the counters."""
        with self._lock:
            self._received.clear()
            self._transactions = 0
            self._sessions = 0
            self._drops = 0
            self._logins_refused = 0

    def start(self) -> None:
        if self._controller is None:
            super().start()
            # Controller.start() opens one connection of its own to check the server answers.
            self.reset()

    def _controller_for(self, port: int) -> Controller:
        server_context = self._server_context()
        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "port": port,
            "server_hostname": SERVER_HOSTNAME,
            "ident": "FaultySmtpServer",
            # With implicit TLS aiosmtpd doesn't know the session is encrypted, so it would
            # hide AUTH if it had to wait for STARTTLS.
            "auth_require_tls": self.tls == "starttls",
        }
        if self.users is not None:
            kwargs["authenticator"] = self._check_credentials
        if self.oauth is None:
            kwargs["auth_exclude_mechanism"] = ["XOAUTH2"]
        if self.tls == "ssl":
            kwargs["ssl_context"] = server_context
        elif self.tls == "starttls":
            kwargs["tls_context"] = server_context
            kwargs["require_starttls"] = True
        return _FaultyController(self, _FaultyHandler(self), **kwargs)

    def _server_context(self) -> ssl.SSLContext | None:
        if self.tls == "none":
            return None
        assert self.cert is not None and self.key is not None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def _check_credentials(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        login = login_of(auth_data)
        if login is None or self.users is None:
            return AuthResult(success=False, handled=False)
        username, password = login
        if self.users.get(username) == password:
            return AuthResult(success=True, auth_data=auth_data)
        with self._lock:
            self._logins_refused += 1
        # handled=False makes aiosmtpd answer "535 5.7.8 Authentication credentials invalid",
        # or the message given.
        echo = _echoed(username, password) if self.echo_credentials else ""
        return AuthResult(
            success=False,
            handled=False,
            message=f"535 5.7.8 Authentication credentials invalid{echo}" if echo else None,
        )

    def _echo(self, session: Session) -> str:
        """The session's login quoted back, with `echo_credentials`; else nothing."""
        login = login_of(session.auth_data) if self.echo_credentials else None
        return _echoed(*login) if login else ""

    def _count_session(self) -> None:
        with self._lock:
            self._sessions += 1
            self._open_sessions += 1

    def _end_session(self) -> None:
        with self._lock:
            self._open_sessions -= 1

    def _count_drop(self) -> None:
        with self._lock:
            self._drops += 1

    def _record(self, envelope: Envelope, server: SMTP, arrived_at: datetime) -> None:
        if not self.keep_messages:
            with self._lock:
                self._transactions += 1
            return
        transport = server.transport
        received = Received(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=bytes(envelope.original_content or b""),
            encrypted=transport is not None and transport.get_extra_info("sslcontext") is not None,
            arrived_at=arrived_at,
        )
        self._deliver(received)
        with self._lock:
            self._transactions += 1
            self._received.append(received)

    def _deliver(self, received: Received) -> None:
        """Hand an accepted message on; this server only keeps it (`DeliveringSmtp` delivers
        it into mailboxes too)."""


def _echoed(username: str, password: str) -> str:
    plain = base64.b64encode(b"\0" + username.encode() + b"\0" + password.encode()).decode()
    return f" (you sent {username}:{password}, {plain})"


def closed_port(host: str = "127.0.0.1") -> int:
    """A port on `host` with nothing listening (free now; another process could take it)."""
    return free_port(host)
