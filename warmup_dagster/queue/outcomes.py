"""Recording the outcomes of attempts: one transaction per batch of results, not per email."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection, Engine

from warmup_dagster.core.admission import CounterKey, day_keys
from warmup_dagster.core.delivery import Outcome, RetryPolicy
from warmup_dagster.db.engine import chunks, writing
from warmup_dagster.db.models import JobStatus, Mailbox, MailboxState, WarmupJob
from warmup_dagster.queue.claim import ClaimedJob
from warmup_dagster.queue.counters import bump_counters
from warmup_dagster.queue.log import log_row, write_log
from warmup_dagster.queue.states import IN_FLIGHT
from warmup_dagster.queue.totals import TotalKey, attempt_totals, bump_totals

_JOB = WarmupJob.__table__.c


@dataclass(frozen=True)
class Result:
    """The outcome of one claimed job's attempt, as the sender saw it."""

    job: ClaimedJob
    outcome: Outcome
    code: int | None
    reply: str
    error: str | None
    at: datetime
    subject: str
    body: str


@dataclass
class Recorded:
    """What recording a batch of results did (with the policy applied).

    `outcomes` counts the results applied; `late` the ones that came after another claim took
    their job over (logged, counted nowhere). A late SENT is a message that went out although
    the job had been handed to another run: most likely a duplicate.
    """

    outcomes: Counter[Outcome] = field(default_factory=Counter)
    late: Counter[Outcome] = field(default_factory=Counter)
    paused: set[int] = field(default_factory=set)


def record(
    engine: Engine,
    results: Sequence[Result],
    worker_id: str,
    policy: RetryPolicy,
    rng: random.Random,
) -> Recorded:
    """Write a batch of outcomes in one transaction: jobs, send log, counters, mailboxes,
    and the totals the metrics read.

    Every attempt is logged. The rest applies only to jobs this attempt still holds (same
    worker, same claim, still in flight, locked here): if a lease ran out and another run
    reclaimed a job, that claim closed this attempt already; this late outcome is logged as
    late and changes neither the job nor the counters.
    """
    recorded = Recorded()
    with writing(engine) as conn:
        held = _still_held(conn, results, worker_id)
        updates: dict[Outcome, list[dict[str, Any]]] = defaultdict(list)
        release: Counter[CounterKey] = Counter()
        hard_failures: Counter[int] = Counter()
        pause_reasons: dict[int, str] = {}
        totals: Counter[TotalKey] = Counter()
        log_rows = []
        for r in results:
            c = r.job.candidate
            outcome = policy.next_outcome(r.outcome, r.job.attempt)
            late = c.job_id not in held
            log_rows.append(_log_row(r, outcome, worker_id, late=late))
            totals.update(attempt_totals(r.job.kind, outcome, r.code, late, r.job.claimed_at, r.at))
            if late:
                recorded.late[outcome] += 1
                continue
            recorded.outcomes[outcome] += 1
            row = {
                "job": c.job_id,
                "message_id": r.job.message_id,
                "token": r.job.token,
                "code": r.code,
                "reply": r.reply or None,
                "error": r.error,
                "at": r.at,
            }
            if outcome is Outcome.SENT:
                row |= {"subject": r.subject, "body": r.body}
            elif outcome is Outcome.RETRY:
                row["due"] = r.at + timedelta(seconds=policy.delay(r.job.attempt, rng))
            updates[outcome].append(row)
            if outcome is not Outcome.SENT:
                release.subtract(day_keys(c))
            if outcome is Outcome.FAILED and r.code is not None and r.code >= 500:
                hard_failures[c.mailbox_id] += 1
            if outcome is Outcome.PAUSE:
                pause_reasons.setdefault(c.mailbox_id, r.error or f"SMTP {r.code}")
        for outcome, rows in updates.items():
            conn.execute(_OUTCOME_UPDATES[outcome], rows)
        write_log(conn, log_rows)
        bump_counters(conn, release)
        # Mailboxes in id order, as everywhere, so two runs' records can't deadlock.
        if hard_failures:
            box = Mailbox.__table__.c
            conn.execute(
                update(Mailbox.__table__)
                .where(box.id == bindparam("box"))
                .values(hard_failures=box.hard_failures + bindparam("n")),
                [{"box": b, "n": n} for b, n in sorted(hard_failures.items())],
            )
        if pause_reasons:
            _pause(conn, pause_reasons, results[0].at)
            recorded.paused = set(pause_reasons)
        bump_totals(conn, totals)
    return recorded


def _still_held(conn: Connection, results: Sequence[Result], worker_id: str) -> set[int]:
    """The results' jobs this worker still holds from the same claim, locked until commit."""
    claimed = {r.job.candidate.job_id: r.job.claimed_at for r in results}
    held: set[int] = set()
    for part in chunks(sorted(claimed)):
        rows = conn.execute(
            select(WarmupJob.id, WarmupJob.picked_at)
            .where(
                WarmupJob.id.in_(part),
                WarmupJob.worker_id == worker_id,
                WarmupJob.status == IN_FLIGHT,
            )
            .with_for_update()
        )
        held.update(job for job, picked in rows if picked == claimed[job])
    return held


def _log_row(r: Result, outcome: Outcome, worker_id: str, late: bool) -> dict[str, Any]:
    c = r.job.candidate
    return log_row(
        job_id=c.job_id,
        mailbox_id=c.mailbox_id,
        user_id=c.user_id,
        kind=r.job.kind,
        recipient=r.job.recipient,
        message_id=r.job.message_id,
        # A paused mailbox's job is held for a later attempt: logged as a retry.
        status=JobStatus.RETRY if outcome is Outcome.PAUSE else JobStatus[outcome.name],
        attempt=r.job.attempt,
        worker_id=worker_id,
        claimed_at=r.job.claimed_at,
        local_date=c.local_date,
        at=r.at,
        code=r.code,
        reply=r.reply,
        error=r.error,
        late=late,
    )


def _pause(conn: Connection, reasons: dict[int, str], now: datetime) -> None:
    box = Mailbox.__table__.c
    conn.execute(
        update(Mailbox.__table__)
        .where(box.id == bindparam("box"), box.state == MailboxState.ACTIVE.name)
        .values(
            state=MailboxState.PAUSED.name,
            state_reason=bindparam("why"),
            state_changed_at=now,
            updated_at=now,
        ),
        [{"box": b, "why": f"paused by the sender: {why}"} for b, why in sorted(reasons.items())],
    )


def _outcome_update(status: JobStatus, **values: Any) -> Any:
    return (
        update(WarmupJob.__table__)
        .where(_JOB.id == bindparam("job"))
        .values(
            status=status.name,
            # the id this attempt used, kept for the receiving side (the same at every attempt)
            message_id=bindparam("message_id"),
            token=bindparam("token"),
            smtp_code=bindparam("code"),
            smtp_reply=bindparam("reply"),
            error=bindparam("error"),
            lease_expires_at=None,
            updated_at=bindparam("at"),
            **values,
        )
    )


_OUTCOME_UPDATES = {
    Outcome.SENT: _outcome_update(
        JobStatus.SENT,
        sent_at=bindparam("at"),
        subject=bindparam("subject"),
        body=bindparam("body"),
    ),
    Outcome.RETRY: _outcome_update(JobStatus.RETRY, due_at=bindparam("due")),
    Outcome.FAILED: _outcome_update(JobStatus.FAILED),
    # Held, not failed: the job goes back to the queue and waits for the mailbox's resume.
    Outcome.PAUSE: _outcome_update(JobStatus.PENDING, worker_id=None),
}
