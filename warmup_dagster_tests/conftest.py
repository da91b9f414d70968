"""Shared fixtures: real databases (SQLite and PostgreSQL), a cipher and a fixed clock.

Every test that takes `db_url` runs twice, on SQLite and on PostgreSQL, each time against a
fresh database migrated to head. PostgreSQL comes from WARMUP_TEST_POSTGRES_URL (default: the
local server); if it can't be reached the tests fail, they are never skipped.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg2
import pytest
from hypothesis import settings
from sqlalchemy.engine import Engine

from warmup_dagster.clock import FixedClock
from warmup_dagster.crypto import Cipher
from warmup_dagster.db import migrate
from warmup_dagster.db.engine import make_engine
from warmup_dagster.testing.postgres import PG_ADMIN_URL, ScratchDatabases, admin_connection

TEST_SECRET = "test-secret-key-not-for-production"

# The same examples on every run: a suite that fails on one run and passes on the next, on the
# same commit, tells nobody anything. Exploring further is a separate, deliberate run
# (`--hypothesis-profile=explore`), and what it finds becomes an explicit case.
settings.register_profile("suite", derandomize=True)
settings.register_profile("explore", max_examples=2000)
settings.load_profile("suite")

# A Monday, before a 06:00 UTC window opens.
MONDAY_5AM = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)


class _UnreadExceptions(logging.Handler):
    """asyncio's reports of a task or future whose exception nobody read, logged whenever it
    is collected, in whatever code runs then: a bug of the code that left it (a failure that
    went unreported), and on Python 3.11 a hazard to the test that happens to be running (the
    report's traceback calls `ast.parse`; inside another one that raises "AST constructor
    recursion depth mismatch")."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "exception was never retrieved" in record.getMessage():
            self.reports.append(record.getMessage())


_UNREAD = _UnreadExceptions()
logging.getLogger("asyncio").addHandler(_UNREAD)


@pytest.fixture(autouse=True)
def _no_unread_exceptions() -> Iterator[None]:
    """Fails the test in which asyncio reported an exception nobody read (it may have been
    left by an earlier test on the same worker: the report names the task's coroutine)."""
    yield
    reports = list(_UNREAD.reports)
    _UNREAD.reports.clear()
    if reports:
        pytest.fail("asyncio reported exceptions nobody read:\n" + "\n".join(reports))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--ui-screenshots",
        type=Path,
        default=None,
        help="where the UI test saves its screenshots (make ui-check: docs/images)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first, the slowest of them first: the workers then run them side by side
    while the short ones fill in around them, instead of one worker ending on a queue of them.
    """

    def seconds(item: pytest.Item) -> float:
        mark = item.get_closest_marker("slow")
        return (mark.args[0] if mark.args else 10.0) if mark else 0.0

    items.sort(key=seconds, reverse=True)  # stable: the rest keep their order


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[ScratchDatabases]:
    try:
        admin_connection().close()
    except psycopg2.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is required and unreachable at {PG_ADMIN_URL} "
            f"(set WARMUP_TEST_POSTGRES_URL or run `make test`, which starts it): {exc}",
            pytrace=False,
        )
    databases = ScratchDatabases()
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def pg_template(pg_databases: ScratchDatabases) -> str:
    name = pg_databases.create()
    migrate.upgrade(pg_databases.url(name))
    return name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "warmup.sqlite"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def empty_db_url(backend: str, tmp_path: Path, pg_databases: ScratchDatabases) -> str:
    """A fresh database with no tables, on each backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'warmup.sqlite'}"
    return pg_databases.url(pg_databases.create())


@pytest.fixture
def db_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, pg_databases: ScratchDatabases
) -> str:
    """A fresh database migrated to head, on each backend."""
    if backend == "sqlite":
        path = tmp_path / "warmup.sqlite"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    return pg_databases.url(pg_databases.create(template=request.getfixturevalue("pg_template")))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def cipher() -> Cipher:
    return Cipher(TEST_SECRET)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(MONDAY_5AM)


@pytest.fixture
def instance(tmp_path: Path, backend: str, pg_databases: ScratchDatabases) -> Iterator[Any]:
    """A Dagster instance whose storage is on the same backend as the test's app database."""
    overrides = None
    if backend == "postgres":
        url = pg_databases.url(pg_databases.create())
        overrides = {"storage": {"postgres": {"postgres_url": url}}}
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides=overrides) as instance:
        yield instance
