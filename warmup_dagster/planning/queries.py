"""The planner's reads and writes. All SQL of planning lives here, by name."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict, deque
from collections.abc import Collection, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime
from typing import Any

from sqlalchemy import Integer, cast, delete, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from warmup_dagster.db.engine import among, chunks
from warmup_dagster.db.models import (
    DailyQuota,
    JobKind,
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
    """The mailboxes to plan, as rows of what planning reads, with the owner's plan limit."""
    columns = [
        Mailbox.id, Mailbox.user_id, Mailbox.email, Mailbox.domain, Mailbox.timezone,
        Mailbox.state, Mailbox.state_reason, Mailbox.throttle, Mailbox.throttle_reason,
        Mailbox.daily_limit, Mailbox.ramp_start, Mailbox.ramp_step, Mailbox.warmup_start_date,
        Mailbox.weekdays_only, Plan.daily_send_limit.label("plan_limit"),
    ]  # fmt: skip
    rows = []
    for among_emails in among(conn, Mailbox.email, emails):
        rows += conn.execute(
            select(*columns)
            .join(User, Mailbox.user_id == User.id)
            .join(Plan, User.plan_id == Plan.id)
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


def delete_pending(conn: Connection, targets: dict[date, list[int]]) -> int:
    """Remove never-attempted pending send jobs of these mailbox-days: they are replanned.

    Replies stay: they answer mail that was received, and planning doesn't make them.
    """
    deleted = 0
    for day, ids in targets.items():
        for among_ids in among(conn, WarmupJob.mailbox_id, ids):
            deleted += conn.execute(
                delete(WarmupJob).where(
                    among_ids,
                    WarmupJob.local_date == day,
                    WarmupJob.kind == JobKind.SEND,
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
        for among_ids in among(conn, WarmupJob.mailbox_id, ids):
            for box_id, status, due in conn.execute(
                select(WarmupJob.mailbox_id, WarmupJob.status, WarmupJob.due_at).where(
                    among_ids, WarmupJob.local_date == day
                )
            ):
                kept[box_id, day].append((status, due))
    return kept


def queued_by_user(
    conn: Connection, user_ids: Collection[int], day: date, since: datetime, until: datetime
) -> Counter[int]:
    """Jobs of local date `day` not yet sent but holding a slot, per user; all are due in
    `[since, until)` (which lets the `(user_id, due_at)` index find them)."""
    counts: Counter[int] = Counter()
    for among_users in among(conn, WarmupJob.user_id, user_ids):
        counts.update(
            dict(
                conn.execute(
                    select(WarmupJob.user_id, _count_queued())
                    .where(among_users, *_due_between(since, until), WarmupJob.local_date == day)
                    .group_by(WarmupJob.user_id)
                ).all()
            )
        )
    return counts


def _due_between(since: datetime, until: datetime) -> tuple[ColumnElement[bool], ...]:
    return (WarmupJob.due_at >= since, WarmupJob.due_at < until)


def _count_queued() -> ColumnElement[int]:
    """Per user, queued jobs are counted with FILTER, not selected with WHERE: with the status
    in the WHERE clause, PostgreSQL went by the (status, due_at) index whenever its statistics
    had not seen the day's new jobs, and read every user's jobs (ten times slower)."""
    return func.count().filter(WarmupJob.status.in_(QUEUED))


def minute_load(conn: Connection, since: datetime, until: datetime) -> list[tuple[int, int]]:
    """(epoch minute, jobs) of everybody's queued jobs due in `[since, until)`."""
    minute = _minute_sql(conn, WarmupJob.due_at)
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
    minute = _minute_sql(conn, WarmupJob.due_at)
    rows: list[tuple[int, int, int]] = []
    for among_users in among(conn, WarmupJob.user_id, user_ids):
        query = (
            select(WarmupJob.user_id, minute, _count_queued())
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


JOB_COLUMNS = (
    "kind", "mailbox_id", "user_id", "local_date", "recipient_mailbox_id", "recipient_email",
    "scheduled_at", "due_at", "content_seed", "status", "attempts", "created_at", "updated_at",
)  # fmt: skip


class JobWriter:
    """Writes the new send jobs of a planning call, one mailbox-day at a time.

    On PostgreSQL the rows go out with COPY (several times faster than INSERT), from a
    background thread, so the two cores of a small machine both work. Chunks queue up rather
    than wait for the server: planning makes its jobs in bursts (each part's writing), and the
    server stores them while the next part is computed. Each CSV line is one f-string: with a
    million jobs a day, a general CSV writer with a converter per value cost more than the rest
    of the writing. Elsewhere, chunked INSERTs.
    """

    def __init__(
        self, conn: Connection, now: datetime, chunk: int = 20_000, backlog: int = 20
    ) -> None:
        self.conn, self.now, self.chunk, self.backlog = conn, now, chunk, backlog
        self.pending: list = []
        self.copying = conn.dialect.name == "postgresql"
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="copy") if self.copying else None
        self.in_flight: deque[Future] = deque()
        self.cursor = conn.connection.dbapi_connection.cursor() if self.copying else None
        # the columns every new job shares: pending, never attempted, created now
        self.tail = f",{JobStatus.PENDING.name},0,{now.isoformat()},{now.isoformat()}\n"
        self.quoted: dict[str, str] = {}

    def add_day(
        self,
        mailbox_id: int,
        user_id: int,
        day: date,
        jobs: Iterable[tuple[int, str, datetime, int]],
    ) -> None:
        """Queue one mailbox-day's jobs: (recipient id, its address, slot, content seed) each.

        The slot is also the first due time; the Message-ID is set when the job is first
        attempted (`core.content.job_message_id`)."""
        if not self.copying:
            self.pending += [
                {
                    "kind": JobKind.SEND,
                    "mailbox_id": mailbox_id,
                    "user_id": user_id,
                    "local_date": day,
                    "recipient_mailbox_id": recipient,
                    "recipient_email": email,
                    "scheduled_at": when,
                    "due_at": when,
                    "content_seed": seed,
                    "status": JobStatus.PENDING,
                    "attempts": 0,
                    "created_at": self.now,
                    "updated_at": self.now,
                }
                for recipient, email, when, seed in jobs
            ]
        else:
            head = f"{JobKind.SEND.name},{mailbox_id},{user_id},{day.isoformat()},"
            tail, quoted = self.tail, self.quoted
            for recipient, email, when, seed in jobs:
                at = when.isoformat()
                address = quoted.get(email) or self._quote(email)
                self.pending.append(f"{head}{recipient},{address},{at},{at},{seed}{tail}")
        if len(self.pending) >= self.chunk:
            self._flush()

    def _quote(self, value: str) -> str:
        """A CSV field for `value` (addresses are validated, so this rarely quotes)."""
        field = value
        if any(c in value for c in ',"\r\n'):
            field = '"' + value.replace('"', '""') + '"'
        self.quoted[value] = field
        return field

    def _flush(self) -> None:
        rows, self.pending = self.pending, []
        if not rows:
            return
        if not self.copying:
            self.conn.execute(insert(WarmupJob), rows)
            return
        self.in_flight.append(
            self.pool.submit(_copy, self.cursor, "warmup_jobs", JOB_COLUMNS, "".join(rows))
        )
        while self.in_flight and (self.in_flight[0].done() or len(self.in_flight) > self.backlog):
            self.in_flight.popleft().result()  # raises what the COPY raised

    def _wait(self) -> None:
        while self.in_flight:
            self.in_flight.popleft().result()

    def __enter__(self) -> JobWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            if exc_type is None:
                self._flush()
                self._wait()
        finally:
            if self.pool is not None:
                # After an error the transaction is lost: queued chunks are dropped, and what
                # they would raise must not hide the first error.
                self.pool.shutdown(wait=True, cancel_futures=True)
                self.cursor.close()


def replace_daily_quotas(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Store each mailbox-day's planning outcome, replacing an earlier one (under the lock)."""
    by_day: dict[date, list[int]] = defaultdict(list)
    for row in rows:
        by_day[row["local_date"]].append(row["mailbox_id"])
    for day, ids in by_day.items():
        for among_ids in among(conn, DailyQuota.mailbox_id, ids):
            conn.execute(delete(DailyQuota).where(DailyQuota.local_date == day, among_ids))
    if not rows or conn.dialect.name != "postgresql":
        for part in chunks(rows):
            conn.execute(insert(DailyQuota), list(part))
        return
    # COPY: a day of 100,000 mailboxes took 3 s as INSERTs. Dates and times in ISO form; an
    # empty field is NULL.
    buffer = io.StringIO()
    csv.writer(buffer).writerows(
        [v.isoformat() if isinstance(v, date) else v for v in row.values()] for row in rows
    )
    with conn.connection.dbapi_connection.cursor() as cursor:
        _copy(cursor, "daily_quotas", list(rows[0]), buffer.getvalue())


def _copy(cursor: Any, table: str, columns: Sequence[str], data: str) -> None:
    """COPY CSV `data` into `columns` of `table` (psycopg2's raw cursor).

    In one read: psycopg2 reads the file holding the GIL, and with its default 8 KB reads a
    copy running in a thread queued for the GIL hundreds of times per chunk.
    """
    quoted = ", ".join(f'"{c}"' for c in columns)
    cursor.copy_expert(
        f"COPY {table} ({quoted}) FROM STDIN WITH (FORMAT csv)",
        io.StringIO(data),
        max(len(data), 8192),
    )
