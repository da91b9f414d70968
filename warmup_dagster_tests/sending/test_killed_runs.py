"""Sender runs in child processes, SIGKILLed at random moments: no message reaches the server
twice, and every job ends with an outcome (`testing.killed_runs`).

The kills land anywhere: before a claim, during one, mid-session, between a server's 250 and
the outcome's write, during a write. The quick test (4 kills) runs in `make test`; the long one
(`faults`, `make test-faults`) kills 30 runs and holds the issue's bounds: nothing lost, at most
one second copy per ten kills, a send-log row for every copy the server received.
`benchmarks/bench_kills.py` compares the look over IMAP on and off.
"""

from __future__ import annotations

import logging
import random

import pytest

from warmup_dagster.testing.imap_server import DeliveringSmtp
from warmup_dagster.testing.killed_runs import kill_runs, seed
from warmup_dagster_tests.conftest import MONDAY_5AM, TEST_SECRET
from warmup_dagster_tests.engagement.conftest import started_dovecot

SPEED = 60
KILLS = 4
# The long version's kills (`make test-faults`).
LONG_KILLS = 30


def values(cert, **env: str) -> dict[str, str]:
    """Settings for runs at `SPEED`x: one real second is a clock minute."""
    base = {
        "WARMUP_SECRET_KEY": TEST_SECRET,
        "WARMUP_SMTP_CA_FILE": str(cert[0]),
        "WARMUP_IMAP_CA_FILE": str(cert[0]),
        "WARMUP_SMTP_TIMEOUT_SECONDS": str(2 * SPEED),  # 2 real seconds
        "WARMUP_IMAP_TIMEOUT_SECONDS": str(2 * SPEED),
        "WARMUP_ENGAGE_LEASE_SECONDS": str(10 * SPEED),
        "WARMUP_SEND_LEASE_SECONDS": str(5 * SPEED),
        "WARMUP_SEND_RETRY_BASE_SECONDS": "60",
        "WARMUP_SEND_MAX_ATTEMPTS": "50",  # every kill costs its jobs an attempt
        "WARMUP_SENDER_RUN_MAX_SECONDS": str(30 * SPEED),
        "WARMUP_SCHEDULER_INTERVAL_MS": "1000",
        "WARMUP_SAME_MAILBOX_DELAY_MIN": "0.05",  # 3 clock seconds: 0.05 real
        "WARMUP_SAME_MAILBOX_DELAY_MAX": "0.1",
        "WARMUP_USER_SENDS_PER_MINUTE": "1000",
        "WARMUP_USER_SENDS_PER_HOUR": "100000",
        "WARMUP_GLOBAL_SENDS_PER_MINUTE": "1000",
        "WARMUP_GLOBAL_SENDS_PER_HOUR": "100000",
        "WARMUP_ARRIVAL_MARGIN_SECONDS": "0",
    }
    base.update({f"WARMUP_{k.upper()}": v for k, v in env.items()})
    return base


@pytest.fixture
def dovecot(cert):
    server = started_dovecot(cert)
    yield server
    server.stop()


@pytest.fixture
def smtp(dovecot, cert):
    """Delivers into Dovecot, every third message to Junk; each DATA reply after 50 ms."""
    with DeliveringSmtp(
        dovecot,
        junk_share=0.3,
        users={},
        tls="starttls",
        cert=cert[0],
        key=cert[1],
        data_delay=0.05,
    ) as server:
        yield server


def killed_runs(engine, db_url, cipher, cert, dovecot, smtp, *, kills, boxes, per_box, within):
    """The scenario of both tests: `boxes` x `per_box` jobs due at nine, `kills` runs killed
    within `within` real seconds of being ready, one run to its end; returns the report."""
    nine = MONDAY_5AM.replace(hour=9)
    ids = seed(engine, cipher, smtp, dovecot, boxes=boxes, per_box=per_box, at=nine)
    report = kill_runs(
        engine,
        db_url,
        values(cert),
        TEST_SECRET,
        smtp,
        start=nine,
        speed=SPEED,
        kills=kills,
        kill_within_s=within,
        rng=random.Random(13),
    )
    assert report.runs == kills + 1 and report.last_exit == 0
    assert report.jobs == len(ids) == boxes * per_box
    return report


def assert_nothing_lost(report) -> None:
    """Every job sent (its message at the server) or still owed and due again; none held by a
    dead run, none failed; the send log has a row for every copy the server received."""
    assert report.dead_leases == []
    assert sorted(report.delivered + report.owed) == sorted(report.states)
    for job_id in report.delivered:
        assert report.copies[report.states[job_id].message_id] >= 1, job_id
    assert report.under_logged() == {}


# PostgreSQL only: the runs are separate processes writing at once, as in production.
@pytest.mark.slow(15)
@pytest.mark.parametrize("backend", ["postgres"])
def test_killed_runs_send_nothing_twice_and_leave_no_job_without_an_outcome(
    engine, db_url, cipher, cert, dovecot, smtp
):
    report = killed_runs(
        engine, db_url, cipher, cert, dovecot, smtp, kills=KILLS, boxes=4, per_box=5, within=0.6
    )
    assert_nothing_lost(report)
    assert report.unfinished == []  # every job ends with an outcome
    assert len(report.copies) == report.jobs  # every job's message reached the server ...
    assert report.second_copies == 0  # ... once
    # the kills were real: runs died holding jobs, which later runs took over
    assert report.killed >= 1 and report.possibly_delivered >= 1


# `make test-faults`: the same scenario with the number of kills (#13, at least 20).
@pytest.mark.faults
@pytest.mark.slow(25)
@pytest.mark.parametrize("backend", ["postgres"])
def test_many_killed_runs_lose_nothing_and_double_at_most_one_message_in_ten_kills(
    engine, db_url, cipher, cert, dovecot, smtp, caplog
):
    caplog.set_level(logging.CRITICAL, logger="mail.log")  # each cut session's traceback
    report = killed_runs(
        engine,
        db_url,
        cipher,
        cert,
        dovecot,
        smtp,
        kills=LONG_KILLS,
        boxes=8,
        per_box=40,
        within=1.0,
    )
    copies = sum(report.copies.values())
    print(
        f"kills {report.killed}/{LONG_KILLS}, jobs {report.jobs}, copies at the server {copies}, "
        f"distinct {len(report.copies)}, second copies {report.second_copies}, abandoned "
        f"(possibly delivered) {report.possibly_delivered}, found over IMAP "
        f"{report.found_delivered}, owed {len(report.owed)}, send-log rows "
        f"{sum(report.logged.values())}"
    )
    assert report.killed >= 20  # the 20 kills, each of a run still running
    assert_nothing_lost(report)
    assert report.second_copies <= report.killed // 10
    assert sum(report.logged.values()) >= copies
    assert report.possibly_delivered >= report.killed // 2  # the kills met runs holding jobs
