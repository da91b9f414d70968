"""The sandbox SMTP server, exercised with a real aiosmtplib client over loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from warmup_dagster.sandbox import SandboxServer, accept_any, read_maildir
from warmup_dagster.testing.certificates import self_signed_cert

USER = "sender@warmup.test"
PASSWORD = "s3cret"
CLIENT_NAME = "client.test"  # fixed EHLO name: spares the client a getfqdn() lookup


def _authenticator(username: str, password: str) -> bool:
    return (username, password) == (USER, PASSWORD)


def _message(
    to: list[str], subject: str = "Hello", body: str = "Warm greetings.\n"
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = USER
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Message-ID"] = f"<{subject.replace(' ', '-')}@warmup.test>"
    message["X-Warmup-Id"] = "wu-123"
    message.set_content(body)
    return message


def _client(server: SandboxServer, **kwargs: object) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=server.port,
        local_hostname=CLIENT_NAME,
        start_tls=False,
        timeout=10,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SandboxServer]:
    with SandboxServer(tmp_path / "mail", port=0, authenticator=_authenticator) as running:
        yield running


def test_delivers_one_copy_per_recipient_with_headers_and_body_intact(
    server: SandboxServer,
) -> None:
    recipients = ["Alice@Example.test", "bob@example.test"]
    body = "Line one.\n.Line starting with a dot.\n\nÜnïcode line.\n"

    async def send() -> bool:
        async with _client(server) as client:
            await client.ehlo()
            offered = client.supports_extension("starttls")
            await client.login(USER, PASSWORD)
            await client.send_message(_message(recipients, body=body))
            return offered

    offered_starttls = asyncio.run(send())

    assert not offered_starttls  # no tls_context given
    assert server.delivered_count == 2
    for address in recipients:
        [stored] = read_maildir(server.maildir_root, address)
        assert stored["Message-ID"] == "<Hello@warmup.test>"
        assert stored["Subject"] == "Hello"
        assert stored["From"] == USER
        assert stored["To"] == ", ".join(recipients)
        assert stored["X-Warmup-Id"] == "wu-123"
        assert stored["X-Sandbox-Delivered-To"] == address
        assert stored["Return-Path"] == f"<{USER}>"
        assert f"for <{address}>" in stored["Received"]
        assert "ESMTPA" in stored["Received"].split()
        assert stored.get_content() == body
        folder = server.maildir_root / address.lower()
        assert len(os.listdir(folder / "new")) == 1
        assert os.listdir(folder / "tmp") == []
    assert read_maildir(server.maildir_root, "nobody@example.test") == []


@pytest.mark.parametrize("mechanism", ["plain", "login"])
def test_wrong_password_gets_535_and_right_one_authenticates(
    server: SandboxServer, mechanism: str
) -> None:
    async def attempt() -> tuple[int, int]:
        async with _client(server) as client:
            await client.ehlo()
            authenticate = getattr(client, f"auth_{mechanism}")
            with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
                await authenticate(USER, "wrong")
            accepted = await authenticate(USER, PASSWORD)
            return refused.value.code, accepted.code

    refused_code, accepted_code = asyncio.run(attempt())

    assert refused_code == 535
    assert accepted_code == 235


def test_mail_before_auth_gets_530(server: SandboxServer) -> None:
    async def attempt() -> int:
        async with _client(server) as client:
            with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
                await client.mail(USER)
            return refused.value.code

    assert asyncio.run(attempt()) == 530
    assert server.delivered_count == 0


def test_mail_without_auth_is_accepted_when_auth_is_not_required(tmp_path: Path) -> None:
    with SandboxServer(tmp_path, port=0, require_auth=False) as open_server:

        async def send() -> None:
            async with _client(open_server) as client:
                await client.send_message(_message(["carol@example.test"]))

        asyncio.run(send())

        [stored] = read_maildir(tmp_path, "carol@example.test")
        assert "ESMTP" in stored["Received"].split()  # neither TLS nor AUTH


@pytest.mark.parametrize("bad", ["no-at-sign", "a/b@example.test", "a@-bad-.test"])
def test_malformed_recipient_is_refused_with_553(server: SandboxServer, bad: str) -> None:
    async def attempt() -> int:
        async with _client(server) as client:
            await client.login(USER, PASSWORD)
            await client.mail(USER)
            with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
                await client.rcpt(bad)
            return refused.value.code

    assert asyncio.run(attempt()) == 553
    assert list(server.maildir_root.iterdir()) == []


def test_port_zero_picks_distinct_free_ports(tmp_path: Path) -> None:
    with (
        SandboxServer(tmp_path / "a", port=0) as first,
        SandboxServer(tmp_path / "b", port=0) as second,
    ):
        assert first.port != 0
        assert second.port not in (0, first.port)
        for running in (first, second):
            with socket.create_connection(("127.0.0.1", running.port), timeout=5) as conn:
                assert conn.recv(1024).startswith(b"220 ")


def test_starttls_with_self_signed_certificate(tmp_path: Path) -> None:
    cert_path, key_path = self_signed_cert(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_path, key_path)
    client_context = ssl.create_default_context(cafile=str(cert_path))
    root = tmp_path / "mail"

    with SandboxServer(root, port=0, tls_context=server_context) as tls_server:

        async def send() -> tuple[bool, bool]:
            async with _client(tls_server, tls_context=client_context) as client:
                await client.ehlo()
                offered = client.supports_extension("starttls")
                await client.starttls()
                encrypted = client.get_transport_info("sslcontext") is not None
                await client.login(USER, PASSWORD)
                await client.send_message(_message(["dave@example.test"]))
                return offered, encrypted

        offered, encrypted = asyncio.run(send())

    assert offered
    assert encrypted
    [stored] = read_maildir(root, "dave@example.test")
    assert "ESMTPSA" in stored["Received"].split()


def test_two_hundred_concurrent_sends_all_land(server: SandboxServer) -> None:
    recipients = [f"inbox{i}@example.test" for i in range(10)]

    async def send_all() -> None:
        gate = asyncio.Semaphore(20)

        async def send_one(i: int) -> None:
            async with gate:
                await aiosmtplib.send(
                    _message([recipients[i % len(recipients)]], subject=f"Message {i}"),
                    hostname="127.0.0.1",
                    port=server.port,
                    local_hostname=CLIENT_NAME,
                    username=USER,
                    password=PASSWORD,
                    start_tls=False,
                    timeout=10,
                )

        await asyncio.gather(*(send_one(i) for i in range(200)))

    asyncio.run(send_all())

    assert server.delivered_count == 200
    files = [path for path in server.maildir_root.glob("*/new/*") if path.is_file()]
    assert len(files) == 200
    subjects = {
        message["Subject"]
        for address in recipients
        for message in read_maildir(server.maildir_root, address)
    }
    assert subjects == {f"Message {i}" for i in range(200)}


def test_run_forever_serves_until_sigterm(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = textwrap.dedent(
        f"""
        import logging, sys
        from pathlib import Path
        from warmup_dagster.sandbox import SandboxServer, run_forever
        logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        run_forever(SandboxServer(Path({str(tmp_path)!r}), port={port}))
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        assert f"127.0.0.1:{port}" in first_line
        assert str(tmp_path) in first_line

        async def send() -> None:
            await aiosmtplib.send(
                _message(["erin@example.test"]),
                hostname="127.0.0.1",
                port=port,
                local_hostname=CLIENT_NAME,
                username="anyone",
                password="anything",
                start_tls=False,
                timeout=10,
            )

        asyncio.run(send())
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert len(read_maildir(tmp_path, "erin@example.test")) == 1


def test_accept_any_needs_both_parts() -> None:
    assert accept_any("u", "p")
    assert not accept_any("", "p")
    assert not accept_any("u", "")


def test_the_sandbox_maildirs_served_over_imap_are_engaged_like_a_provider_s(tmp_path: Path):
    """`warmup sandbox --imap-port` (the demo's receiving side): Dovecot serves the Maildirs
    the sandbox delivers into, any password logs in, and an engagement pass files the mail."""
    import tempfile

    from imapclient import IMAPClient

    from warmup_dagster.core.content import job_message_id, token_key
    from warmup_dagster.db.models import Placement, Security
    from warmup_dagster.engagement.imap import Item, run_pass
    from warmup_dagster.local_imap import LocalDovecot
    from warmup_dagster.sending.messages import Account
    from warmup_dagster.sending.smtp import tls_context

    # Dovecot's mail user must reach the folder: not under pytest's private tmp_path.
    root = Path(tempfile.mkdtemp(prefix="warmup-sandbox-")) / "mail"
    root.mkdir(mode=0o777)
    root.parent.chmod(0o755)
    key = token_key("sandbox-test-secret-key")
    message_id, _ = job_message_id(key, 1, 2, "warmup.test")
    try:
        with (
            LocalDovecot(None, mail_root=root) as imap_server,
            SandboxServer(root, port=0, authenticator=_authenticator, shared=True) as sandbox,
        ):
            message = _message(["Rcpt@Demo.test"])
            message.replace_header("Message-ID", message_id)

            async def send() -> None:
                async with _client(sandbox) as client:
                    await client.login(USER, PASSWORD)
                    await client.send_message(message)

            asyncio.run(send())
            placed: dict[int, Placement] = {}
            outcome = run_pass(
                Account(1, "127.0.0.1", imap_server.port, Security.NONE, "rcpt@demo.test", "x"),
                [Item(7, message_id, Placement.PENDING, flag=True)],
                [],
                token_key=key,
                folder="Warmup",
                tls=tls_context(),
                timeout=10,
                place=placed.update,
            )
            assert outcome.error is None and outcome.paused is None
            assert placed == {7: Placement.INBOX} and outcome.handled[7].filed
            client = IMAPClient("127.0.0.1", imap_server.port, ssl=False, timeout=10)
            client.login("rcpt@demo.test", "any password")
            client.select_folder("Warmup")
            [uid] = client.search(["HEADER", "Message-ID", message_id])
            assert set(client.get_flags([uid])[uid]) >= {b"\\Seen", b"\\Flagged"}
            client.select_folder("INBOX")
            assert client.search("ALL") == []
            client.logout()
    finally:
        import shutil

        shutil.rmtree(root.parent, ignore_errors=True)
