"""Claiming due jobs within every cap, in one transaction under the claim lock.

A claim selects due jobs `FOR UPDATE SKIP LOCKED` (jobs whose lease ran out first), reads the
counters of every cap they touch, lets `core.admission.admit` decide, and in the same
transaction marks the admitted jobs in flight with a lease, moves deferred ones to when they
may go, fails refused ones and raises the counters (and the error totals of what it refused
or took over). Jobs of a mailbox that may not send for now (health PAUSED, its domain held:
`holds`) are deferred with the reason. Serial claims make the caps exact across
any number of sender runs on any number of machines; the lock is held for a few milliseconds
per batch. Taking over a job whose lease ran out closes the abandoned attempt with a log row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.engine import Connection, Engine

from warmup_dagster.core.admission import Candidate, Decision, admit, counter_keys, day_keys
from warmup_dagster.core.content import job_message_id
from warmup_dagster.core.reasons import (
    ABANDONED,
    POSSIBLY_DELIVERED,
    REFUSED_PREFIX,
    refusal_error,
)
from warmup_dagster.db.dialect import exclusive
from warmup_dagster.db.models import JobKind, JobStatus, WarmupJob
from warmup_dagster.queue.caps import carried, last_claimed, limits_from, plan_limits, quotas
from warmup_dagster.queue.counters import bump_counters, read_counters
from warmup_dagster.queue.counting import abandoned_before
from warmup_dagster.queue.due import due_jobs, earliest_due, expired
from warmup_dagster.queue.holds import RECHECK, held
from warmup_dagster.queue.log import log_row, write_log
from warmup_dagster.queue.states import IN_FLIGHT
from warmup_dagster.queue.totals import bump_totals, errors
from warmup_dagster.settings import Settings

CLAIM_LOCK = "warmup-send-claim"

_JOB = WarmupJob.__table__.c


@dataclass(frozen=True)
class ClaimedJob:
    """An admitted job with what the sender needs; content is composed after the claim."""

    candidate: Candidate
    claimed_at: datetime
    kind: JobKind
    attempt: int
    sender: str
    sender_name: str | None  # the mailbox's display name; None: derived from `sender`
    recipient: str
    message_id: str  # the job's own, or derived from it (`core.content.job_message_id`)
    token: str
    content_seed: int
    subject: str | None
    body: str | None
    in_reply_to: str | None
    references: str | None
    smtp: tuple[Any, ...]  # host, port, security, username, encrypted password
    # Reclaimed now, or an earlier attempt was (then deferred): its message may be delivered.
    possibly_delivered: bool = False


@dataclass
class Claim:
    """What one claim did."""

    candidates: int = 0
    jobs: list[ClaimedJob] = field(default_factory=list)
    deferred: int = 0
    refused: int = 0
    reclaimed: int = 0
    blocked_until: datetime | None = None


def claim(
    engine: Engine,
    settings: Settings,
    now_fn: Callable[[], datetime],
    worker_id: str,
    limit: int,
    token_key: bytes,
) -> Claim:
    """Claim up to `limit` due jobs for `worker_id` within every cap (see the module docstring).

    Jobs whose lease ran out (their sender died) are reclaimed first. A job without a
    Message-ID gets the one derived from it with `token_key`; `record` stores it.
    """
    with exclusive(engine, CLAIM_LOCK) as conn:
        # "now" inside the lock: successive claims see increasing times.
        now: datetime = now_fn()
        lock = {"of": WarmupJob, "skip_locked": True}
        rows = list(
            conn.execute(due_jobs().where(*expired(now)).limit(limit).with_for_update(**lock))
        )
        if len(rows) < limit:
            rows += earliest_due(conn, now, limit - len(rows))
        result = Claim(candidates=len(rows))
        if not rows:
            return result
        default_tz = settings.send_window_timezone
        candidates = [
            Candidate(
                job_id=r.id,
                mailbox_id=r.mailbox_id,
                user_id=r.user_id,
                local_date=r.local_date,
                timezone=r.timezone or default_tz,
                counts_toward_quota=r.kind == JobKind.SEND,
                reclaimed=r.status == IN_FLIGHT,
            )
            for r in rows
        ]
        limits = limits_from(settings)
        decision = admit(
            candidates,
            now,
            limits,
            # A reclaimed job's day counts are not checked again, so its keys leave them out.
            read_counters(conn, (key for c in candidates for key in counter_keys(c, now))),
            last_claimed(conn, candidates),
            quotas(conn, candidates),
            plan_limits(conn, {c.user_id for c in candidates}),
            carried(conn, now, limits.arrival_margin),
            held=held(conn, settings, {c.mailbox_id for c in candidates}),
            hold_until=now + RECHECK,
        )
        by_id = {r.id: r for r in rows}
        _apply(conn, decision, by_id, now, worker_id, settings.send_lease_seconds)
        abandoned = _close_abandoned(conn, decision, by_id, now, worker_id, token_key)
        refusals = [refusal_error(why) for _, why in decision.refused]
        bump_totals(conn, errors(refusals + [ABANDONED] * abandoned))
        # Only a job claimed before can have an abandoned attempt: most claims are of new jobs,
        # and this runs under the claim lock.
        again = [
            c.job_id for c in decision.admitted if by_id[c.job_id].attempts and not c.reclaimed
        ]
        earlier = abandoned_before(conn, again) if again else set()
    # What the sender needs of each job (a Message-ID derived for each new one) is made after
    # the lock is released: every sender run's claims queue for it.
    result.jobs = [
        _claimed(c, now, by_id[c.job_id], token_key, c.reclaimed or c.job_id in earlier)
        for c in decision.admitted
    ]
    result.deferred = len(decision.deferred)
    result.refused = len(decision.refused)
    result.reclaimed = sum(1 for c in decision.admitted if c.reclaimed)
    result.blocked_until = decision.blocked_until
    return result


def _message_id(r: Any, token_key: bytes) -> tuple[str, str]:
    if r.message_id is not None:
        return r.message_id, r.token
    return job_message_id(token_key, r.id, r.content_seed, r.domain)


def _claimed(
    c: Candidate, now: datetime, r: Any, token_key: bytes, possibly_delivered: bool
) -> ClaimedJob:
    message_id, token = _message_id(r, token_key)
    return ClaimedJob(
        candidate=c,
        claimed_at=now,
        kind=r.kind,
        attempt=r.attempts + 1,
        sender=r.email,
        sender_name=r.display_name,
        recipient=r.recipient_email,
        message_id=message_id,
        token=token,
        content_seed=r.content_seed,
        subject=r.subject,
        body=r.body,
        in_reply_to=r.in_reply_to,
        references=r.references,
        smtp=(r.smtp_host, r.smtp_port, r.smtp_security, r.smtp_username, r.smtp_password_enc),
        possibly_delivered=possibly_delivered,
    )


def _close_abandoned(
    conn: Connection,
    decision: Decision,
    by_id: dict[int, Any],
    now: datetime,
    worker_id: str,
    token_key: bytes,
) -> int:
    """Log the end of each reclaimed job's abandoned attempt: every claim ends in one row;
    returns how many.

    What became of that attempt is unknown (its run may have sent the mail before it died): the
    row says so (`core.reasons.POSSIBLY_DELIVERED`, counted by
    `counting.possibly_delivered`); it counts as a claim for the rate caps and as no send. If
    its run reports after all, the row `outcomes.record` writes is marked late.
    """
    taken = [c for c in decision.admitted if c.reclaimed]
    taken += [c for c, *_ in decision.deferred if c.reclaimed]
    taken += [c for c, _ in decision.refused if c.reclaimed]
    rows = []
    for c in taken:
        r = by_id[c.job_id]
        rows.append(
            log_row(
                job_id=r.id,
                mailbox_id=r.mailbox_id,
                user_id=r.user_id,
                kind=r.kind,
                recipient=r.recipient_email,
                message_id=_message_id(r, token_key)[0],
                status=JobStatus.RETRY,
                attempt=r.attempts,
                worker_id=r.worker_id,
                claimed_at=r.picked_at,
                local_date=r.local_date,
                at=now,
                error=f"{POSSIBLY_DELIVERED}; its lease ran out, taken over by {worker_id}",
            )
        )
    write_log(conn, rows)
    return len(rows)


def _apply(
    conn: Connection,
    decision: Decision,
    by_id: dict[int, Any],
    now: datetime,
    worker_id: str,
    lease_seconds: int,
) -> None:
    if decision.admitted:
        conn.execute(
            update(WarmupJob)
            .where(WarmupJob.id.in_([c.job_id for c in decision.admitted]))
            .values(
                status=IN_FLIGHT,
                picked_at=now,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                worker_id=worker_id,
                attempts=WarmupJob.attempts + 1,
                updated_at=now,
            )
        )
    deltas = Counter(decision.taken)
    # A reclaimed job that is not sent now gives back the day reservation its first claim took.
    for c in [c for c, *_ in decision.deferred] + [c for c, _ in decision.refused]:
        if c.reclaimed:
            deltas.subtract(day_keys(c))
    if decision.deferred:
        _defer(conn, decision.deferred, now)
    if decision.refused:
        conn.execute(
            update(WarmupJob.__table__)
            .where(_JOB.id == bindparam("job"))
            .values(
                status=JobStatus.FAILED.name,
                error=bindparam("why"),
                lease_expires_at=None,
                updated_at=now,
            ),
            [
                {"job": c.job_id, "why": _refusal(why, c, by_id[c.job_id].error)}
                for c, why in decision.refused
            ],
        )
    bump_counters(conn, deltas)


def _refusal(why: str, c: Candidate, before: str | None) -> str:
    """Why a job is not sent, and why it had been held until then: an operator needs both.

    A job that expires after waiting ("waiting: mailbox spacing") would otherwise show only
    that its day is over, not what kept it from going while the day lasted.
    """
    if c.reclaimed:
        # Its error is older than the claim whose lease ran out: the abandoned attempt held it.
        return f"{REFUSED_PREFIX}{why}; it had been claimed and its lease ran out"
    if not before:
        return f"{REFUSED_PREFIX}{why}"
    if before.startswith("waiting: "):
        return f"{REFUSED_PREFIX}{why}; it had been {before}"
    return f"{REFUSED_PREFIX}{why}; its last attempt: {before}"


def _defer(
    conn: Connection, deferred: list[tuple[Candidate, datetime, str]], now: datetime
) -> None:
    """Move deferred jobs to when they may go; a reclaimed one becomes a retry."""
    for reclaimed in (False, True):
        rows = [
            {"job": c.job_id, "due": due, "why": f"waiting: {why}"}
            for c, due, why in deferred
            if c.reclaimed is reclaimed
        ]
        if not rows:
            continue
        values: dict[str, Any] = {"due_at": bindparam("due"), "error": bindparam("why")}
        if reclaimed:
            values |= {"status": JobStatus.RETRY.name, "lease_expires_at": None}
        conn.execute(
            update(WarmupJob.__table__)
            .where(_JOB.id == bindparam("job"))
            .values(updated_at=now, **values),
            rows,
        )
