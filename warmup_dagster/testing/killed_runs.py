"""Sender runs SIGKILLed at random moments, then one let finish: what did the kills cost?

The scenario of `sending/test_killed_runs.py` and of `benchmarks/bench_kills.py`: a pool of
mailboxes sending each other mail through an SMTP server that delivers into Dovecot (so the
sender's look before sending a reclaimed job again has a real mailbox to look in). Each run is
a `SenderProcess`, killed a random moment after it is ready; the next starts on a clock moved
past the dead run's leases, as a run started a lease later would find the queue. A last run
goes to its end. `Report` counts what reached the server more than once, which jobs never got
an outcome, and what the send log holds for each message beside what the server received.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from warmup_dagster.crypto import Cipher
from warmup_dagster.db.models import (
    JobKind,
    JobStatus,
    Mailbox,
    MailboxState,
    Plan,
    Security,
    SendLog,
    User,
    WarmupJob,
)
from warmup_dagster.queue.counting import possibly_delivered
from warmup_dagster.queue.enqueue import NewJob, enqueue
from warmup_dagster.queue.states import CLAIMABLE, DELIVERED, FINISHED, IN_FLIGHT
from warmup_dagster.testing.imap_server import DeliveringSmtp, DovecotServer
from warmup_dagster.testing.sender_process import SenderProcess

PASSWORD = "kill-test-pw"
# Real seconds a child may take to be ready, and the last run to finish (a busy machine).
READY_WITHIN_S = 60.0
FINISH_WITHIN_S = 120.0
# Real seconds the SMTP server may take to finish a killed run's sessions.
IDLE_WITHIN_S = 30.0


@dataclass(frozen=True)
class JobState:
    """A job's row at the end of the scenario."""

    status: JobStatus
    due_at: datetime | None
    lease_expires_at: datetime | None
    message_id: str | None


@dataclass
class Report:
    """What the kills cost (see the module docstring)."""

    jobs: int = 0
    runs: int = 0
    killed: int = 0  # runs SIGKILLed while still running
    copies: Counter[str] = field(default_factory=Counter)  # Message-ID -> times received
    unfinished: list[int] = field(default_factory=list)  # jobs left without a final outcome
    possibly_delivered: int = 0  # abandoned attempts logged by the claims that took over
    found_delivered: int = 0  # reclaimed jobs found over IMAP and not sent again
    last_exit: int | None = None
    ended_at: datetime | None = None  # the clock's time when the last run ended
    states: dict[int, JobState] = field(default_factory=dict)  # job id -> its row at the end
    logged: Counter[str] = field(default_factory=Counter)  # Message-ID -> send-log rows

    @property
    def second_copies(self) -> int:
        """Messages that reached the server more than once (copies beyond the first)."""
        return sum(n - 1 for n in self.copies.values() if n > 1)

    @property
    def owed(self) -> list[int]:
        """Jobs still to be sent and due again: claimable, with a due time."""
        return sorted(
            j for j, s in self.states.items() if s.status in CLAIMABLE and s.due_at is not None
        )

    @property
    def delivered(self) -> list[int]:
        """Jobs on record as sent."""
        return sorted(j for j, s in self.states.items() if s.status in DELIVERED)

    @property
    def dead_leases(self) -> list[int]:
        """Jobs still in flight whose lease had run out when the last run ended: held by a
        dead run and not taken over."""
        ended = self.ended_at
        return sorted(
            j
            for j, s in self.states.items()
            if s.status is IN_FLIGHT
            and (ended is None or s.lease_expires_at is None or s.lease_expires_at <= ended)
        )

    def under_logged(self) -> dict[str, tuple[int, int]]:
        """Message-ID -> (copies at the server, send-log rows) where the log has fewer rows
        than the server received copies: attempts the log does not know of."""
        return {m: (n, self.logged[m]) for m, n in self.copies.items() if self.logged[m] < n}


def seed(
    engine: Engine,
    cipher: Cipher,
    smtp: DeliveringSmtp,
    dovecot: DovecotServer,
    *,
    boxes: int,
    per_box: int,
    at: datetime,
) -> list[int]:
    """A pool of `boxes` mailboxes (two owners), each with `per_box` jobs due at `at` to the
    next mailbox; returns the job ids."""
    with Session(engine) as session, session.begin():
        plan = session.scalar(select(Plan.id).where(Plan.name == "pro"))
        owners = [User(name=f"killed-runs-{u}", plan_id=plan, created_at=at) for u in range(2)]
        session.add_all(owners)
        session.flush()
        pool = []
        for k in range(boxes):
            email = f"box{k}@kill{k}.example"
            box = Mailbox(
                email=email,
                domain=email.rsplit("@", 1)[1],
                user_id=owners[k % 2].id,
                smtp_host="localhost",
                smtp_port=smtp.port,
                smtp_security=Security.STARTTLS,
                smtp_username=email,
                smtp_password_enc=cipher.encrypt(PASSWORD),
                imap_host="localhost",
                imap_port=dovecot.ssl_port,
                imap_security=Security.SSL,
                imap_username=email,
                imap_password_enc=cipher.encrypt(PASSWORD),
                state=MailboxState.ACTIVE,
                daily_limit=per_box,
                ramp_start=per_box,
                ramp_step=1,
                reply_rate=0.0,
                weekdays_only=False,
                warmup_start_date=at.date(),
                created_at=at,
                updated_at=at,
            )
            session.add(box)
            pool.append(box)
            dovecot.add_user(email, PASSWORD)
            if smtp.users is not None:
                smtp.users[email] = PASSWORD
        session.flush()
        jobs = [
            NewJob(
                kind=JobKind.SEND,
                mailbox_id=box.id,
                user_id=box.user_id,
                local_date=at.date(),
                recipient_email=pool[(k + 1) % boxes].email,
                due_at=at,
                recipient_mailbox_id=pool[(k + 1) % boxes].id,
                content_seed=1000 * k + n,
            )
            for k, box in enumerate(pool)
            for n in range(per_box)
        ]
        conn = session.connection()
        first = conn.scalar(select(func.coalesce(func.max(WarmupJob.id), 0)))
        enqueue(conn, at, jobs)  # only the queue writes its tables
        return list(
            conn.scalars(select(WarmupJob.id).where(WarmupJob.id > first).order_by(WarmupJob.id))
        )


def kill_runs(
    engine: Engine,
    db_url: str,
    values: Mapping[str, str],
    secret: str,
    smtp: DeliveringSmtp,
    *,
    start: datetime,
    speed: float,
    kills: int,
    kill_within_s: float,
    rng: random.Random,
) -> Report:
    """`kills` runs killed within `kill_within_s` real seconds of being ready, then one run to
    its end; returns what they cost."""
    lease = timedelta(seconds=float(values["WARMUP_SEND_LEASE_SECONDS"]))
    lifetime = float(values.get("WARMUP_SENDER_RUN_MAX_SECONDS", 900))
    report = Report()
    clock_at = start
    for n in range(kills + 1):
        child = SenderProcess(db_url, values, secret, f"run{n}", clock_at, speed, lifetime)
        began = time.monotonic()
        child.start()
        child.wait_ready(READY_WITHIN_S)
        report.runs += 1
        if n < kills:
            time.sleep(rng.uniform(0, kill_within_s))
            report.killed += child.kill()
            # What the dead run's sessions were handing over is delivered (or dropped) before
            # the next run looks: a lease's wait, which the moved clock skips, allows that.
            smtp.wait_idle(IDLE_WITHIN_S)
        else:
            report.last_exit = child.join(FINISH_WITHIN_S)
        # The next run starts where this one's clock got to, plus a lease: what it held is
        # reclaimable then, as for a run started a lease after a crash.
        clock_at += timedelta(seconds=(time.monotonic() - began) * speed) + lease
    report.ended_at = clock_at - lease
    return _tally(engine, smtp, report)


def _tally(engine: Engine, smtp: DeliveringSmtp, report: Report) -> Report:
    report.copies = Counter(str(r.message["Message-ID"]) for r in smtp.received)
    with Session(engine) as session:
        report.states = {
            row.id: JobState(row.status, row.due_at, row.lease_expires_at, row.message_id)
            for row in session.execute(
                select(
                    WarmupJob.id,
                    WarmupJob.status,
                    WarmupJob.due_at,
                    WarmupJob.lease_expires_at,
                    WarmupJob.message_id,
                )
            )
        }
        report.jobs = len(report.states)
        report.unfinished = sorted(j for j, s in report.states.items() if s.status not in FINISHED)
        report.logged = Counter(
            dict(
                session.execute(
                    select(SendLog.message_id, func.count()).group_by(SendLog.message_id)
                ).all()
            )
        )
        report.possibly_delivered = (
            session.scalar(select(func.count()).where(*possibly_delivered())) or 0
        )
        report.found_delivered = (
            session.scalar(
                select(func.count()).where(
                    SendLog.status == JobStatus.SENT, SendLog.error.contains("found over IMAP")
                )
            )
            or 0
        )
    return report
