"""A local authoritative DNS server for the domain tests, and settings that point at it."""

from collections.abc import Iterator

import pytest

from warmup_dagster.settings import Settings, load_settings
from warmup_dagster.testing.dns_server import ZoneServer
from warmup_dagster_tests.domains import zones

# Real seconds: the silent zone's lookups wait this long, and no answer takes longer here.
TIMEOUT = "0.5"


@pytest.fixture(scope="session")
def dns_server() -> Iterator[ZoneServer]:
    with zones.server() as server:
        yield server


@pytest.fixture
def dns_env(dns_server: ZoneServer) -> dict[str, str]:
    return {
        "WARMUP_DNS_NAMESERVERS": dns_server.nameserver,
        "WARMUP_DNS_TIMEOUT_SECONDS": TIMEOUT,
        "WARMUP_DNSBL_ZONES": zones.BLOCKLIST,
        "WARMUP_DAILY_VARIANCE": "0",
    }


@pytest.fixture
def dns_settings(dns_env: dict[str, str], db_url: str) -> Settings:
    return load_settings({**dns_env, "WARMUP_DATABASE_URL": db_url})
