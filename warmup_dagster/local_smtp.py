"""What every local aiosmtpd server of the project shares, the sandbox and the test server.

`ThreadedServer` runs one in a background thread (`start`, `stop`, `with`, its port),
`AuthGatedHandler` refuses MAIL before AUTH, `login_of` decodes a PLAIN or LOGIN exchange and
`free_port` finds a port to listen on. The sandbox (`warmup_dagster.sandbox`) and the
fault-injecting server of the tests (`warmup_dagster.testing.smtp_server`) build on them.
"""

from __future__ import annotations

import logging
import socket
from types import TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, LoginPassword, Session

_AUTH_REQUIRED = "530 5.7.0 Authentication required"


class _DropLoginDataDeprecation(logging.Filter):
    """Drop aiosmtpd's "Session.login_data is deprecated" record.

    aiosmtpd 1.4 logs it on every successful AUTH from its own internal code, so it tells the
    reader nothing they could act on.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "Session.login_data is deprecated" not in record.getMessage()


_AIOSMTPD_LOG_FILTER = _DropLoginDataDeprecation()


def login_of(auth_data: Any) -> tuple[str, str] | None:
    """The `(username, password)` of an AUTH PLAIN or LOGIN exchange; None if not usable.

    Args:
        auth_data: What aiosmtpd passes an authenticator.

    Returns:
        The decoded pair, or None for other mechanisms and for bytes that are not UTF-8.
    """
    if not isinstance(auth_data, LoginPassword):
        return None
    try:
        return auth_data.login.decode("utf-8"), auth_data.password.decode("utf-8")
    except UnicodeDecodeError:
        return None


class AuthGatedHandler:
    """aiosmtpd handler base: MAIL before a successful AUTH gets 530 when `require_auth`.

    Checked in the MAIL hook rather than with aiosmtpd's auth_required=True, which warns on
    every connection when AUTH is allowed without TLS. aiosmtpd finds the hooks by their
    `handle_<VERB>` names. The test suite's fault-injecting server builds on it too.
    """

    require_auth: bool = True

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.require_auth and not session.authenticated:
            return _AUTH_REQUIRED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"


class ThreadedServer:
    """An aiosmtpd server in a background thread: `start`, `stop`, `with`, and its port.

    Subclasses build the controller (`_controller_for`); this holds what every such server
    does around it.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self._requested_port = port
        self._port = port
        self._controller: Controller | None = None

    @property
    def port(self) -> int:
        """The port the server listens on (the chosen one when created with port=0)."""
        return self._port

    def _controller_for(self, port: int) -> Controller:
        raise NotImplementedError

    def start(self) -> None:
        """Start listening in a background thread; returns once the server answers."""
        if self._controller is not None:
            return
        logging.getLogger("mail.log").addFilter(_AIOSMTPD_LOG_FILTER)
        # aiosmtpd's Controller binds the port it is given; it cannot report a kernel-chosen one.
        self._port = self._requested_port or free_port(self.host)
        controller = self._controller_for(self._port)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Stop the server and its thread; does nothing when not running."""
        if self._controller is None:
            return
        self._controller.stop()
        self._controller = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def free_port(host: str) -> int:
    """Ask the kernel for a free TCP port on `host` (free now; another process could take it)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as probe:
        probe.bind(address)
        return int(probe.getsockname()[1])
