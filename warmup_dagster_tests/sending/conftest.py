"""The sender tests' TLS certificate and SMTP server, for every sending test module."""

from warmup_dagster_tests.sending.test_sender import cert, server

__all__ = ["cert", "server"]
