"""Outages under a sender run: a PostgreSQL restart costs a delay, never a lost or doubled
message; a database that stays down fails the run loudly; SIGTERM ends a run cleanly; an SMTP
server down for minutes mid-run costs retries, and the run sends everything once it is back.

The server is a cluster of the test's own (`testing.postgres.OwnCluster`), never the machine's.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from warmup_dagster.clock import ScaledClock
from warmup_dagster.crypto import Cipher
from warmup_dagster.db import migrate
from warmup_dagster.db.engine import make_engine
from warmup_dagster.db.models import JobStatus
from warmup_dagster.local_smtp import free_port
from warmup_dagster.sending.retry import DatabaseUnavailable
from warmup_dagster.sending.worker import Sender
from warmup_dagster.testing.postgres import OwnCluster
from warmup_dagster.testing.sender_process import SenderProcess
from warmup_dagster.testing.smtp_server import FaultySmtpServer
from warmup_dagster_tests.conftest import TEST_SECRET
from warmup_dagster_tests.sending.test_sender import (
    KEY,
    START,
    job_rows,
    jobs,
    log_rows,
    mailboxes,
    run,
    settings_for,
)

# Real seconds the DATA reply to a `slow@` recipient waits: its outcome arrives mid-outage.
SLOW_S = 0.8
TEMPLATE = "migrated"
# How long the database stays down, real seconds.
OUTAGE_S = 1.5
# The clock's speed: the retries' back-off is clock time.
SPEED = 4.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[OwnCluster]:
    with OwnCluster() as own:
        migrate.upgrade(own.create_database(TEMPLATE))
        yield own


@pytest.fixture
def pg(cluster: OwnCluster, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A fresh migrated database on the cluster, for one test."""
    engine = make_engine(cluster.create_database(request.node.name.lower(), template=TEMPLATE))
    yield engine
    engine.dispose()


@pytest.fixture
def slow_server(cert) -> Iterator[FaultySmtpServer]:
    cert_file, key_file = cert
    with FaultySmtpServer(
        users={}, tls="starttls", cert=cert_file, key=key_file, slow_seconds=SLOW_S
    ) as smtp:
        yield smtp


def wait_for(condition, what: str, seconds: float = 10.0) -> None:
    done = threading.Event()
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        done.wait(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_database_restart_mid_run_costs_a_delay_not_a_message(
    cluster: OwnCluster, pg: Engine, cipher: Cipher, slow_server, cert, caplog
):
    boxes = mailboxes(pg, cipher, slow_server, n_users=3)
    ids = jobs(pg, boxes[:2], ["peer@far.example"], at=START - timedelta(minutes=5))
    ids += jobs(pg, boxes[2:], ["slow@far.example"], at=START - timedelta(minutes=5))
    # A lease renewed every 1.25 real seconds: renewals come due while the database is down.
    settings = settings_for(cert, SPEED, smtp_timeout_seconds="8", send_lease_seconds="20")
    caplog.set_level(logging.WARNING)
    ran: dict[str, object] = {}

    def sender() -> None:
        try:
            ran["summary"] = run(pg, settings, cipher, SPEED, real_seconds=30)
        except BaseException as exc:  # reported by the assertion below
            ran["error"] = exc

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        # The two quick messages are accepted; the slow one's session is still going.
        wait_for(lambda: len(slow_server.received) >= 2, "the quick messages")
        cluster.stop("fast")  # every connection of the run is cut
        threading.Event().wait(OUTAGE_S)
    finally:
        cluster.start()
        thread.join(30)
    assert not thread.is_alive()
    assert "error" not in ran, ran.get("error")

    # Every job sent once and on record.
    sent = Counter(r.message["Message-ID"] for r in slow_server.received)
    assert sorted(sent.values()) == [1, 1, 1]
    rows = job_rows(pg)
    assert {rows[i].status for i in ids} == {JobStatus.SENT}
    assert {rows[i].message_id for i in ids} == set(sent)
    assert all(rows[i].lease_expires_at is None for i in ids)
    assert Counter(e.job_id for e in log_rows(pg) if e.status is JobStatus.SENT) == Counter(ids)
    # And the outage was met, not missed: the slow outcome's write, a renewal and a claim (the
    # run looks for more work every half second while a session goes on) retried.
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(w.startswith("claiming jobs: the database failed") for w in warnings)
    assert any(w.startswith("recording outcomes: the database failed") for w in warnings)
    assert any(w.startswith("renewing leases: the database failed") for w in warnings)


def test_a_database_that_stays_down_fails_the_run_loudly(
    cluster: OwnCluster, pg: Engine, cipher: Cipher, server, cert, caplog
):
    """Every try fails: the run gives up after its last one (the waits are clock time, here
    at 1000x) and says which call and why."""
    boxes = mailboxes(pg, cipher, server, n_users=1)
    jobs(pg, boxes, ["peer@far.example"], at=START - timedelta(minutes=5))
    pg.dispose()
    cluster.stop("fast")
    try:
        with pytest.raises(DatabaseUnavailable, match="the database failed 10 tries in a row"):
            run(pg, settings_for(cert, speed=1000), cipher, speed=1000, real_seconds=5)
    finally:
        cluster.start()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("the database failed 10 tries, giving up" in e for e in errors)
    assert server.received == []


def test_sigterm_ends_a_run_cleanly_its_sessions_finished_and_recorded(
    cluster: OwnCluster, cipher: Cipher, cert, request: pytest.FixtureRequest
):
    """A real run in a child process gets SIGTERM while its three SMTP sessions are in flight:
    it claims nothing more (two jobs due later stay pending), lets the sessions end, records
    their outcomes and exits 0. Without the handler the child died of the signal."""
    url = cluster.create_database(request.node.name.lower(), template=TEMPLATE)
    engine = make_engine(url)
    cert_file, key_file = cert
    with FaultySmtpServer(
        users={}, tls="starttls", cert=cert_file, key=key_file, data_delay=1.0
    ) as smtp:
        boxes = mailboxes(engine, cipher, smtp, n_users=5)
        now = jobs(engine, boxes[:3], ["peer@far.example"], at=START - timedelta(minutes=5))
        later = jobs(engine, boxes[3:], ["peer@far.example"], at=START + timedelta(seconds=20))
        values = {
            "WARMUP_SMTP_CA_FILE": str(cert_file),
            "WARMUP_SMTP_TIMEOUT_SECONDS": "10",
            "WARMUP_SEND_LEASE_SECONDS": "3600",
            "WARMUP_SCHEDULER_INTERVAL_MS": "1000",
        }
        child = SenderProcess(url, values, TEST_SECRET, "w-term", START, 1.0, max_seconds=60)
        child.start()
        child.wait_ready(10)
        wait_for(lambda: smtp.sessions >= 3, "the three sessions")
        assert smtp.transactions == 0  # each message waits a second for its 250: in flight
        child.terminate()
        code = child.join(10)
        received = smtp.received

    assert code == 0
    assert len(received) == 3
    rows = job_rows(engine)
    assert {rows[i].status for i in now} == {JobStatus.SENT}
    assert {rows[i].message_id for i in now} == {r.message["Message-ID"] for r in received}
    assert all(rows[i].lease_expires_at is None for i in now)
    assert {rows[i].status for i in later} == {JobStatus.PENDING}
    assert all(rows[i].worker_id is None for i in later)
    engine.dispose()


# The SMTP outage's clock: two real seconds are four clock minutes.
SMTP_SPEED = 120.0
SMTP_DOWN = timedelta(minutes=4)


def test_an_smtp_server_down_for_minutes_mid_run_costs_retries_and_loses_nothing(
    engine, cipher, cert
):
    """Four mailboxes send at 09:00, 09:03 and 09:06 (clock time, at 120x). At 09:01, once
    09:00's mail is in and nothing is in flight, the SMTP server stops; four clock minutes later
    it starts again on the same port. 09:03's jobs meet a refused connection and are retried
    (backoff in clock time) within the same run; every message arrives once, nothing fails."""
    cert_file, key_file = cert
    smtp = FaultySmtpServer(
        users={}, tls="starttls", cert=cert_file, key=key_file, port=free_port("127.0.0.1")
    )
    smtp.start()
    try:
        boxes = mailboxes(engine, cipher, smtp, n_users=4)
        ids = jobs(engine, boxes, ["a@far.example", "b@far.example", "c@far.example"])
        settings = settings_for(
            cert,
            SMTP_SPEED,
            smtp_timeout_seconds=str(2 * SMTP_SPEED),  # two real seconds
            send_retry_base_seconds="60",
            send_max_attempts="6",
            same_mailbox_delay_min="0.05",
            same_mailbox_delay_max="0.1",
            scheduler_interval_ms="200",
        )
        clock = ScaledClock(START, datetime.now(UTC), SMTP_SPEED)
        # A lifetime past the last retry's latest time (09:03 + 30 + 60 + 120 + 240 s, jittered
        # down), so the run waits for its retries rather than leaving them to a later run.
        sender = Sender(engine, clock, settings, cipher, KEY, "w-smtp", max_seconds=15 * 60)
        ran: dict[str, object] = {}

        def send() -> None:
            try:
                ran["summary"] = sender.run()
            except BaseException as exc:  # reported by the assertion below
                ran["error"] = exc

        thread = threading.Thread(target=send)
        thread.start()
        pause = threading.Event()
        try:
            wait_for(lambda: len(smtp.received) >= 4, "09:00's four messages", 30)
            while clock.now() < START + timedelta(minutes=1):
                pause.wait(0.01)
            smtp.wait_idle(10)
            before = smtp.received
            smtp.stop()
            down_at = clock.now()
            while clock.now() < down_at + SMTP_DOWN:
                pause.wait(0.01)
        finally:
            smtp.start()  # the same port (it was given one); its counters start again
            up_at = clock.now()
            thread.join(60)
        after = smtp.received
    finally:
        smtp.stop()
    assert not thread.is_alive()
    assert "error" not in ran, ran.get("error")

    # Every job sent once and on record, within this run.
    received = Counter(r.message["Message-ID"] for r in before + after)
    rows = job_rows(engine)
    assert {rows[i].status for i in ids} == {JobStatus.SENT}
    assert set(received) == {rows[i].message_id for i in ids}
    assert set(received.values()) == {1}
    log = log_rows(engine)
    assert Counter(e.job_id for e in log if e.status is JobStatus.SENT) == Counter(ids)
    # The outage was met: the jobs due while it lasted were refused and retried (09:00's went
    # before it, 09:06's after), and every refusal is on record with why.
    refused = [e for e in log if e.status is JobStatus.RETRY]
    assert refused and all(down_at <= e.claimed_at < up_at for e in refused)
    assert all("refused" in (e.error or "").lower() for e in refused), [e.error for e in refused]
    due_in_outage = {i for i in ids if down_at <= rows[i].scheduled_at < up_at}
    assert due_in_outage and {e.job_id for e in refused} == due_in_outage
    assert all(rows[i].attempts >= 2 for i in due_in_outage)
    assert len(before) == 4 and len(after) == len(ids) - 4
