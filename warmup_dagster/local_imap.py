"""Dovecot on loopback in a folder of its own: the IMAP side of the sandbox and of the tests.

`LocalDovecot` writes a configuration for Debian's `dovecot-imapd` into its own folder (base
and state folders, log), serves Maildirs (its own, or the sandbox's delivery folder) on a
plaintext loopback port and, given a certificate, an implicit-TLS port, with SPECIAL-USE
folders (`\\Junk` on "Junk", `\\Sent` on "Sent") as big providers have. Logins come from a
passwd-file of users (the tests) or are all accepted (the sandbox, like its SMTP server);
given an OAuth2 introspection endpoint, XOAUTH2 logins are checked against it too.
Run as root, its mail processes take the `dovecot` user and its logins `dovenull` (Dovecot
refuses root for both); run as another user, everything runs as that user.
`warmup_dagster.testing.imap_server` builds the test server on it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from warmup_dagster.local_smtp import free_port

DOVECOT = "dovecot"
JUNK = "Junk"
SENT = "Sent"


class DovecotMissing(RuntimeError):
    """Dovecot is not installed (`scripts/ensure_dovecot.sh` installs it)."""


class LocalDovecot:
    """Dovecot on loopback in its own temporary folder (see the module docstring).

    Args:
        users: Accepted logins, `login: password`; None accepts every login with any password.
        mail_root: The folder of one Maildir per login (lower case); None: one of its own.
            Given one, it must be reachable by Dovecot's mail user (the sandbox opens it).
        cert: Certificate for the TLS port; with `key`. Without them there is no TLS port.
        key: The certificate's key.
        junk: Declare the "Junk" folder (`\\Junk`); False leaves mailboxes without one.
        sent: Declare the "Sent" folder (`\\Sent`).
        host: Address to listen on.
        port: Plaintext port; 0 picks a free one.
        oauth2_introspection_url: An OAuth2 introspection endpoint (RFC 7662): logins by
            XOAUTH2 or OAUTHBEARER are then accepted when it says the token is active for
            that user (Dovecot's `oauth2` passdb); passwords still go to the users.
    """

    def __init__(
        self,
        users: dict[str, str] | None = None,
        *,
        mail_root: Path | None = None,
        cert: Path | None = None,
        key: Path | None = None,
        junk: bool = True,
        sent: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        oauth2_introspection_url: str | None = None,
    ) -> None:
        if (cert is None) != (key is None):
            raise ValueError("cert and key go together")
        self.users = None if users is None else dict(users)
        self.mail_root = mail_root
        self.cert, self.key = cert, key
        self.junk, self.sent = junk, sent
        self.host = host
        self.port = port
        self.oauth2_introspection_url = oauth2_introspection_url
        self._requested_port = port
        self.ssl_port = 0
        self.folder: Path | None = None
        self._lock = threading.Lock()

    @property
    def config(self) -> Path:
        assert self.folder is not None, "the server is not started"
        return self.folder / "dovecot.conf"

    @property
    def mail(self) -> Path:
        assert self.folder is not None, "the server is not started"
        return self.mail_root or self.folder / "mail"

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
        mail_user, login_user = _accounts()
        if self.mail_root is None:
            self.mail.mkdir()
            account = pwd.getpwnam(mail_user)
            os.chown(self.mail, account.pw_uid, account.pw_gid)
        self.port = self._requested_port or free_port(self.host)
        self.ssl_port = free_port(self.host) if self.cert is not None else 0
        if self.users is not None:
            self._write_users()
        self.config.write_text(self._config_text(mail_user, login_user))
        self._launch()

    def stop(self) -> None:
        """Stop Dovecot and remove its folder (not a `mail_root` given); nothing when stopped."""
        if self.folder is None:
            return
        self._stop_processes()
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None

    def halt(self) -> None:
        """Stop Dovecot's processes and keep the rest (its folder, the mail, the users and the
        ports): an outage, which `resume` ends."""
        assert self.folder is not None, "the server is not started"
        self._stop_processes()

    def resume(self) -> None:
        """Start Dovecot again after `halt`, as it was; returns once it accepts connections.

        Raises:
            RuntimeError: it did not start (the message carries its log); the folder is removed.
        """
        assert self.folder is not None, "the server is not started"
        self._launch()

    def _launch(self) -> None:
        assert self.folder is not None
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

    def _stop_processes(self) -> None:
        assert self.folder is not None
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

    def add_user(self, login: str, password: str) -> None:
        """Add or change a user.

        Dovecot rereads its passwd-file when it changes, but looks at most once a second: a
        login in the same second as an earlier one may not see the change yet. Add users
        before logging in.
        """
        if self.users is None:
            raise ValueError("this server accepts every login: there are no users to add")
        with self._lock:
            self.users[login] = password
            if self.folder is not None:
                self._write_users()

    def _write_users(self) -> None:
        assert self.folder is not None and self.users is not None
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
        if self.users is None:
            passdb = "  driver = static\n  args = nopassword=y\n"
        else:
            passdb = (
                f"  driver = passwd-file\n  args = scheme=PLAIN username_format=%u "
                f"{self.folder}/users\n"
            )
        mechanisms = "plain login"
        if self.oauth2_introspection_url is not None:
            mechanisms += " xoauth2 oauthbearer"
            oauth2 = self.folder / "oauth2.conf"
            oauth2.write_text(
                f"introspection_url = {self.oauth2_introspection_url}\n"
                "introspection_mode = post\n"
                "force_introspection = yes\n"
                "username_attribute = username\n"
                "active_attribute = active\n"
                "active_value = true\n"
            )
            oauth2.chmod(0o644)
            passdb += (
                "  mechanisms = plain login\n}\n"
                f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                f"  args = {oauth2}\n"
            )
        # Logins are addresses; the sandbox's Maildirs are named by the address lower-cased.
        return f"""# warmup-dagster local IMAP server (warmup_dagster/local_imap.py)
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
auth_mechanisms = {mechanisms}
# a refused login is answered at once (Dovecot waits 2 s by default)
auth_failure_delay = 0
{ssl_lines}
passdb {{
{passdb}}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_user} home={self.mail}/%Lu
}}
mail_location = maildir:{self.mail}/%Lu
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
