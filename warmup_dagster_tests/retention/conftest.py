"""The sender tests' TLS certificate and SMTP server, and six weeks of history."""

import pytest

from warmup_dagster_tests.retention.history import History, make_history
from warmup_dagster_tests.sending.test_sender import cert, server

__all__ = ["cert", "server"]


@pytest.fixture
def history(engine, cipher, server, cert) -> History:
    return make_history(engine, cipher, server, cert)
