"""A real IMAP side for tests and benchmarks: Dovecot in a temporary folder, an SMTP server
that delivers into it, and a TCP proxy that drops connections.

`DovecotServer` is the project's local Dovecot (`warmup_dagster.local_imap.LocalDovecot`: its
own folder, Maildirs, a plaintext port and, with a test certificate, an implicit-TLS port on
loopback, SPECIAL-USE Junk and Sent folders) with a passwd-file of test users and helpers to
read and store mail.
`DeliveringSmtp` is the test SMTP server that also delivers each accepted message into the
recipient's mailbox (IMAP APPEND as the user), sending some to Junk by a fixed rule, and saves
the sender's copy in its Sent folder. `DroppingProxy` forwards TCP to the server and cuts a
connection mid-session (after some bytes, or at a given command), for the fault tests.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import hashlib
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from imapclient import IMAPClient

from warmup_dagster.local_imap import JUNK, SENT, DovecotMissing, LocalDovecot
from warmup_dagster.testing.smtp_server import FaultySmtpServer, Received

__all__ = [
    "JUNK",
    "SENT",
    "DeliveringSmtp",
    "DovecotMissing",
    "DovecotServer",
    "DroppingProxy",
    "Stored",
    "to_junk",
]


@dataclass(frozen=True)
class Stored:
    """One message in a folder, as the server keeps it."""

    uid: int
    flags: frozenset[str]
    message_id: str
    subject: str
    raw: bytes


class DovecotServer(LocalDovecot):
    """Dovecot on loopback with a passwd-file of test users (`LocalDovecot`), and what the
    tests read and write through it.

    Args:
        users: Test users, `login: password` (logins are the mailboxes' addresses).
        **kwargs: `LocalDovecot`'s (`cert`, `key`, `junk`, `sent`, `host`).
    """

    def __init__(self, users: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(dict(users or {}), **kwargs)

    @property
    def logins(self) -> dict[str, str]:
        assert self.users is not None
        return self.users

    def client(self, login: str, *, tls: bool = False, ca_file: Path | None = None) -> IMAPClient:
        """A logged-in IMAP client for `login` (plaintext port, or the TLS port)."""
        if tls:
            context = ssl.create_default_context(cafile=str(ca_file or self.cert))
            imap = IMAPClient(self.host, self.ssl_port, ssl=True, ssl_context=context, timeout=10)
        else:
            imap = IMAPClient(self.host, self.port, ssl=False, timeout=10)
        imap.login(login, self.logins[login])
        return imap

    def append(self, login: str, folder: str, raw: bytes, flags: tuple[str, ...] = ()) -> None:
        """Store a message in one of a user's folders, as delivery would."""
        imap = self.client(login)
        try:
            if not imap.folder_exists(folder):
                folder = "INBOX"
            imap.append(folder, raw, flags=flags)
        finally:
            imap.logout()

    def messages(self, login: str, folder: str = "INBOX") -> list[Stored]:
        """Every message of a user's folder with its flags; empty if the folder is missing."""
        imap = self.client(login)
        try:
            if not imap.folder_exists(folder):
                return []
            imap.select_folder(folder, readonly=True)
            uids = imap.search("ALL")
            fetched = imap.fetch(uids, ["FLAGS", "BODY.PEEK[]"]) if uids else {}
        finally:
            imap.logout()
        out = []
        for uid, data in sorted(fetched.items()):
            raw = data[b"BODY[]"]
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            out.append(
                Stored(
                    uid=uid,
                    flags=frozenset(f.decode() for f in data[b"FLAGS"]),
                    message_id=str(parsed["Message-ID"] or ""),
                    subject=str(parsed["Subject"] or ""),
                    raw=raw,
                )
            )
        return out

    def folders(self, login: str) -> list[str]:
        imap = self.client(login)
        try:
            return sorted(name for _, _, name in imap.list_folders())
        finally:
            imap.logout()


def to_junk(message_id: str, share: float) -> bool:
    """The fixed rule by which `DeliveringSmtp` files a message in Junk: a hash of its
    Message-ID below `share` (the same message lands in the same place every run)."""
    digest = hashlib.sha256(message_id.strip().encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


class DeliveringSmtp(FaultySmtpServer):
    """The test SMTP server (faults by recipient, AUTH, TLS: see `FaultySmtpServer`) that
    delivers every accepted message into the recipient's Dovecot mailbox.

    A message goes to the recipient's Junk folder when `to_junk(Message-ID, junk_share)`, else
    to its inbox, and a copy into the sender's Sent folder when `save_sent` (as providers keep
    one). Recipients that are not Dovecot users are only kept, as by the plain server.

    Args:
        dovecot: The server to deliver into.
        junk_share: Share of the messages routed to Junk.
        save_sent: Store the sender's copy in its Sent folder.
        rule: Instead of the share, a function of the Message-ID saying "Junk".
        **kwargs: `FaultySmtpServer`'s.
    """

    def __init__(
        self,
        dovecot: DovecotServer,
        *,
        junk_share: float = 0.3,
        save_sent: bool = True,
        rule: Callable[[str], bool] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dovecot = dovecot
        self.junk_share = junk_share
        self.save_sent = save_sent
        self.rule = rule or (lambda message_id: to_junk(message_id, junk_share))
        self.delivered: list[tuple[str, str, str]] = []  # (recipient, folder, Message-ID)

    def _deliver(self, received: Received) -> None:
        message_id = str(received.message["Message-ID"] or "")
        for recipient in received.rcpt_tos:
            if recipient not in self.dovecot.logins:
                continue
            folder = JUNK if self.rule(message_id) and self.dovecot.junk else "INBOX"
            self.dovecot.append(recipient, folder, received.data)
            with self._lock:
                self.delivered.append((recipient, folder, message_id))
        sender = received.mail_from
        if self.save_sent and self.dovecot.sent and sender in self.dovecot.logins:
            self.dovecot.append(sender, SENT, received.data, flags=("\\Seen",))


class DroppingProxy:
    """A TCP proxy to `target` that cuts client connections mid-session, for the fault tests.

    A connection is cut (both ways, the data not forwarded) when the client has sent
    `after_bytes`, or when it sends data containing `on` for the `(let_through + 1)`-th time
    in that connection (e.g. `on=b"UID MOVE", let_through=1`: the first MOVE goes through, the
    second never reaches the server). With neither, it forwards everything.

    Args:
        target: (host, port) to forward to.
        after_bytes: Bytes from the client after which the connection is cut.
        on: Bytes in a client's data that cut the connection.
        let_through: Times `on` is forwarded before it cuts.
        host: Address to listen on.
    """

    def __init__(
        self,
        target: tuple[str, int],
        *,
        after_bytes: int | None = None,
        on: bytes | None = None,
        let_through: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        self.target, self.host = target, host
        self.after_bytes, self.on, self.let_through = after_bytes, on, let_through
        self.drops = 0
        self.port = 0
        self._listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.create_server((self.host, 0))
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, name="dropping-proxy", daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _accept(self) -> None:
        while self._listener is not None:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            state = {"sent": 0, "seen": 0}
            threading.Thread(target=self._pipe, args=(client, upstream, state), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, None), daemon=True).start()

    def _cut(self, data: bytes, state: dict[str, int]) -> bool:
        state["sent"] += len(data)
        if self.after_bytes is not None and state["sent"] >= self.after_bytes:
            return True
        if self.on is not None and self.on in data:
            state["seen"] += 1
            return state["seen"] > self.let_through
        return False

    def _pipe(self, source: socket.socket, sink: socket.socket, state: dict | None) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if state is not None and self._cut(data, state):
                    self.drops += 1
                    break
                sink.sendall(data)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
