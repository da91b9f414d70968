"""The sender tests' TLS certificate and SMTP server, and a day sent by the real Sender."""

import pytest

from warmup_dagster_tests.fill.days import SentDay, send_a_day
from warmup_dagster_tests.sending.test_sender import cert, server

__all__ = ["cert", "server"]


@pytest.fixture
def sent_day(engine, cipher, server, cert) -> SentDay:
    return send_a_day(engine, cipher, server, cert)
