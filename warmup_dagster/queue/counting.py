"""Counting sends, by the one definition (see the package docstring).

A send counts when its `send_log` row has status `JobStatus.SENT` and is not late. The status
is the enum member, never a string, so the bug of the system this project replaces (written
`SENT`, counted `sent`) has nowhere to live. Quotas, plan limits and metrics count through
`sends_query`; what a day's plan limit has used is those sends plus the jobs still queued
(`day_usage`), the same definition the day counters hold (with the jobs in flight). The
attempts whose outcome nobody knows (abandoned by a dead run, perhaps delivered) are counted
apart, by `possibly_delivered`: never as sends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from datetime import date, datetime
from typing import Literal

from sqlalchemy import Select, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from warmup_dagster.core.reasons import POSSIBLY_DELIVERED
from warmup_dagster.db.dialect import among
from warmup_dagster.db.models import JobKind, JobStatus, SendLog, WarmupJob
from warmup_dagster.queue.states import QUEUED

GroupBy = Literal["mailbox", "user"]
_GROUP_COLUMNS = {"mailbox": SendLog.mailbox_id, "user": SendLog.user_id}


def counted() -> tuple[ColumnElement[bool], ...]:
    """The `send_log` rows that are sends that count."""
    return (SendLog.status == JobStatus.SENT, SendLog.late.is_(False))


def possibly_delivered() -> tuple[ColumnElement[bool], ...]:
    """The `send_log` rows closing an abandoned attempt: a claim's lease ran out and another
    claim took its job over, so nobody knows whether that attempt's message went out.

    Not a send (nothing counts it toward a quota or a cap's sends); the figure an operator
    reads to see how many second copies the day may hold.
    """
    return (
        SendLog.status == JobStatus.RETRY,
        SendLog.error.startswith(POSSIBLY_DELIVERED, autoescape=True),
    )


def abandoned_before(conn: Connection, job_ids: Collection[int]) -> set[int]:
    """The jobs among `job_ids` with an abandoned attempt (`possibly_delivered`) in their log.

    Such a job's message may be in its recipient's mailbox even when its status no longer
    says so: a claim that takes a job over and defers it (spacing, a cap) makes it a RETRY,
    and the claim that sends it later sees no lease that ran out.
    """
    found: set[int] = set()
    for among_jobs in among(conn, SendLog.job_id, job_ids):
        found.update(
            conn.scalars(select(SendLog.job_id).where(among_jobs, *possibly_delivered()).distinct())
        )
    return found


def count_possibly_delivered(
    session: Session | Connection,
    since: datetime,
    until: datetime,
    *,
    mailbox_id: int | None = None,
) -> int:
    """Count the abandoned attempts (`possibly_delivered`) closed inside `[since, until)`."""
    query = select(func.count()).where(
        *possibly_delivered(), SendLog.created_at >= since, SendLog.created_at < until
    )
    if mailbox_id is not None:
        query = query.where(SendLog.mailbox_id == mailbox_id)
    return session.scalar(query) or 0


def sends_query(
    since: datetime,
    until: datetime,
    *,
    mailbox_ids: Collection[int] | None = None,
    user_ids: Collection[int] | None = None,
    kind: JobKind | None = None,
    local_date: date | None = None,
    group_by: GroupBy | None = None,
) -> Select:
    """Build the counting query of sends written inside `[since, until)`.

    `local_date` keeps only sends of jobs of that local day (the day quotas and plan limits
    count a send for); `[since, until)` must then cover that day in every timezone.
    """
    group_col = _GROUP_COLUMNS[group_by] if group_by else None
    columns = (group_col, func.count()) if group_col is not None else (func.count(),)
    query = select(*columns).where(
        *counted(), SendLog.created_at >= since, SendLog.created_at < until
    )
    if mailbox_ids is not None:
        query = query.where(SendLog.mailbox_id.in_(list(mailbox_ids)))
    if user_ids is not None:
        query = query.where(SendLog.user_id.in_(list(user_ids)))
    if kind is not None:
        query = query.where(SendLog.kind == kind)
    if local_date is not None:
        query = query.where(SendLog.local_date == local_date)
    return query.group_by(group_col) if group_col is not None else query


def count_sends(
    session: Session | Connection,
    since: datetime,
    until: datetime,
    *,
    mailbox_id: int | None = None,
    user_id: int | None = None,
    kind: JobKind | None = None,
) -> int:
    """Count the sends of one mailbox, one user, or everyone, over `[since, until)`."""
    query = sends_query(
        since,
        until,
        mailbox_ids=None if mailbox_id is None else [mailbox_id],
        user_ids=None if user_id is None else [user_id],
        kind=kind,
    )
    return session.scalar(query) or 0


def count_sends_by(
    session: Session | Connection,
    group_by: GroupBy,
    since: datetime,
    until: datetime,
    *,
    ids: Collection[int] | None = None,
    local_date: date | None = None,
) -> dict[int, int]:
    """Count sends per mailbox or per user over `[since, until)`; absent ids sent nothing.

    With `local_date`, only sends counted for that local day (see `sends_query`).
    """
    query = sends_query(
        since,
        until,
        mailbox_ids=ids if group_by == "mailbox" else None,
        user_ids=ids if group_by == "user" else None,
        local_date=local_date,
        group_by=group_by,
    )
    return {key: count for key, count in session.execute(query)}


def count_queued() -> ColumnElement[int]:
    """Queued jobs, counted with FILTER, not selected with WHERE: with the status in the WHERE
    clause, PostgreSQL went by the (status, due_at) index whenever its statistics had not seen
    the day's new jobs, and read every user's jobs (ten times slower)."""
    return func.count().filter(WarmupJob.status.in_(QUEUED))


def day_usage(
    conn: Connection, user_ids: Collection[int], day: date, since: datetime, until: datetime
) -> Counter[int]:
    """Per user, what the plan's limit for local date `day` has used: the sends that count,
    plus the jobs still queued. Everything of `day` lies in `[since, until)` (which lets the
    `(user_id, due_at)` index find the jobs)."""
    used: Counter[int] = Counter(
        count_sends_by(conn, "user", since, until, ids=user_ids, local_date=day)
    )
    for among_users in among(conn, WarmupJob.user_id, user_ids):
        used.update(
            dict(
                conn.execute(
                    select(WarmupJob.user_id, count_queued())
                    .where(
                        among_users,
                        WarmupJob.due_at >= since,
                        WarmupJob.due_at < until,
                        WarmupJob.local_date == day,
                    )
                    .group_by(WarmupJob.user_id)
                ).all()
            )
        )
    return used
