"""The one definition of "a send that counts".

Quota checks, plan limits and metrics all count through `sends_query`: a send counts when its
send-log entry has status `JobStatus.SENT` and was written inside `[since, until)`. The status is
the enum member, never a string, so the seed system's bug (written `SENT`, counted `sent`) has
nowhere to live.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from typing import Literal

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from warmup_dagster.db.models import JobKind, JobStatus, SendLog

GroupBy = Literal["mailbox", "user"]
_GROUP_COLUMNS = {"mailbox": SendLog.mailbox_id, "user": SendLog.user_id}


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
    """Build the counting query; every count of sends in the project goes through here.

    `local_date` keeps only sends of jobs of that local day (the day quotas and plan limits
    count a send for); `[since, until)` must then cover that day in every timezone.
    """
    group_col = _GROUP_COLUMNS[group_by] if group_by else None
    columns = (group_col, func.count()) if group_col is not None else (func.count(),)
    query = select(*columns).where(
        SendLog.status == JobStatus.SENT,
        SendLog.created_at >= since,
        SendLog.created_at < until,
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
    session: Session,
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
    session: Session,
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
