"""The engagement tests' servers: Dovecot with test users, an SMTP server delivering into it,
and a pool of mailboxes whose SMTP and IMAP sides are those servers."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from warmup_dagster.db.models import Security
from warmup_dagster.settings import Settings, load_settings
from warmup_dagster.testing.certificates import self_signed_cert
from warmup_dagster.testing.imap_server import DeliveringSmtp, DovecotMissing, DovecotServer
from warmup_dagster_tests.conftest import MONDAY_5AM
from warmup_dagster_tests.factories import add_mailbox, add_user

PASSWORD = "imap-pw"


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


def started_dovecot(cert, **kwargs) -> DovecotServer:
    """Dovecot with the test certificate, started; a missing Dovecot fails the test loudly."""
    try:
        server = DovecotServer(cert=cert[0], key=cert[1], **kwargs)
        server.start()
    except DovecotMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    return server


@pytest.fixture
def dovecot(cert) -> Iterator[DovecotServer]:
    server = started_dovecot(cert)
    yield server
    server.stop()


@pytest.fixture
def smtp(dovecot, cert) -> Iterator[DeliveringSmtp]:
    """Delivers every other message it accepts to Junk (in order of arrival)."""
    turn = itertools.count()
    with DeliveringSmtp(
        dovecot,
        rule=lambda message_id: next(turn) % 2 == 0,
        users={},
        tls="starttls",
        cert=cert[0],
        key=cert[1],
    ) as server:
        yield server


def engage_settings(cert, **env: str) -> Settings:
    values = {
        "WARMUP_SMTP_CA_FILE": str(cert[0]),
        "WARMUP_IMAP_CA_FILE": str(cert[0]),
        "WARMUP_SMTP_TIMEOUT_SECONDS": "5",
        "WARMUP_IMAP_TIMEOUT_SECONDS": "5",
        "WARMUP_SEND_LEASE_SECONDS": "3600",
        "WARMUP_SEND_WINDOW_START_HOUR": "6",
        "WARMUP_SEND_WINDOW_END_HOUR": "12",
        "WARMUP_DAILY_VARIANCE": "0",
        "WARMUP_ENGAGE_LOOK_DELAY_MIN": "1",
        "WARMUP_ENGAGE_LOOK_DELAY_MAX": "5",
        "WARMUP_ENGAGE_REPLY_DELAY_MIN": "5",
        "WARMUP_ENGAGE_REPLY_DELAY_MAX": "30",
        "WARMUP_ENGAGE_NOT_FOUND_MINUTES": "120",
        "WARMUP_ENGAGE_RECHECK_MINUTES": "10",
        "WARMUP_ENGAGE_FLAG_RATE": "0.5",
        "WARMUP_ENGAGE_MAX_TURNS": "2",
        "WARMUP_HEALTH_MIN_MESSAGES": "2",
    }
    values.update({f"WARMUP_{k.upper()}": v for k, v in env.items()})
    return load_settings(values)


@dataclass(frozen=True)
class Pool:
    ids: dict[str, int]  # mailbox id by address

    @property
    def emails(self) -> list[str]:
        return list(self.ids)


def pool(engine, cipher, smtp, dovecot, n: int = 4, **overrides) -> Pool:
    """`n` mailboxes of two owners, sending through `smtp`, reading over IMAPS from `dovecot`."""
    ids = {}
    with Session(engine) as session, session.begin():
        owners = [add_user(session, f"owner{u}", MONDAY_5AM, plan="pro") for u in range(2)]
        for k in range(n):
            email = f"person{k}@d{k}.example"
            values = dict(
                smtp_host="localhost",
                smtp_port=smtp.port,
                smtp_security=Security.STARTTLS,
                imap_host="localhost",
                imap_port=dovecot.ssl_port,
                imap_security=Security.SSL,
                imap_password_enc=cipher.encrypt(PASSWORD),
                reply_rate=1.0,
                ramp_start=2,
            )
            values.update(overrides)
            box = add_mailbox(session, owners[k % 2], email, MONDAY_5AM, cipher, **values)
            ids[email] = box.id
            dovecot.add_user(email, PASSWORD)
            smtp.users[email] = "pw"
    return Pool(ids)
