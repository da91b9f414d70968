"""The SMTP transport against a real aiosmtpd server on loopback, in all three security modes."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosmtplib
import pytest

from warmup_dagster.core.delivery import Outcome
from warmup_dagster.db.models import Security
from warmup_dagster.sending.smtp import (
    CONNECTION_LOST,
    Account,
    Delivery,
    Outgoing,
    send_group,
    tls_context,
)
from warmup_dagster.testing.certificates import self_signed_cert
from warmup_dagster.testing.smtp_server import FaultySmtpServer, TlsMode, closed_port

T = TypeVar("T")

USER = "sender@warmup.test"
PASSWORD = "Pw-7f3a-very-secret"
CLIENT_NAME = "client.test"  # fixed EHLO name: spares the client a getfqdn() lookup
DATE = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
TIMEOUT = 5.0
MODES: list[tuple[TlsMode, Security]] = [
    ("none", Security.NONE),
    ("starttls", Security.STARTTLS),
    ("ssl", Security.SSL),
]
MODE_IDS = [mode for mode, _ in MODES]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def outgoing(job_id: int, local: str = "ok", **fields: Any) -> Outgoing:
    values: dict[str, Any] = {
        "sender": USER,
        "recipient": f"{local}@inbox.test",
        "message_id": f"<job{job_id}.a1b2c3@warmup.test>",
        "subject": f"Quarterly notes {job_id}",
        "body": f"Hello number {job_id},\nthanks for the notes. Grüße\n",
    }
    values.update(fields)
    return Outgoing(job_id=job_id, **values)


def account(
    server: FaultySmtpServer, security: Security, password: str = PASSWORD, host: str = ""
) -> Account:
    return Account(
        mailbox_id=7,
        host=host or server.host,
        port=server.port,
        security=security,
        username=USER,
        password=password,
    )


def send(
    acct: Account,
    messages: list[Outgoing],
    tls: ssl.SSLContext,
    timeout: float = TIMEOUT,
) -> list[Delivery]:
    return run(
        send_group(acct, messages, date=DATE, timeout=timeout, tls=tls, local_hostname=CLIENT_NAME)
    )


def outcomes(deliveries: list[Delivery]) -> list[tuple[int, Outcome, int | None]]:
    return [(d.job_id, d.outcome, d.code) for d in deliveries]


@pytest.fixture(scope="session")
def cert_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def trusted(cert_pair: tuple[Path, Path]) -> ssl.SSLContext:
    return tls_context(ca_file=str(cert_pair[0]))


@pytest.fixture(params=MODES, ids=MODE_IDS)
def mode(request: pytest.FixtureRequest) -> tuple[TlsMode, Security]:
    return request.param


@pytest.fixture
def server(
    mode: tuple[TlsMode, Security], cert_pair: tuple[Path, Path]
) -> Iterator[FaultySmtpServer]:
    cert, key = cert_pair
    with FaultySmtpServer(users={USER: PASSWORD}, tls=mode[0], cert=cert, key=key) as running:
        yield running


@pytest.fixture
def starttls_server(cert_pair: tuple[Path, Path]) -> Iterator[FaultySmtpServer]:
    cert, key = cert_pair
    with FaultySmtpServer(
        users={USER: PASSWORD}, tls="starttls", cert=cert, key=key, slow_seconds=3.0
    ) as running:
        yield running


# --- sending over a real server ----------------------------------------------------------


def test_a_group_is_sent_over_one_connection_with_the_planned_headers(
    server: FaultySmtpServer, mode: tuple[TlsMode, Security], trusted: ssl.SSLContext
) -> None:
    reply = outgoing(
        3,
        subject="Re: Quarterly notes 1",
        in_reply_to="<job1.a1b2c3@warmup.test>",
        references="<job0.a1b2c3@warmup.test> <job1.a1b2c3@warmup.test>",
    )
    messages = [outgoing(1), outgoing(2, "second"), reply]

    deliveries = send(account(server, mode[1]), messages, trusted)

    assert outcomes(deliveries) == [
        (1, Outcome.SENT, 250),
        (2, Outcome.SENT, 250),
        (3, Outcome.SENT, 250),
    ]
    assert all(d.error is None and d.reply for d in deliveries)
    assert server.sessions == 1
    assert server.transactions == 3
    received = server.received
    assert [r.encrypted for r in received] == [mode[0] != "none"] * 3
    assert [(r.mail_from, r.rcpt_tos) for r in received] == [
        (USER, (m.recipient,)) for m in messages
    ]
    for sent, got in zip(messages, received, strict=True):
        parsed = got.message
        assert parsed["Message-ID"] == sent.message_id
        assert parsed["Subject"] == sent.subject
        assert parsed["From"] == USER
        assert parsed["To"] == sent.recipient
        assert parsed["Date"].datetime == DATE
        assert parsed.get_content().replace("\r\n", "\n") == sent.body  # CRLF on the wire
        assert parsed.get("In-Reply-To") == sent.in_reply_to
        assert parsed.get("References") == sent.references


def test_a_failing_message_does_not_stop_the_others(
    server: FaultySmtpServer, mode: tuple[TlsMode, Security], trusted: ssl.SSLContext
) -> None:
    messages = [outgoing(1), outgoing(2, "code550"), outgoing(3), outgoing(4, "code451")]
    messages.append(outgoing(5))

    deliveries = send(account(server, mode[1]), messages, trusted)

    assert outcomes(deliveries) == [
        (1, Outcome.SENT, 250),
        (2, Outcome.FAILED, 550),
        (3, Outcome.SENT, 250),
        (4, Outcome.RETRY, 451),
        (5, Outcome.SENT, 250),
    ]
    assert deliveries[1].reply == "5.1.1 No such user"
    assert deliveries[1].error is not None and "550 5.1.1" in deliveries[1].error
    assert deliveries[3].error is not None and "451 4.3.0" in deliveries[3].error
    assert server.sessions == 1
    assert [r.rcpt_tos for r in server.received] == [
        ("ok@inbox.test",),
        ("ok@inbox.test",),
        ("ok@inbox.test",),
    ]


def test_421_is_retried_and_the_rest_of_the_group_too(
    starttls_server: FaultySmtpServer, trusted: ssl.SSLContext
) -> None:
    deliveries = send(
        account(starttls_server, Security.STARTTLS),
        [outgoing(1), outgoing(2, "code421"), outgoing(3)],
        trusted,
    )

    assert outcomes(deliveries) == [
        (1, Outcome.SENT, 250),
        (2, Outcome.RETRY, 421),
        (3, Outcome.RETRY, None),
    ]
    assert deliveries[2].error == CONNECTION_LOST
    assert starttls_server.transactions == 1


def test_each_accepted_message_is_reported_before_the_next_one_goes(
    starttls_server: FaultySmtpServer, trusted: ssl.SSLContext
) -> None:
    """`delivered` hears of each 250 while the session goes on, so the sender can write it
    before a kill could lose it; refused messages wait for the session's end."""
    seen: list[tuple[int, int]] = []  # (job reported, messages the server had by then)

    def delivered(d: Delivery) -> None:
        seen.append((d.job_id, len(starttls_server.received)))

    messages = [outgoing(1), outgoing(2, "code550"), outgoing(3), outgoing(4)]
    deliveries = run(
        send_group(
            account(starttls_server, Security.STARTTLS),
            messages,
            date=DATE,
            timeout=TIMEOUT,
            tls=trusted,
            local_hostname=CLIENT_NAME,
            delivered=delivered,
        )
    )

    assert outcomes(deliveries) == [
        (1, Outcome.SENT, 250),
        (2, Outcome.FAILED, 550),
        (3, Outcome.SENT, 250),
        (4, Outcome.SENT, 250),
    ]
    # job 1 was reported when the server held only it: before job 3 was handed over
    assert seen == [(1, 1), (3, 2), (4, 3)]


def test_wrong_password_pauses_every_message_and_delivers_nothing(
    server: FaultySmtpServer, mode: tuple[TlsMode, Security], trusted: ssl.SSLContext
) -> None:
    deliveries = send(
        account(server, mode[1], password="wrong-" + PASSWORD),
        [outgoing(1), outgoing(2)],
        trusted,
    )

    assert outcomes(deliveries) == [(1, Outcome.PAUSE, 535), (2, Outcome.PAUSE, 535)]
    assert all(d.error is not None and "535" in d.error for d in deliveries)
    assert all(PASSWORD not in (d.error or "") for d in deliveries)
    assert server.transactions == 0
    # One refused login per group, not one per mechanism: providers lock accounts over them.
    assert server.logins_refused == 1


def test_a_connection_dropped_mid_data_is_retried(
    starttls_server: FaultySmtpServer, trusted: ssl.SSLContext
) -> None:
    deliveries = send(
        account(starttls_server, Security.STARTTLS), [outgoing(1, "drop"), outgoing(2)], trusted
    )

    assert outcomes(deliveries) == [(1, Outcome.RETRY, None), (2, Outcome.RETRY, None)]
    assert deliveries[0].error is not None
    assert deliveries[0].error.startswith("connection dropped")
    assert deliveries[1].error == CONNECTION_LOST
    assert starttls_server.drops == 1
    assert starttls_server.transactions == 0


def test_a_server_slower_than_the_timeout_is_retried(
    starttls_server: FaultySmtpServer, trusted: ssl.SSLContext
) -> None:
    started = time.monotonic()
    deliveries = send(
        account(starttls_server, Security.STARTTLS),
        [outgoing(1, "slow"), outgoing(2)],
        trusted,
        timeout=1.0,
    )
    elapsed = time.monotonic() - started

    assert outcomes(deliveries) == [(1, Outcome.RETRY, None), (2, Outcome.RETRY, None)]
    assert deliveries[0].error is not None
    assert deliveries[0].error.startswith("timed out after 1.0 s")
    assert deliveries[1].error == CONNECTION_LOST
    assert 1.0 <= elapsed < 2.5  # gave up at the timeout, not when the server answered (3 s)


def test_a_refused_connection_is_retried(trusted: ssl.SSLContext) -> None:
    acct = Account(7, "127.0.0.1", closed_port(), Security.STARTTLS, USER, PASSWORD)

    deliveries = send(acct, [outgoing(1), outgoing(2)], trusted)

    assert outcomes(deliveries) == [(1, Outcome.RETRY, None), (2, Outcome.RETRY, None)]
    assert all("Connection refused" in (d.error or "") for d in deliveries)


@pytest.mark.parametrize("tls_mode", ["starttls", "ssl"])
def test_an_untrusted_certificate_pauses_and_delivers_nothing(
    tls_mode: TlsMode, cert_pair: tuple[Path, Path]
) -> None:
    cert, key = cert_pair
    security = Security.STARTTLS if tls_mode == "starttls" else Security.SSL
    with FaultySmtpServer(users={USER: PASSWORD}, tls=tls_mode, cert=cert, key=key) as server:
        # The system trust store alone: the self-signed certificate is unknown to it.
        deliveries = send(account(server, security), [outgoing(1), outgoing(2)], tls_context())

        assert outcomes(deliveries) == [(1, Outcome.PAUSE, None), (2, Outcome.PAUSE, None)]
        error = deliveries[0].error or ""
        assert "certificate of 127.0.0.1 failed verification" in error
        assert server.transactions == 0


def test_the_certificate_must_name_the_host(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path, hostname="other.test")
    with FaultySmtpServer(users={USER: PASSWORD}, tls="ssl", cert=cert, key=key) as server:
        # Trusted, but issued for other.test (and 127.0.0.1), not for "localhost".
        acct = account(server, Security.SSL, host="localhost")
        deliveries = send(acct, [outgoing(1)], tls_context(ca_file=str(cert)))

        assert outcomes(deliveries) == [(1, Outcome.PAUSE, None)]
        error = deliveries[0].error or ""
        assert "certificate of localhost failed verification: Hostname mismatch" in error
        assert server.transactions == 0

        # The same certificate and context are fine for a name it does carry.
        by_address = account(server, Security.SSL, host="127.0.0.1")
        assert outcomes(send(by_address, [outgoing(2)], tls_context(ca_file=str(cert)))) == [
            (2, Outcome.SENT, 250)
        ]


def test_starttls_that_is_not_offered_pauses_instead_of_sending_in_plaintext(
    trusted: ssl.SSLContext,
) -> None:
    with FaultySmtpServer(users={USER: PASSWORD}, tls="none") as server:
        deliveries = send(account(server, Security.STARTTLS), [outgoing(1)], trusted)

        assert outcomes(deliveries) == [(1, Outcome.PAUSE, None)]
        assert "does not offer STARTTLS" in (deliveries[0].error or "")
        assert server.transactions == 0


def test_plaintext_to_a_remote_host_pauses_without_connecting(
    trusted: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_connect(*args: object, **kwargs: object) -> None:
        raise AssertionError("send_group tried to connect")

    monkeypatch.setattr(aiosmtplib.SMTP, "connect", no_connect)
    acct = Account(7, "mail.example.com", 25, Security.NONE, USER, PASSWORD)

    started = time.monotonic()
    deliveries = send(acct, [outgoing(1), outgoing(2)], trusted)

    assert time.monotonic() - started < 0.5
    assert outcomes(deliveries) == [(1, Outcome.PAUSE, None), (2, Outcome.PAUSE, None)]
    assert [d.error for d in deliveries] == [
        "smtp_security none is only allowed for loopback hosts, not mail.example.com"
    ] * 2


def test_a_server_without_auth_is_used_without_logging_in(trusted: ssl.SSLContext) -> None:
    with FaultySmtpServer(tls="none") as server:
        deliveries = send(account(server, Security.NONE), [outgoing(1)], trusted)

        assert outcomes(deliveries) == [(1, Outcome.SENT, 250)]
        assert server.transactions == 1


def test_an_unbuildable_message_fails_alone(
    starttls_server: FaultySmtpServer, trusted: ssl.SSLContext
) -> None:
    messages = [outgoing(1, subject="Broken\r\nBcc: victim@inbox.test"), outgoing(2)]

    deliveries = send(account(starttls_server, Security.STARTTLS), messages, trusted)

    assert outcomes(deliveries) == [(1, Outcome.FAILED, None), (2, Outcome.SENT, 250)]
    assert starttls_server.transactions == 1


def test_an_empty_group_sends_nothing(trusted: ssl.SSLContext) -> None:
    acct = Account(7, "127.0.0.1", closed_port(), Security.NONE, USER, PASSWORD)

    assert send(acct, [], trusted) == []


def test_the_password_appears_in_no_repr_and_no_error(
    starttls_server: FaultySmtpServer, trusted: ssl.SSLContext
) -> None:
    acct = account(starttls_server, Security.STARTTLS)
    assert PASSWORD not in repr(acct)
    assert PASSWORD not in str(acct)

    errors = [
        d.error or ""
        for acct_, tls in [
            (acct, trusted),
            (account(starttls_server, Security.STARTTLS, password=PASSWORD + "x"), trusted),
            (acct, tls_context()),
            (account(starttls_server, Security.NONE, host="mail.example.com"), trusted),
        ]
        for d in send(acct_, [outgoing(1, "code550"), outgoing(2, "drop")], tls)
    ]

    assert len([e for e in errors if e]) == 8
    assert all(PASSWORD not in error for error in errors)


def test_a_naive_date_is_refused(trusted: ssl.SSLContext) -> None:
    acct = Account(7, "127.0.0.1", closed_port(), Security.NONE, USER, PASSWORD)

    with pytest.raises(ValueError, match="timezone"):
        run(send_group(acct, [outgoing(1)], date=datetime(2026, 3, 2), timeout=1, tls=trusted))
