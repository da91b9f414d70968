"""The send queue's SQL, in one place: claim due jobs within every cap, record outcomes.

A claim is one transaction under the `warmup-send-claim` lock (an advisory lock on PostgreSQL,
the write lock on SQLite): it selects due jobs `FOR UPDATE SKIP LOCKED`, reads the counters
of every cap they touch, lets `core.admission.admit` decide, and in the same transaction marks
the admitted jobs PROCESSING with a lease, moves deferred ones to when they may go, fails
refused ones and raises the counters. Serial claims make the caps exact across any number of
sender runs on any number of machines; the lock is held for a few milliseconds per batch.

Outcomes are written in batches: one transaction per batch of results, not per email.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from warmup_dagster.core.admission import (
    Candidate,
    CounterKey,
    Decision,
    Limits,
    Scope,
    admit,
    counter_keys,
    day_keys,
)
from warmup_dagster.core.content import job_message_id
from warmup_dagster.core.delivery import Outcome, RetryPolicy
from warmup_dagster.core.slots import epoch_minute
from warmup_dagster.db.engine import chunks, exclusive, writing
from warmup_dagster.db.models import (
    DailyQuota,
    JobKind,
    JobStatus,
    Mailbox,
    MailboxState,
    Plan,
    SendCounter,
    SendLog,
    User,
    WarmupJob,
)
from warmup_dagster.settings import Settings

CLAIM_LOCK = "warmup-send-claim"
CLAIMABLE = (JobStatus.PENDING, JobStatus.RETRY)
# Keep minute and hour counters this long, day counters a week: enough for any report.
KEEP_MINUTES = 2 * 24 * 60
KEEP_DAYS = 7

_JOB = WarmupJob.__table__.c
_COUNTER = SendCounter.__table__


def limits_from(settings: Settings) -> Limits:
    return Limits(
        global_per_minute=settings.global_sends_per_minute,
        global_per_hour=settings.global_sends_per_hour,
        user_per_minute=settings.user_sends_per_minute,
        user_per_hour=settings.user_sends_per_hour,
        min_spacing=timedelta(minutes=settings.same_mailbox_delay_min),
        window_start_hour=settings.send_window_start_hour,
        window_end_hour=settings.send_window_end_hour,
    )


@dataclass(frozen=True)
class ClaimedJob:
    """An admitted job with what the sender needs; content is composed after the claim."""

    candidate: Candidate
    claimed_at: datetime
    kind: JobKind
    attempt: int
    sender: str
    recipient: str
    message_id: str  # the job's own, or derived from it (`core.content.job_message_id`)
    token: str
    content_seed: int
    subject: str | None
    body: str | None
    in_reply_to: str | None
    references: str | None
    smtp: tuple[Any, ...]  # host, port, security, username, encrypted password


@dataclass
class Claim:
    """What one claim did."""

    candidates: int = 0
    jobs: list[ClaimedJob] = field(default_factory=list)
    deferred: int = 0
    refused: int = 0
    reclaimed: int = 0
    blocked_until: datetime | None = None


def _due() -> Any:
    return (
        select(
            WarmupJob.id,
            WarmupJob.kind,
            WarmupJob.mailbox_id,
            WarmupJob.user_id,
            WarmupJob.local_date,
            WarmupJob.status,
            WarmupJob.attempts,
            WarmupJob.recipient_email,
            WarmupJob.message_id,
            WarmupJob.token,
            WarmupJob.content_seed,
            WarmupJob.subject,
            WarmupJob.body,
            WarmupJob.in_reply_to,
            WarmupJob.references,
            Mailbox.email,
            Mailbox.domain,
            Mailbox.timezone,
            Mailbox.smtp_host,
            Mailbox.smtp_port,
            Mailbox.smtp_security,
            Mailbox.smtp_username,
            Mailbox.smtp_password_enc,
        )
        .join(Mailbox, Mailbox.id == WarmupJob.mailbox_id)
        .where(Mailbox.state == MailboxState.ACTIVE)
    )


def _claimable(now: datetime) -> tuple[Any, ...]:
    return (WarmupJob.status.in_(CLAIMABLE), WarmupJob.due_at <= now)


def _expired(now: datetime) -> tuple[Any, ...]:
    return (WarmupJob.status == JobStatus.PROCESSING, WarmupJob.lease_expires_at < now)


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
        rows = list(conn.execute(_due().where(*_expired(now)).limit(limit).with_for_update(**lock)))
        if len(rows) < limit:
            rows += conn.execute(
                _due()
                .where(*_claimable(now))
                .order_by(WarmupJob.due_at)
                .limit(limit - len(rows))
                .with_for_update(**lock)
            )
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
                reclaimed=r.status == JobStatus.PROCESSING,
            )
            for r in rows
        ]
        decision = admit(
            candidates,
            now,
            limits_from(settings),
            _counts(conn, candidates, now),
            _last_claimed(conn, candidates),
            _quotas(conn, candidates),
            _plan_limits(conn, {c.user_id for c in candidates}),
        )
        _apply(conn, decision, now, worker_id, settings.send_lease_seconds)
    # What the sender needs of each job (a Message-ID derived for each new one) is made after
    # the lock is released: every sender run's claims queue for it.
    by_id = {r.id: r for r in rows}
    result.jobs = [_claimed(c, now, by_id[c.job_id], token_key) for c in decision.admitted]
    result.deferred = len(decision.deferred)
    result.refused = len(decision.refused)
    result.reclaimed = sum(1 for c in decision.admitted if c.reclaimed)
    result.blocked_until = decision.blocked_until
    return result


def _claimed(c: Candidate, now: datetime, r: Any, token_key: bytes) -> ClaimedJob:
    message_id, token = r.message_id, r.token
    if message_id is None:
        message_id, token = job_message_id(token_key, r.id, r.content_seed, r.domain)
    return ClaimedJob(
        candidate=c,
        claimed_at=now,
        kind=r.kind,
        attempt=r.attempts + 1,
        sender=r.email,
        recipient=r.recipient_email,
        message_id=message_id,
        token=token,
        content_seed=r.content_seed,
        subject=r.subject,
        body=r.body,
        in_reply_to=r.in_reply_to,
        references=r.references,
        smtp=(r.smtp_host, r.smtp_port, r.smtp_security, r.smtp_username, r.smtp_password_enc),
    )


def _counts(conn: Connection, candidates: list[Candidate], now: datetime) -> dict[CounterKey, int]:
    # A reclaimed job's day counts are not checked again, so its keys leave them out too.
    keys = list({key for c in candidates for key in counter_keys(c, now)})
    columns = (_COUNTER.c.scope, _COUNTER.c.subject_id, _COUNTER.c.period)
    found: dict[CounterKey, int] = {}
    for part in chunks(keys, 1000):  # three parameters per key
        query = select(*columns, _COUNTER.c.used).where(tuple_(*columns).in_(part))
        for scope, subject, period, used in conn.execute(query):
            found[scope, subject, period] = used
    return found


def _last_claimed(conn: Connection, candidates: list[Candidate]) -> dict[int, datetime]:
    """Per mailbox, when any of its jobs was last claimed (the spacing's reference)."""
    since = min(c.local_date for c in candidates) - timedelta(days=1)
    query = (
        select(WarmupJob.mailbox_id, func.max(WarmupJob.picked_at))
        .where(
            WarmupJob.mailbox_id.in_({c.mailbox_id for c in candidates}),
            WarmupJob.local_date >= since,
        )
        .group_by(WarmupJob.mailbox_id)
    )
    return {box: at for box, at in conn.execute(query) if at is not None}


def _quotas(conn: Connection, candidates: list[Candidate]) -> dict[tuple[int, date], int]:
    pairs = {(c.mailbox_id, c.local_date) for c in candidates if c.counts_toward_quota}
    if not pairs:
        return {}
    query = select(DailyQuota.mailbox_id, DailyQuota.local_date, DailyQuota.quota).where(
        DailyQuota.mailbox_id.in_({box for box, _ in pairs}),
        DailyQuota.local_date.in_({day for _, day in pairs}),
    )
    return {(box, day): quota for box, day, quota in conn.execute(query)}


def _plan_limits(conn: Connection, users: set[int]) -> dict[int, int]:
    query = (
        select(User.id, Plan.daily_send_limit)
        .join(Plan, Plan.id == User.plan_id)
        .where(User.id.in_(users))
    )
    return dict(conn.execute(query).all())


def _apply(
    conn: Connection, decision: Decision, now: datetime, worker_id: str, lease_seconds: int
) -> None:
    if decision.admitted:
        conn.execute(
            update(WarmupJob)
            .where(WarmupJob.id.in_([c.job_id for c in decision.admitted]))
            .values(
                status=JobStatus.PROCESSING,
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
            [{"job": c.job_id, "why": f"not sent: {why}"} for c, why in decision.refused],
        )
    bump_counters(conn, deltas)


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


def _lock_order(item: tuple[CounterKey, int]) -> tuple[str, int, int]:
    (scope, subject, period), _ = item
    return scope.name, subject, period


def bump_counters(conn: Connection, deltas: Counter[CounterKey]) -> None:
    """Add `deltas` to the stored counters in one statement (an upsert).

    Rows are written in one order everywhere, so two transactions can't deadlock on them.
    """
    rows = [
        {"scope": scope.name, "subject_id": subject, "period": period, "used": n}
        for (scope, subject, period), n in sorted(deltas.items(), key=_lock_order)
        if n
    ]
    if not rows:
        return
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = dialect_insert(_COUNTER)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["scope", "period", "subject_id"],
            set_={"used": _COUNTER.c.used + stmt.excluded.used},
        ),
        rows,
    )


def prune_counters(engine: Engine, now: datetime) -> int:
    """Delete counters no cap will read again; returns how many."""
    minute = epoch_minute(now)
    old_day = now.date().toordinal() - KEEP_DAYS
    with writing(engine) as conn:
        deleted = 0
        for scopes, before in (
            ((Scope.GLOBAL_MINUTE, Scope.USER_MINUTE), minute - KEEP_MINUTES),
            ((Scope.GLOBAL_HOUR, Scope.USER_HOUR), (minute - KEEP_MINUTES) // 60),
            ((Scope.USER_DAY, Scope.MAILBOX_DAY), old_day),
        ):
            deleted += conn.execute(
                delete(SendCounter).where(
                    SendCounter.scope.in_(scopes), SendCounter.period < before
                )
            ).rowcount
        return deleted


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
    """What recording a batch of results did (with the policy applied)."""

    outcomes: Counter[Outcome] = field(default_factory=Counter)
    paused: set[int] = field(default_factory=set)


def record(
    engine: Engine,
    results: Sequence[Result],
    worker_id: str,
    policy: RetryPolicy,
    rng: random.Random,
) -> Recorded:
    """Write a batch of outcomes in one transaction: jobs, send log, counters, mailboxes.

    Every attempt is logged. The rest applies only to jobs this attempt still holds (same
    worker, same claim, still PROCESSING, locked here): if a lease ran out and another run
    reclaimed a job, this late outcome changes neither the job nor the counters.
    """
    recorded = Recorded()
    with writing(engine) as conn:
        held = _still_held(conn, results, worker_id)
        updates: dict[Outcome, list[dict[str, Any]]] = defaultdict(list)
        release: Counter[CounterKey] = Counter()
        hard_failures: Counter[int] = Counter()
        pause_reasons: dict[int, str] = {}
        log_rows = []
        for r in results:
            c = r.job.candidate
            outcome = policy.next_outcome(r.outcome, r.job.attempt)
            log_rows.append(_log_row(r, outcome, worker_id))
            if c.job_id not in held:
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
        conn.execute(insert(SendLog.__table__), log_rows)
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
                WarmupJob.status == JobStatus.PROCESSING,
            )
            .with_for_update()
        )
        held.update(job for job, picked in rows if picked == claimed[job])
    return held


def _log_row(r: Result, outcome: Outcome, worker_id: str) -> dict[str, Any]:
    c = r.job.candidate
    return {
        "job_id": c.job_id,
        "mailbox_id": c.mailbox_id,
        "user_id": c.user_id,
        "kind": r.job.kind.name,
        "recipient_email": r.job.recipient,
        "message_id": r.job.message_id,
        # A paused mailbox's job is held for a later attempt: logged as a retry.
        "status": (JobStatus.RETRY if outcome is Outcome.PAUSE else JobStatus[outcome.name]).name,
        "attempt": r.job.attempt,
        "smtp_code": r.code,
        "smtp_reply": r.reply or None,
        "error": r.error,
        "worker_id": worker_id,
        "claimed_at": r.job.claimed_at,
        "local_date": c.local_date,
        "created_at": r.at,
    }


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


def extend_leases(engine: Engine, worker_id: str, job_ids: Iterable[int], until: datetime) -> None:
    """Keep the jobs this worker still holds from being reclaimed while it works on them."""
    with writing(engine) as conn:
        for part in chunks(sorted(job_ids)):
            conn.execute(
                update(WarmupJob)
                .where(
                    WarmupJob.id.in_(part),
                    WarmupJob.worker_id == worker_id,
                    WarmupJob.status == JobStatus.PROCESSING,
                )
                .values(lease_expires_at=until)
            )


def due_count(engine: Engine, now: datetime, cap: int) -> int:
    """How many jobs could be claimed now, counting no further than `cap`."""
    with engine.connect() as conn:
        due = conn.scalar(
            select(func.count()).select_from(_due().where(*_claimable(now)).limit(cap).subquery())
        )
        expired = conn.scalar(
            select(func.count()).select_from(_due().where(*_expired(now)).limit(cap).subquery())
        )
    return min(cap, (due or 0) + (expired or 0))


def next_due(engine: Engine) -> datetime | None:
    """When the earliest claimable job of an active mailbox comes due."""
    with engine.connect() as conn:
        return conn.scalar(
            select(WarmupJob.due_at)
            .join(Mailbox, Mailbox.id == WarmupJob.mailbox_id)
            .where(WarmupJob.status.in_(CLAIMABLE), Mailbox.state == MailboxState.ACTIVE)
            .order_by(WarmupJob.due_at)
            .limit(1)
        )
