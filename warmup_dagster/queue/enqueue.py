"""Putting jobs on the queue: the one way new jobs of any kind are written.

`JobWriter` takes planning's send jobs a mailbox-day at a time (`add_sends`, the fast path)
and single jobs of any kind (`add`, e.g. a reply with its own Message-ID, subject, body,
In-Reply-To and References); `enqueue` writes a few jobs at once. `replace_unattempted`
removes the planned sends that planning is about to plan again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.engine import Connection

from warmup_dagster.db.dialect import among, copy_csv, is_postgresql, raw_cursor
from warmup_dagster.db.models import JobKind, JobStatus, WarmupJob

# The columns every job is written with; planned sends leave `OPTIONAL` empty (NULL).
REQUIRED = (
    "kind", "mailbox_id", "user_id", "local_date", "recipient_mailbox_id", "recipient_email",
    "scheduled_at", "due_at", "content_seed", "status", "attempts", "created_at", "updated_at",
)  # fmt: skip
OPTIONAL = (
    "message_id", "token", "subject", "body", "in_reply_to", "references", "parent_job_id",
)  # fmt: skip
JOB_COLUMNS = REQUIRED + OPTIONAL
# What a reply must carry from its creation: it answers one message, in its thread.
REPLY_FIELDS = ("message_id", "subject", "body", "in_reply_to", "references")


@dataclass(frozen=True)
class NewJob:
    """A job to enqueue. Its slot (`scheduled_at`) is its first due time.

    A send leaves the Message-ID and the words unset: they are derived from the job and its
    `content_seed` when it is first attempted (`core.content`). A reply carries them.
    """

    kind: JobKind
    mailbox_id: int
    user_id: int
    local_date: date
    recipient_email: str
    due_at: datetime
    recipient_mailbox_id: int | None = None
    content_seed: int = 0
    message_id: str | None = None
    token: str | None = None
    subject: str | None = None
    body: str | None = None
    in_reply_to: str | None = None
    references: str | None = None
    parent_job_id: int | None = None

    def check(self) -> None:
        """Raise `ValueError` naming the job and the field that makes it unfit for the queue."""
        what = f"{self.kind.name} job of mailbox {self.mailbox_id} due {self.due_at.isoformat()}"
        if self.due_at.tzinfo is None:
            raise ValueError(f"{what}: due_at must carry a timezone")
        if not self.recipient_email:
            raise ValueError(f"{what}: recipient_email is empty")
        if self.kind is JobKind.REPLY:
            for name in REPLY_FIELDS:
                if not getattr(self, name):
                    raise ValueError(f"{what}: a reply needs its {name} when it is enqueued")


class JobWriter:
    """Writes new jobs in one transaction; every new job of the project goes through here.

    On PostgreSQL the rows go out with COPY (several times faster than INSERT), from a
    background thread, so the two cores of a small machine both work. Chunks queue up rather
    than wait for the server: planning makes its jobs in bursts (each part's writing), and the
    server stores them while the next part is computed. Each CSV line of a planned send is one
    f-string: with a million jobs a day, a general CSV writer with a converter per value cost
    more than the rest of the writing. Elsewhere, chunked INSERTs.
    """

    def __init__(
        self, conn: Connection, now: datetime, chunk: int = 20_000, backlog: int = 20
    ) -> None:
        self.conn, self.now, self.chunk, self.backlog = conn, now, chunk, backlog
        self.pending: list = []
        # COPY lines of jobs that carry optional columns (replies); planned sends leave them out
        self.pending_full: list[str] = []
        self.written = 0
        self.copying = is_postgresql(conn)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="copy") if self.copying else None
        self.in_flight: deque[Future] = deque()
        self.cursor = raw_cursor(conn) if self.copying else None
        # the columns every new job shares: pending, never attempted, created now
        self.shared = f"{JobStatus.PENDING.name},0,{now.isoformat()},{now.isoformat()}"
        self.tail = f",{self.shared}\n"
        self.quoted: dict[str, str] = {}
        # the same as a row of INSERT (every row has every column: one executemany)
        self.shared_row: dict[str, Any] = dict.fromkeys(OPTIONAL) | {
            "kind": JobKind.SEND,
            "status": JobStatus.PENDING,
            "attempts": 0,
            "created_at": self.now,
            "updated_at": self.now,
        }

    def add_sends(
        self,
        mailbox_id: int,
        user_id: int,
        day: date,
        jobs: Iterable[tuple[int, str, datetime, int]],
    ) -> None:
        """Queue one mailbox-day's planned sends: (recipient id, its address, slot, content
        seed) each. The caller (planning) made every value, so they are not checked again."""
        if not self.copying:
            shared = self.shared_row | {"mailbox_id": mailbox_id, "user_id": user_id}
            self.pending += [
                shared
                | {
                    "local_date": day,
                    "recipient_mailbox_id": recipient,
                    "recipient_email": email,
                    "scheduled_at": when,
                    "due_at": when,
                    "content_seed": seed,
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

    def add(self, job: NewJob) -> None:
        """Queue one job of any kind, checked first (see `NewJob.check`)."""
        job.check()
        if not self.copying:
            self.pending.append(self._row(job))
        else:
            head = (job.kind, job.mailbox_id, job.user_id, job.local_date)
            head += (job.recipient_mailbox_id, job.recipient_email, job.due_at, job.due_at)
            optional = ",".join(_csv(getattr(job, name)) for name in OPTIONAL)
            fields = ",".join(_csv(v) for v in (*head, job.content_seed))
            self.pending_full.append(f"{fields},{self.shared},{optional}\n")
        if len(self.pending) + len(self.pending_full) >= self.chunk:
            self._flush()

    def _row(self, job: NewJob) -> dict[str, Any]:
        row = {name: getattr(job, name) for name in JOB_COLUMNS if hasattr(job, name)}
        return self.shared_row | row | {"scheduled_at": job.due_at}

    def _quote(self, value: str) -> str:
        """A CSV field for an address (addresses are validated, so this rarely quotes)."""
        self.quoted[value] = field = _csv(value)
        return field

    def _flush(self) -> None:
        rows, self.pending = self.pending, []
        full, self.pending_full = self.pending_full, []
        self.written += len(rows) + len(full)
        if not self.copying:
            if rows:
                self.conn.execute(insert(WarmupJob), rows)
            return
        # Planned sends without the optional columns: a million empty fields less a day.
        for columns, lines in ((REQUIRED, rows), (JOB_COLUMNS, full)):
            if lines:
                self.in_flight.append(
                    self.pool.submit(copy_csv, self.cursor, "warmup_jobs", columns, "".join(lines))
                )
        while self.in_flight and (self.in_flight[0].done() or len(self.in_flight) > self.backlog):
            self.in_flight.popleft().result()  # raises what the COPY raised

    def _finish(self) -> None:
        """Every job is written (still inside the caller's transaction). The caller refreshes
        the planner's statistics after it commits (`db.dialect.refresh_statistics`)."""
        self._flush()
        while self.in_flight:
            self.in_flight.popleft().result()

    def __enter__(self) -> JobWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            if exc_type is None:
                self._finish()
        finally:
            if self.pool is not None:
                # After an error the transaction is lost: queued chunks are dropped, and what
                # they would raise must not hide the first error.
                self.pool.shutdown(wait=True, cancel_futures=True)
                self.cursor.close()


def _csv(value: Any) -> str:
    """One CSV field for COPY: None is NULL (empty), an empty string is quoted."""
    if value is None:
        return ""
    if isinstance(value, JobKind):
        return value.name
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    text = str(value)
    if text == "" or any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def enqueue(conn: Connection, now: datetime, jobs: Iterable[NewJob]) -> int:
    """Write `jobs` (any kind) in `conn`'s transaction; returns how many."""
    with JobWriter(conn, now) as writer:
        for job in jobs:
            writer.add(job)
    return writer.written


def replace_unattempted(conn: Connection, targets: dict[date, list[int]]) -> int:
    """Remove never-attempted planned sends of these mailbox-days: they are planned again.

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
