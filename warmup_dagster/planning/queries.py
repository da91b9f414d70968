"""The planner's reads and writes. All SQL of planning lives here, by name."""

from __future__ import annotations

import csv
import enum
import io
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime
from typing import Any

from sqlalchemy import Integer, cast, delete, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from warmup_dagster.db.engine import chunks
from warmup_dagster.db.models import (
    DailyQuota,
    JobStatus,
    Mailbox,
    MailboxState,
    Plan,
    User,
    WarmupJob,
)

# Jobs that still hold a slot (count against caps, spacing and the plan's limit).
QUEUED = (JobStatus.PENDING, JobStatus.PROCESSING, JobStatus.RETRY)


def _minute_sql(conn: Connection, column: Any) -> ColumnElement[int]:
    """The epoch minute of a time column, in SQL (`core.slots.epoch_minute` in Python)."""
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
                    .where(WarmupJob.user_id.in_(part), *_queued_between(since, until))
                    .group_by(WarmupJob.user_id)
                ).all()
            )
        )
    return counts


def _queued_between(since: datetime, until: datetime) -> tuple[ColumnElement[bool], ...]:
    return (WarmupJob.status.in_(QUEUED), WarmupJob.due_at >= since, WarmupJob.due_at < until)


def minute_load(conn: Connection, since: datetime, until: datetime) -> list[tuple[int, int]]:
    """(epoch minute, jobs) of everybody's queued jobs due in `[since, until)`."""
    minute = _minute_sql(conn, WarmupJob.due_at)
    query = select(minute, func.count()).where(*_queued_between(since, until)).group_by(minute)
    return [(m, n) for m, n in conn.execute(query)]


def user_minute_load(
    conn: Connection, since: datetime, until: datetime, user_ids: Collection[int]
) -> list[tuple[int, int, int]]:
    """(user id, epoch minute, jobs) of these users' queued jobs due in `[since, until)`."""
    minute = _minute_sql(conn, WarmupJob.due_at)
    rows: list[tuple[int, int, int]] = []
    for part in chunks(list(user_ids)):
        query = (
            select(WarmupJob.user_id, minute, func.count())
            .where(*_queued_between(since, until), WarmupJob.user_id.in_(part))
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


class JobWriter:
    """Writes new jobs, given as tuples in `columns` order, as they are produced.

    On PostgreSQL the rows go out with COPY (several times faster than INSERT), from a
    background thread: the server stores one chunk while Python builds the next, so the two
    cores of a small machine both work. Elsewhere, chunked INSERTs.
    """

    def __init__(self, conn: Connection, columns: Sequence[str], chunk: int = 20_000) -> None:
        self.conn, self.columns, self.chunk = conn, list(columns), chunk
        self.pending: list[tuple] = []
        self.convert: list[Callable[[Any], str] | None] | None = None
        self.copying = conn.dialect.name == "postgresql"
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="copy") if self.copying else None
        self.in_flight: Future | None = None
        self.cursor = conn.connection.dbapi_connection.cursor() if self.copying else None

    def add(self, row: tuple) -> None:
        self.pending.append(row)
        if len(self.pending) >= self.chunk:
            self._flush()

    def _flush(self) -> None:
        rows, self.pending = self.pending, []
        if not rows:
            return
        if not self.copying:
            self.conn.execute(
                insert(WarmupJob), [dict(zip(self.columns, r, strict=True)) for r in rows]
            )
            return
        if self.convert is None:  # only enums and dates need converting; found once
            self.convert = _copy_converters(rows[0])
        buffer = io.StringIO()
        convert = self.convert
        csv.writer(buffer).writerows(
            [v if f is None else f(v) for v, f in zip(row, convert, strict=True)] for row in rows
        )
        buffer.seek(0)
        self._wait()
        quoted = ", ".join(f'"{c}"' for c in self.columns)
        statement = f"COPY warmup_jobs ({quoted}) FROM STDIN WITH (FORMAT csv)"
        self.in_flight = self.pool.submit(self.cursor.copy_expert, statement, buffer)

    def _wait(self) -> None:
        if self.in_flight is not None:
            self.in_flight.result()
            self.in_flight = None

    def __enter__(self) -> JobWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            if exc_type is None:
                self._flush()
            self._wait()
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
                self.cursor.close()


def _copy_converters(first_row: tuple) -> list[Callable[[Any], str] | None]:
    """How each column is written for PostgreSQL's CSV COPY (None, an empty field, is NULL).

    Enums by name, dates and times in ISO form. Times repeat within a row (slot and due time,
    created and updated), so one converter shared by the time columns remembers its last value.
    """
    last: list[Any] = [None, ""]

    def timestamp(value: datetime) -> str:
        if value is not last[0]:
            last[0], last[1] = value, value.isoformat()
        return last[1]

    def converter(value: Any) -> Callable[[Any], str] | None:
        if isinstance(value, enum.Enum):
            return lambda v: v.name
        if isinstance(value, datetime):
            return timestamp
        if isinstance(value, date):
            return lambda v: v.isoformat()
        return None

    return [converter(value) for value in first_row]


def replace_daily_quotas(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Store each mailbox-day's planning outcome, replacing an earlier one (under the lock)."""
    by_day: dict[date, list[int]] = defaultdict(list)
    for row in rows:
        by_day[row["local_date"]].append(row["mailbox_id"])
    for day, ids in by_day.items():
        for part in chunks(ids):
            conn.execute(
                delete(DailyQuota).where(
                    DailyQuota.local_date == day, DailyQuota.mailbox_id.in_(part)
                )
            )
    for part in chunks(rows):
        conn.execute(insert(DailyQuota), list(part))
