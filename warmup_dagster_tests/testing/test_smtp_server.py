"""The test SMTP server stamps each message with its arrival on the clock it is given."""

import smtplib
from datetime import UTC, datetime
from email.message import EmailMessage

from warmup_dagster.clock import FixedClock, RealClock
from warmup_dagster.testing.smtp_server import FaultySmtpServer


def _send(port: int, number: int) -> None:
    message = EmailMessage()
    message["From"], message["To"] = "a@sender.example", "b@peer.example"
    message["Subject"], message["Message-ID"] = "hello", f"<m{number}@sender.example>"
    message.set_content("a short body\n")
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.send_message(message)


def test_arrivals_are_read_from_the_clock_the_server_was_given():
    clock = FixedClock(datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    with FaultySmtpServer(clock=clock) as server:
        _send(server.port, 1)
        clock.advance(minutes=7)
        _send(server.port, 2)
        received = server.received
    ids = [r.message["Message-ID"] for r in received]
    assert ids == ["<m1@sender.example>", "<m2@sender.example>"]
    assert [r.arrived_at for r in received] == [
        datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
        datetime(2026, 3, 2, 9, 37, tzinfo=UTC),
    ]


def test_without_a_clock_arrivals_are_real_time():
    real = RealClock()
    with FaultySmtpServer() as server:
        before = real.now()
        _send(server.port, 1)
        after = real.now()
        (received,) = server.received
    assert before <= received.arrived_at <= after
    assert received.arrived_at.tzinfo is not None
