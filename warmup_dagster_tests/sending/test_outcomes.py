"""What SMTP trouble means: loopback and plaintext rules, reply codes, scrubbed texts."""

import aiosmtplib
import pytest

from warmup_dagster.core.delivery import Outcome
from warmup_dagster.db.models import Security
from warmup_dagster.sending.messages import Account, Outgoing
from warmup_dagster.sending.outcomes import (
    Failure,
    deliveries_for,
    failure_from,
    is_loopback,
    login_refused,
    reply_code,
    security_refusal,
)

USER = "sender@warmup.test"
PASSWORD = "Pw-7f3a-very-secret"
ACCOUNT = Account(7, "mail.example.com", 587, Security.STARTTLS, USER, PASSWORD)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("128.0.0.1", False),
        ("mail.example.com", False),
        ("localhost.example.com", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


@pytest.mark.parametrize(
    ("security", "host", "refused"),
    [
        (Security.NONE, "mail.example.com", True),
        (Security.NONE, "127.0.0.1", False),
        (Security.NONE, "localhost", False),
        (Security.STARTTLS, "mail.example.com", False),
        (Security.SSL, "mail.example.com", False),
    ],
)
def test_security_refusal(security: Security, host: str, refused: bool) -> None:
    reason = security_refusal(Account(1, host, 25, security, USER, PASSWORD))

    assert (reason is not None) is refused
    if refused:
        assert reason == f"smtp_security none is only allowed for loopback hosts, not {host}"


def test_reply_code_keeps_real_codes_and_drops_aiosmtplibs_no_reply() -> None:
    assert reply_code(250) == 250
    assert reply_code(599) == 599
    assert reply_code(-1) is None
    assert reply_code(99) is None


@pytest.mark.parametrize(
    ("exc", "outcome", "code", "error"),
    [
        (
            aiosmtplib.SMTPRecipientRefused(550, "5.1.1 No such user", "x@inbox.test"),
            Outcome.FAILED,
            550,
            "recipient x@inbox.test refused: 550 5.1.1 No such user",
        ),
        (
            aiosmtplib.SMTPDataError(451, "4.3.0 Try later"),
            Outcome.RETRY,
            451,
            "message refused: 451 4.3.0 Try later",
        ),
        (
            aiosmtplib.SMTPResponseException(-1, "garbage"),
            Outcome.RETRY,
            None,
            "unreadable reply from mail.example.com:587: (-1, 'garbage')",
        ),
        (
            TimeoutError(),
            Outcome.RETRY,
            None,
            "timed out after 5.0 s talking to mail.example.com:587",
        ),
        (
            ConnectionResetError(104, "reset"),
            Outcome.RETRY,
            None,
            "connection dropped: Connection reset by peer",
        ),
    ],
)
def test_failure_from_names_what_went_wrong(
    exc: BaseException, outcome: Outcome, code: int | None, error: str
) -> None:
    failure = failure_from(exc, ACCOUNT, 5.0)

    assert (failure.outcome, failure.code, failure.error) == (outcome, code, error)


def test_a_refused_login_pauses_on_wrong_credentials_and_retries_a_temporary_refusal() -> None:
    wrong = login_refused(aiosmtplib.SMTPAuthenticationError(535, "5.7.8 bad"), ACCOUNT)
    busy = login_refused(aiosmtplib.SMTPAuthenticationError(454, "4.7.0 later"), ACCOUNT)

    assert (wrong.outcome, wrong.code) == (Outcome.PAUSE, 535)
    assert wrong.error == f"login as {USER} rejected: 535 5.7.8 bad"
    assert (busy.outcome, busy.code) == (Outcome.RETRY, 454)


def test_deliveries_never_carry_the_password() -> None:
    echoed = Failure(Outcome.PAUSE, 535, f"bad password {PASSWORD}", f"rejected {PASSWORD}")
    messages = [Outgoing(job, USER, "ok@inbox.test", f"<{job}@w.test>", "s", "b") for job in (1, 2)]

    deliveries = deliveries_for(messages, echoed, ACCOUNT)

    assert [d.job_id for d in deliveries] == [1, 2]
    for delivery in deliveries:
        assert PASSWORD not in delivery.reply + (delivery.error or "")
        assert delivery.reply == "bad password ********"
        assert delivery.error == "rejected ********"
