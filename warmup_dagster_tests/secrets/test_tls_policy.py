"""The TLS policy against real servers, on both sides: certificates are verified by default,
and a password goes over a connection without TLS only to a loopback host.

A loopback server can't show the second half, so the servers here also listen on this
machine's own non-loopback address, which is as remote as the client's checks can tell.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from datetime import UTC, datetime

import pytest

from warmup_dagster.db.models import Security
from warmup_dagster.engagement.imap import run_pass
from warmup_dagster.sending.messages import Account
from warmup_dagster.sending.outcomes import is_loopback
from warmup_dagster.sending.smtp import Outgoing, send_group, tls_context
from warmup_dagster.testing.certificates import self_signed_cert
from warmup_dagster.testing.imap_server import DovecotMissing, DovecotServer
from warmup_dagster.testing.smtp_server import FaultySmtpServer

USER = "owner@tls.example"
PASSWORD = "tls-policy-password"
DATE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def this_machines_address() -> str:
    """This machine's address on its default route: not loopback, but served locally."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("203.0.113.1", 9))  # a UDP connect only picks a route: nothing is sent
            address = probe.getsockname()[0]
        except OSError as exc:
            pytest.fail(f"these tests need a non-loopback IPv4 address: {exc}", pytrace=False)
    if is_loopback(address):
        pytest.fail(f"these tests need a non-loopback IPv4 address, not {address}")
    return address


@pytest.fixture(scope="module")
def lan() -> str:
    return this_machines_address()


@pytest.fixture(scope="module")
def cert(tmp_path_factory, lan):
    return self_signed_cert(tmp_path_factory.mktemp("tls"), addresses=(lan,))


def _send(server: FaultySmtpServer, security: Security, tls: ssl.SSLContext, host: str = ""):
    account = Account(7, host or server.host, server.port, security, USER, PASSWORD)
    message = Outgoing(1, USER, "peer@inbox.example", "<m1.x@tls.example>", "Notes", "Hello\n")
    return asyncio.run(send_group(account, [message], date=DATE, timeout=10, tls=tls))[0]


@pytest.mark.parametrize("tls_mode", ["starttls", "ssl"])
def test_smtp_to_another_host_logs_in_over_verified_tls_only(cert, lan, tls_mode):
    security = Security.STARTTLS if tls_mode == "starttls" else Security.SSL
    kwargs = dict(users={USER: PASSWORD}, tls=tls_mode, cert=cert[0], key=cert[1], host=lan)
    with FaultySmtpServer(**kwargs) as server:
        sent = _send(server, security, tls_context(str(cert[0])))
        assert (sent.outcome.name, sent.code) == ("SENT", 250)
        assert [r.encrypted for r in server.received] == [True]
        # the same server by default trust (the system's CAs): refused before any login
        untrusted = _send(server, security, tls_context())
        assert untrusted.outcome.name == "PAUSE"
        assert f"the TLS certificate of {lan} failed verification" in untrusted.error
        assert server.transactions == 1 and server.logins_refused == 0


def test_smtp_without_tls_goes_to_loopback_only(cert, lan):
    with FaultySmtpServer(users={USER: PASSWORD}, tls="none", host=lan) as remote:
        refused = _send(remote, Security.NONE, tls_context())
        assert refused.outcome.name == "PAUSE"
        assert refused.error == f"smtp_security none is only allowed for loopback hosts, not {lan}"
        assert remote.sessions == 0  # never connected: the password never left
    with FaultySmtpServer(users={USER: PASSWORD}, tls="none") as local:
        for host in ("127.0.0.1", "localhost"):
            assert _send(local, Security.NONE, tls_context(), host=host).outcome.name == "SENT"
        assert [r.encrypted for r in local.received] == [False] * 2


@pytest.fixture(scope="module")
def dovecot(cert, lan):
    try:
        server = DovecotServer({USER: PASSWORD}, cert=cert[0], key=cert[1], host=lan)
        server.start()
    except DovecotMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


def _pass(host: str, port: int, security: Security, tls: ssl.SSLContext):
    account = Account(7, host, port, security, USER, PASSWORD)
    return run_pass(
        account, [], [], token_key=b"k" * 32, folder="Warmup", tls=tls, timeout=10, place=print
    )


@pytest.mark.parametrize("security", [Security.STARTTLS, Security.SSL])
def test_imap_to_another_host_logs_in_over_verified_tls_only(dovecot, cert, lan, security):
    port = dovecot.ssl_port if security is Security.SSL else dovecot.port
    ok = _pass(lan, port, security, tls_context(str(cert[0])))
    assert (ok.paused, ok.error) == (None, None)
    untrusted = _pass(lan, port, security, tls_context())
    assert untrusted.paused.startswith(f"certificate of {lan}:{port} not trusted")


def test_imap_without_tls_goes_to_loopback_only(dovecot, lan):
    refused = _pass(lan, dovecot.port, Security.NONE, tls_context())
    assert refused.paused == (
        f"imap_security none to {lan}:{dovecot.port}: plaintext IMAP is allowed to loopback only"
    )
    with DovecotServer({USER: PASSWORD}) as local:
        for host in ("127.0.0.1", "localhost"):
            ok = _pass(host, local.port, Security.NONE, tls_context())
            assert (ok.paused, ok.error) == (None, None)
