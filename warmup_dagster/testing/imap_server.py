"""A real IMAP side for tests and benchmarks: Dovecot in a temporary folder, an SMTP server
that delivers into it, and a TCP proxy that drops connections.

`DovecotServer` runs Debian's `dovecot-imapd` with its own configuration in a temporary
folder: its own base and state folders and log, a passwd-file of test users, Maildirs under
the folder, a plaintext port and an implicit-TLS port (with a test certificate) on loopback,
and SPECIAL-USE folders (`\\Junk` on "Junk", `\\Sent` on "Sent") as big providers have.
`DeliveringSmtp` is the test SMTP server that also delivers each accepted message into the
recipient's mailbox (IMAP APPEND as the user), sending some to Junk by a fixed rule, and saves
the sender's copy in its Sent folder. `DroppingProxy` forwards TCP to the server and cuts a
connection after a set number of bytes from the client, for the fault tests.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import hashlib
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from imapclient import IMAPClient

from warmup_dagster.local_smtp import free_port
from warmup_dagster.testing.smtp_server import FaultySmtpServer, Received

DOVECOT = "dovecot"
JUNK = "Junk"
SENT = "Sent"


class DovecotMissing(RuntimeError):
    """Dovecot is not installed (`scripts/ensure_dovecot.sh` installs it)."""


@dataclass(frozen=True)
class Stored:
    """One message in a folder, as the server keeps it."""

    uid: int
    flags: frozenset[str]
    message_id: str
    subject: str
    raw: bytes


class DovecotServer:
    """Dovecot on loopback in its own temporary folder (see the module docstring).

    Run as root, its mail processes take the `dovecot` user and its login processes
    `dovenull` (imap-login refuses root); run as another user, everything runs as that user.

    Args:
        users: Test users, `login: password` (logins are the mailboxes' addresses).
        cert: Certificate for the TLS port; with `key`. Without them there is no TLS port.
        key: The certificate's key.
        junk: Declare the "Junk" folder (`\\Junk`); False leaves a mailbox without one.
        sent: Declare the "Sent" folder (`\\Sent`).
        host: Address to listen on.
    """

    def __init__(
        self,
        users: dict[str, str] | None = None,
        *,
        cert: Path | None = None,
        key: Path | None = None,
        junk: bool = True,
        sent: bool = True,
        host: str = "127.0.0.1",
    ) -> None:
        if (cert is None) != (key is None):
            raise ValueError("cert and key go together")
        self.users = dict(users or {})
        self.cert, self.key = cert, key
        self.junk, self.sent = junk, sent
        self.host = host
        self.port = 0
        self.ssl_port = 0
        self.folder: Path | None = None
        self._lock = threading.Lock()

    @property
    def config(self) -> Path:
        assert self.folder is not None, "the server is not started"
        return self.folder / "dovecot.conf"

    def start(self) -> None:
        """Write the configuration and start Dovecot; returns once it accepts connections.

        Raises:
            DovecotMissing: `dovecot` is not on the PATH.
            RuntimeError: it did not start (the message carries its log).
        """
        if self.folder is not None:
            return
        if shutil.which(DOVECOT) is None:
            raise DovecotMissing(
                "dovecot is not installed: run scripts/ensure_dovecot.sh (make test does)"
            )
        # Not under the caller's temporary folder: Dovecot's unprivileged processes must be
        # able to reach it, and pytest's folders are private to their owner.
        self.folder = Path(tempfile.mkdtemp(prefix="warmup-dovecot-"))
        self.folder.chmod(0o755)
        (self.folder / "run").mkdir()
        (self.folder / "state").mkdir()
        mail = self.folder / "mail"
        mail.mkdir()
        mail_user, login_user = _accounts()
        os.chown(mail, pwd.getpwnam(mail_user).pw_uid, pwd.getpwnam(mail_user).pw_gid)
        self.port = free_port(self.host)
        self.ssl_port = free_port(self.host) if self.cert is not None else 0
        self._write_users()
        self.config.write_text(self._config_text(mail_user, login_user))
        log = self.folder / "dovecot.log"
        with open(self.folder / "stdout.log", "wb") as out:
            # Dovecot daemonizes but keeps its caller's stdout open: never a pipe.
            result = subprocess.run(
                [DOVECOT, "-c", str(self.config)], stdout=out, stderr=out, check=False
            )
        if result.returncode != 0 or not self._answers():
            text = (self.folder / "stdout.log").read_text()
            text += log.read_text() if log.exists() else ""
            self.stop()
            raise RuntimeError(f"dovecot did not start (exit {result.returncode}):\n{text}")

    def stop(self) -> None:
        """Stop Dovecot and remove its folder; does nothing when not running."""
        if self.folder is None:
            return
        pid_file = self.folder / "run" / "master.pid"
        pid = int(pid_file.read_text()) if pid_file.exists() else None
        subprocess.run(
            [DOVECOT, "-c", str(self.config), "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        if pid is not None:
            _wait_gone(pid)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None

    def add_user(self, login: str, password: str) -> None:
        """Add or change a user (Dovecot rereads its passwd-file when it changes)."""
        with self._lock:
            self.users[login] = password
            self._write_users()

    def client(self, login: str, *, tls: bool = False, ca_file: Path | None = None) -> IMAPClient:
        """A logged-in IMAP client for `login` (plaintext port, or the TLS port)."""
        if tls:
            context = ssl.create_default_context(cafile=str(ca_file or self.cert))
            imap = IMAPClient(self.host, self.ssl_port, ssl=True, ssl_context=context, timeout=10)
        else:
            imap = IMAPClient(self.host, self.port, ssl=False, timeout=10)
        imap.login(login, self.users[login])
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

    def _write_users(self) -> None:
        assert self.folder is not None
        lines = "".join(f"{login}:{{PLAIN}}{pw}::::::\n" for login, pw in self.users.items())
        path = self.folder / "users"
        temporary = path.with_suffix(".new")
        temporary.write_text(lines)
        temporary.chmod(0o644)
        temporary.replace(path)

    def _config_text(self, mail_user: str, login_user: str) -> str:
        assert self.folder is not None
        uid = pwd.getpwnam(mail_user).pw_uid
        ssl_lines = "ssl = no\n"
        listeners = (
            f"  inet_listener imap {{\n    address = {self.host}\n    port = {self.port}\n  }}\n"
        )
        if self.cert is not None:
            ssl_lines = f"ssl = yes\nssl_cert = <{self.cert}\nssl_key = <{self.key}\n"
            listeners += (
                f"  inet_listener imaps {{\n    address = {self.host}\n"
                f"    port = {self.ssl_port}\n    ssl = yes\n  }}\n"
            )
        folders = ""
        for wanted, name, use in ((self.junk, JUNK, "\\Junk"), (self.sent, SENT, "\\Sent")):
            if wanted:
                # Dovecot's parser wants these on separate lines.
                folders += (
                    f"  mailbox {name} {{\n    special_use = {use}\n    auto = create\n  }}\n"
                )
        return f"""# warmup-dagster test server (warmup_dagster/testing/imap_server.py)
protocols = imap
listen = {self.host}
base_dir = {self.folder}/run
state_dir = {self.folder}/state
log_path = {self.folder}/dovecot.log
info_log_path = {self.folder}/dovecot.log
default_internal_user = {mail_user}
default_login_user = {login_user}
first_valid_uid = {min(uid, 1)}
disable_plaintext_auth = no
auth_mechanisms = plain login
# a refused login is answered at once (Dovecot waits 2 s by default)
auth_failure_delay = 0
{ssl_lines}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.folder}/users
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_user} home={self.folder}/mail/%u
}}
mail_location = maildir:{self.folder}/mail/%u
namespace inbox {{
  inbox = yes
  separator = /
{folders}}}
service imap-login {{
  chroot =
{listeners}}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""

    def _answers(self, timeout: float = 20.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as probe:
                    if probe.recv(64).startswith(b"* OK"):
                        return True
            except OSError:
                time.sleep(0.1)
        return False

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


def _accounts() -> tuple[str, str]:
    """(mail user, login user): `dovecot` and `dovenull` as root, else the caller's own."""
    if os.geteuid() == 0:
        return "dovecot", "dovenull"
    own = pwd.getpwuid(os.geteuid()).pw_name
    return own, own


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


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
            if recipient not in self.dovecot.users:
                continue
            folder = JUNK if self.rule(message_id) and self.dovecot.junk else "INBOX"
            self.dovecot.append(recipient, folder, received.data)
            with self._lock:
                self.delivered.append((recipient, folder, message_id))
        sender = received.mail_from
        if self.save_sent and self.dovecot.sent and sender in self.dovecot.users:
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
