"""The planner's reads and writes. All SQL of planning lives here, by name."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import Integer, cast, delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from warmup_dagster.db.models import (
    DailyQuota,
    JobStatus,
    Mailbox,
    MailboxState,
    Plan,
    User,
    WarmupJob,
)

CHUNK = 5_000
# Jobs that still hold a slot (count against caps, spacing and the plan's limit).
QUEUED = (JobStatus.PENDING, JobStatus.PROCESSING, JobStatus.RETRY)

T = TypeVar("T")


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def epoch_minute(conn: Connection, column: Any) -> ColumnElement[int]:
    if conn.dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column) / 60), Integer)
    return cast(func.strftime("%s", column), Integer) / 60


def batch_mailboxes(conn: Connection, emails: Sequence[str]) -> list[Any]:
    """The mailboxes to plan (ORM objects), with the owner's plan limit."""
    session = Session(bind=conn)
    rows = []
    for part in chunks(list(emails)):
        rows += session.execute(
            select(Mailbox, Plan.daily_send_limit)
            .join(User, Mailbox.user_id == User.id)
            .join(Plan, User.plan_id == Plan.id)
            .where(Mailbox.email.in_(part))
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
        ).where(Mailbox.state == MailboxState.ACTIVE)
    ).all()


def planned_days(conn: Connection, ids: Collection[int], days: Collection[date]) -> set:
    found = set()
    for part in chunks(list(ids)):
        found |= set(
            conn.execute(
                select(DailyQuota.mailbox_id, DailyQuota.local_date).where(
                    DailyQuota.mailbox_id.in_(part), DailyQuota.local_date.in_(list(days))
                )
            ).all()
        )
    return found


def delete_pending(conn: Connection, targets: dict[date, list[int]]) -> int:
    """Remove never-attempted pending jobs of these mailbox-days: they are about to be replanned."""
    deleted = 0
    for day, ids in targets.items():
        for part in chunks(ids):
            deleted += conn.execute(
                delete(WarmupJob).where(
                    WarmupJob.mailbox_id.in_(part),
                    WarmupJob.local_date == day,
                    WarmupJob.status == JobStatus.PENDING,
                    WarmupJob.attempts == 0,
                )
            ).rowcount
    return deleted


def kept_jobs(
    conn: Connection, targets: dict[date, list[int]]
) -> dict[tuple[int, date], list[tuple[JobStatus, datetime]]]:
    """What stays of each mailbox-day after `delete_pending`: (status, due time) per job."""
    kept: dict[tuple[int, date], list[tuple[JobStatus, datetime]]] = defaultdict(list)
    for day, ids in targets.items():
        for part in chunks(ids):
            for box_id, status, due in conn.execute(
                select(WarmupJob.mailbox_id, WarmupJob.status, WarmupJob.due_at).where(
                    WarmupJob.mailbox_id.in_(part), WarmupJob.local_date == day
                )
            ):
                kept[box_id, day].append((status, due))
    return kept


def queued_by_user(
    conn: Connection, user_ids: Collection[int], since: datetime, until: datetime
) -> Counter[int]:
    """Jobs not yet sent but holding a slot, per user, due in `[since, until)`."""
    counts: Counter[int] = Counter()
    for part in chunks(list(user_ids)):
        counts.update(
            dict(
                conn.execute(
                    select(WarmupJob.user_id, func.count())
                    .where(
                        WarmupJob.user_id.in_(part),
                        WarmupJob.status.in_(QUEUED),
                        WarmupJob.due_at >= since,
                        WarmupJob.due_at < until,
                    )
                    .group_by(WarmupJob.user_id)
                ).all()
            )
        )
    return counts


def minute_load(
    conn: Connection, since: datetime, until: datetime, user_ids: Collection[int] | None
) -> Iterable[tuple[int, int, int]]:
    """(user id, epoch minute, jobs) of queued jobs in `[since, until)`.

    With `user_ids=None`, one row per minute for everybody (user id -1).
    """
    minute = epoch_minute(conn, WarmupJob.due_at)
    where = (WarmupJob.status.in_(QUEUED), WarmupJob.due_at >= since, WarmupJob.due_at < until)
    if user_ids is None:
        query = select(minute, func.count()).where(*where).group_by(minute)
        return [(-1, m, n) for m, n in conn.execute(query)]
    rows: list[tuple[int, int, int]] = []
    for part in chunks(list(user_ids)):
        query = (
            select(WarmupJob.user_id, minute, func.count())
            .where(*where, WarmupJob.user_id.in_(part))
            .group_by(WarmupJob.user_id, minute)
        )
        rows += [(u, m, n) for u, m, n in conn.execute(query)]
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
    for part in chunks(list(sender_ids)):
        for sender, recipient in conn.execute(
            select(WarmupJob.mailbox_id, WarmupJob.recipient_mailbox_id)
            .where(
                WarmupJob.mailbox_id.in_(part),
                WarmupJob.local_date >= since,
                WarmupJob.local_date <= until,
                WarmupJob.recipient_mailbox_id.is_not(None),
            )
            .distinct()
        ):
            pairs[sender].add(recipient)
    return pairs


def insert_jobs(conn: Connection, rows: list[dict[str, Any]]) -> None:
    for part in chunks(rows):
        conn.execute(insert(WarmupJob), list(part))


def upsert_daily_quotas(conn: Connection, rows: list[dict[str, Any]]) -> None:
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    for part in chunks(rows):
        statement = dialect_insert(DailyQuota)
        keys = {"mailbox_id", "local_date"}
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=list(keys),
                set_={k: statement.excluded[k] for k in part[0] if k not in keys},
            ),
            list(part),
        )
