"""The planner's reads, and its writes of `daily_quotas`, by name.

Jobs are written and replaced through `warmup_dagster.queue.enqueue`; the reads of jobs here
(minute loads, kept jobs, inbound counts, recent pairs) use the queue's status sets.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from warmup_dagster.db.dialect import among, copy_csv, epoch_minute_sql, is_postgresql, raw_cursor
from warmup_dagster.db.engine import chunks
from warmup_dagster.db.models import (
    DailyQuota,
    DomainCheck,
    Mailbox,
    MailboxHealth,
    MailboxState,
    Plan,
    User,
    WarmupJob,
)
from warmup_dagster.domains import gate
from warmup_dagster.health import gate as health_gate
from warmup_dagster.planning.model import Kept
from warmup_dagster.queue.counting import count_queued
from warmup_dagster.queue.states import QUEUED


def batch_mailboxes(conn: Connection, emails: Sequence[str]) -> list[Any]:
    """The mailboxes to plan, as rows of what planning reads, with the owner's plan limit,
    their domain's latest checks (`domains.gate.COLUMNS`) and their health
    (`health.gate.COLUMNS`)."""
    columns = [
        Mailbox.id, Mailbox.user_id, Mailbox.email, Mailbox.domain, Mailbox.timezone,
        Mailbox.state, Mailbox.state_reason, Mailbox.throttle, Mailbox.throttle_reason,
        Mailbox.daily_limit, Mailbox.ramp_start, Mailbox.ramp_step, Mailbox.warmup_start_date,
        Mailbox.weekdays_only, Mailbox.created_at, Plan.daily_send_limit.label("plan_limit"),
        *gate.COLUMNS, *health_gate.COLUMNS,
    ]  # fmt: skip
    rows = []
    for among_emails in among(conn, Mailbox.email, emails):
        rows += conn.execute(
            select(*columns)
            .join(User, Mailbox.user_id == User.id)
            .join(Plan, User.plan_id == Plan.id)
            .outerjoin(DomainCheck, DomainCheck.domain == Mailbox.domain)
            .outerjoin(MailboxHealth, MailboxHealth.mailbox_id == Mailbox.id)
            .where(among_emails)
        ).all()
    return rows


def pool_members(conn: Connection) -> list[Any]:
    """Every active mailbox: the recipients' side of pairing."""
    return conn.execute(
        select(
            Mailbox.id,
            Mailbox.user_id,
            Mailbox.email,
            Mailbox.domain,
            Mailbox.smtp_host,
            Mailbox.daily_limit,
            Mailbox.ramp_start,
            Mailbox.ramp_step,
            Mailbox.warmup_start_date,
            Mailbox.timezone,
            Mailbox.created_at,
        ).where(Mailbox.state == MailboxState.ACTIVE)
    ).all()


def planned_days(conn: Connection, ids: Collection[int], days: Collection[date]) -> set:
    found = set()
    for among_ids in among(conn, DailyQuota.mailbox_id, ids):
        found |= set(
            conn.execute(
                select(DailyQuota.mailbox_id, DailyQuota.local_date).where(
                    among_ids, DailyQuota.local_date.in_(list(days))
                )
            ).all()
        )
    return found


def kept_jobs(conn: Connection, targets: dict[date, list[int]]) -> Kept:
    """What stays of each mailbox-day after `queue.enqueue.replace_unattempted`: (status, due
    time, kind) per job."""
    kept: Kept = defaultdict(list)
    for day, ids in targets.items():
        for among_ids in among(conn, WarmupJob.mailbox_id, ids):
            for box_id, status, due, kind in conn.execute(
                select(
                    WarmupJob.mailbox_id, WarmupJob.status, WarmupJob.due_at, WarmupJob.kind
                ).where(among_ids, WarmupJob.local_date == day)
            ):
                kept[box_id, day].append((status, due, kind))
    return kept


def _due_between(since: datetime, until: datetime) -> tuple[ColumnElement[bool], ...]:
    return (WarmupJob.due_at >= since, WarmupJob.due_at < until)


def minute_load(conn: Connection, since: datetime, until: datetime) -> list[tuple[int, int]]:
    """(epoch minute, jobs) of everybody's queued jobs due in `[since, until)`."""
    minute = epoch_minute_sql(conn, WarmupJob.due_at)
    query = (
        select(minute, func.count())
        .where(WarmupJob.status.in_(QUEUED), *_due_between(since, until))
        .group_by(minute)
    )
    return [(m, n) for m, n in conn.execute(query)]


def user_minute_load(
    conn: Connection, since: datetime, until: datetime, user_ids: Collection[int]
) -> list[tuple[int, int, int]]:
    """(user id, epoch minute, jobs) of these users' queued jobs due in `[since, until)`."""
    minute = epoch_minute_sql(conn, WarmupJob.due_at)
    rows: list[tuple[int, int, int]] = []
    for among_users in among(conn, WarmupJob.user_id, user_ids):
        query = (
            select(WarmupJob.user_id, minute, count_queued())
            .where(among_users, *_due_between(since, until))
            .group_by(WarmupJob.user_id, minute)
        )
        rows += [(u, m, n) for u, m, n in conn.execute(query) if n]
    return rows


def inbound_counts(conn: Connection, day: date) -> Counter[int]:
    """Jobs addressed to each mailbox on local day `day` (the inbound side of fairness)."""
    return Counter(
        dict(
            conn.execute(
                select(WarmupJob.recipient_mailbox_id, func.count())
                .where(WarmupJob.local_date == day, WarmupJob.recipient_mailbox_id.is_not(None))
                .group_by(WarmupJob.recipient_mailbox_id)
            ).all()
        )
    )


def recent_pairs(
    conn: Connection, sender_ids: Collection[int], since: date, until: date
) -> dict[int, set[int]]:
    """Recipients each sender had on local days `[since, until]`."""
    pairs: dict[int, set[int]] = defaultdict(set)
    for among_senders in among(conn, WarmupJob.mailbox_id, sender_ids):
        for sender, recipient in conn.execute(
            select(WarmupJob.mailbox_id, WarmupJob.recipient_mailbox_id).where(
                among_senders,
                WarmupJob.local_date >= since,
                WarmupJob.local_date <= until,
                WarmupJob.recipient_mailbox_id.is_not(None),
            )
        ):
            pairs[sender].add(recipient)
    return pairs


def replace_daily_quotas(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Store each mailbox-day's planning outcome, replacing an earlier one (under the lock)."""
    by_day: dict[date, list[int]] = defaultdict(list)
    for row in rows:
        by_day[row["local_date"]].append(row["mailbox_id"])
    for day, ids in by_day.items():
        for among_ids in among(conn, DailyQuota.mailbox_id, ids):
            conn.execute(delete(DailyQuota).where(DailyQuota.local_date == day, among_ids))
    if not rows or not is_postgresql(conn):
        for part in chunks(rows):
            conn.execute(insert(DailyQuota), list(part))
        return
    # COPY: a day of 100,000 mailboxes took 3 s as INSERTs. Dates and times in ISO form; an
    # empty field is NULL.
    buffer = io.StringIO()
    csv.writer(buffer).writerows(
        [v.isoformat() if isinstance(v, date) else v for v in row.values()] for row in rows
    )
    with raw_cursor(conn) as cursor:
        copy_csv(cursor, "daily_quotas", list(rows[0]), buffer.getvalue())
