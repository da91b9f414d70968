"""A sender run's leases and outcomes while claims are slow, and outcomes that come too late.

A claim waits for the claim lock; lease renewal and outcome recording must not wait with it,
or the run's jobs are reclaimed and sent again with the same Message-ID.
"""

import gc
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster import queue
from warmup_dagster.db.dialect import exclusive
from warmup_dagster.db.models import JobStatus, WarmupJob
from warmup_dagster.queue.claim import CLAIM_LOCK
from warmup_dagster.sending.worker import Sender
from warmup_dagster_tests.sending.test_sender import (
    KEY,
    START,
    clock,
    jobs,
    log_rows,
    mailboxes,
    settings_for,
)

SPEED = 60
# The longest the test holds the claim lock waiting for the run to record (real seconds).
HOLD_AT_MOST_S = 30.0


def leases(engine, ids):
    """Each job's status and lease, as another connection sees them now."""
    with Session(engine) as session:
        rows = session.execute(
            select(WarmupJob.id, WarmupJob.status, WarmupJob.lease_expires_at).where(
                WarmupJob.id.in_(ids)
            )
        )
        return {job: (status, lease) for job, status, lease in rows}


def wait_until(condition, what):
    give_up = time.monotonic() + HOLD_AT_MOST_S
    while not condition():
        assert time.monotonic() < give_up, f"gave up waiting until {what}"
        time.sleep(0.02)


# PostgreSQL only: there the claim lock is an advisory lock that renewals and records never
# take. On SQLite the database's one write lock serializes every writer anyway, so any write
# waits behind a claim whatever the sender's loop does.
@pytest.mark.parametrize("backend", ["postgres"])
def test_leases_and_outcomes_do_not_wait_behind_a_held_claim_lock(engine, cipher, server, cert):
    # One session at a time, each 2 s: the fourth claimed job waits 6 s for its session, past
    # its lease of 400 clock seconds (6.7 real s at 60x), which renewal must keep extending.
    server.slow_seconds = 2.0
    boxes = mailboxes(engine, cipher, server, n_users=4)
    ids = jobs(engine, boxes, ["slow@x.example"], at=START - timedelta(minutes=1))
    settings = settings_for(
        cert,
        speed=SPEED,
        send_lease_seconds="400",
        smtp_timeout_seconds="180",  # 3 real seconds, more than a slow reply takes
        worker_concurrency="1",
    )
    run_clock = clock(SPEED)
    sender = Sender(engine, run_clock, settings, cipher, KEY, "w1", max_seconds=60 * SPEED)

    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(sender.run)
        wait_until(
            lambda: {s for s, _ in leases(engine, ids).values()} == {JobStatus.PROCESSING},
            "the run has claimed every job",
        )
        first_expiry = {job: lease for job, (_, lease) in leases(engine, ids).items()}
        lapsed, past_first_expiry = [], set()
        # Another claim holds the lock: the run's next claim waits for it as long as it lasts.
        with exclusive(engine, CLAIM_LOCK):
            give_up = time.monotonic() + HOLD_AT_MOST_S
            while time.monotonic() < give_up:
                now = run_clock.now()
                in_flight = {
                    job: lease
                    for job, (status, lease) in leases(engine, ids).items()
                    if status is JobStatus.PROCESSING
                }
                lapsed += [job for job, lease in in_flight.items() if lease <= now]
                past_first_expiry |= {job for job in in_flight if now > first_expiry[job]}
                if not in_flight and now > max(first_expiry.values()):
                    break
                time.sleep(0.1)
            recorded_under_lock = {job: status for job, (status, _) in leases(engine, ids).items()}
        summary = running.result()

    assert past_first_expiry  # the run held jobs past their first lease while claims waited
    assert lapsed == []  # and every lease of theirs was renewed before it ran out
    # every outcome was written while the claim lock was still held
    assert recorded_under_lock == dict.fromkeys(ids, JobStatus.SENT)
    # nothing reclaimed, nothing sent twice
    assert summary.reclaimed == 0 and summary.claimed == len(ids)
    received = [r.message["Message-ID"] for r in server.received]
    assert len(received) == len(set(received)) == len(ids)
    log = log_rows(engine)
    assert sorted(e.job_id for e in log) == sorted(ids)
    assert {(e.status, e.late, e.worker_id) for e in log} == {(JobStatus.SENT, False, "w1")}
    assert summary.metadata()["late outcomes"] == 0


def test_a_late_duplicate_shows_in_the_run_summary_and_its_log(
    engine, cipher, server, cert, caplog
):
    server.slow_seconds = 2.0
    [box] = mailboxes(engine, cipher, server)
    [job_id] = jobs(engine, [box], ["slow@x.example"], at=START - timedelta(minutes=1))
    settings = settings_for(cert, speed=SPEED, send_lease_seconds="600", smtp_timeout_seconds="180")
    run_clock = clock(SPEED)
    sender = Sender(engine, run_clock, settings, cipher, KEY, "w1", max_seconds=60 * SPEED)

    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(sender.run)
        wait_until(
            lambda: leases(engine, [job_id])[job_id][0] is JobStatus.PROCESSING,
            "the run has claimed the job",
        )
        # While its session is slow, another run claims the job past w1's lease (two leases
        # on, later than any renewal reaches): w1 lost it, and its outcome will come late.
        later = run_clock.now() + timedelta(seconds=2 * 600)
        taken = queue.claim(engine, settings, lambda: later, "w2", 10, KEY)
        assert taken.reclaimed == 1
        summary = running.result()

    assert summary.metadata()["late outcomes"] == 1
    assert summary.metadata()["sent twice (late sends)"] == 1
    assert summary.metadata()["sent"] == 0  # nothing applied: w2 holds the job
    # the run's log says it once, with the number
    lines = [r.getMessage() for r in caplog.records if "came after" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].startswith("1 outcome(s) came after") and "1 of them sent" in lines[0]
    late = [(e.worker_id, e.status) for e in log_rows(engine) if e.late]
    assert late == [("w1", JobStatus.SENT)]


def test_a_failing_side_task_fails_the_run_after_finishing_what_it_claimed(
    engine, cipher, server, cert, caplog, monkeypatch
):
    server.slow_seconds = 2.0
    [box] = mailboxes(engine, cipher, server)
    [job_id] = jobs(engine, [box], ["slow@x.example"], at=START - timedelta(minutes=1))
    # a renewal every 100 clock seconds (1.7 real s at 60x), while the session takes 2 s
    settings = settings_for(cert, speed=SPEED, send_lease_seconds="400", smtp_timeout_seconds="180")

    sender = _broken_run(engine, cipher, settings, monkeypatch, "extend_leases", "renewal")
    assert "its lease renewal failed" in caplog.text
    # on its way out the run still finished the session it had claimed and recorded it
    assert leases(engine, [job_id])[job_id][0] is JobStatus.SENT
    assert sender.summary.metadata()["sent"] == 1
    assert [r.rcpt_tos for r in server.received] == [("slow@x.example",)]


def test_every_failed_task_is_named_and_none_is_left_for_asyncio_to_report(
    engine, cipher, server, cert, caplog, monkeypatch
):
    """Outcome writes that fail (no outage: not retried) fail the recording side task, the
    claims too when they record before waiting, and the run's last record on its way out: the
    run's log names each failed task, and no task is left with an exception nobody read.
    asyncio logs such a task whenever it is collected, in whatever code runs then, with a
    traceback that Python 3.11 builds with `ast.parse`: inside another `ast.parse` (pytest
    importing a module), that fails with "AST constructor recursion depth mismatch"."""
    [box] = mailboxes(engine, cipher, server)
    jobs(engine, [box], ["a@x.example"], at=START - timedelta(minutes=1))
    settings = settings_for(cert, speed=SPEED)

    _broken_run(engine, cipher, settings, monkeypatch, "record", "recording")
    gc.collect()  # the run and its tasks are gone: a task with an unread exception is reported

    named = [r.getMessage() for r in caplog.records if "failed: RuntimeError" in r.getMessage()]
    assert "sender w1: its outcome recording failed: RuntimeError('recording is broken')" in named
    unread = [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()]
    assert unread == []


def _broken_run(engine, cipher, settings, monkeypatch, function, what):
    """A run of w1 in which `queue.<function>` raises "<what> is broken"; the run raises it."""

    def broken(*args):
        raise RuntimeError(f"{what} is broken")

    monkeypatch.setattr(queue, function, broken)
    sender = Sender(engine, clock(SPEED), settings, cipher, KEY, "w1", max_seconds=60 * SPEED)
    with pytest.raises(RuntimeError, match=f"{what} is broken"):
        sender.run()
    return sender
