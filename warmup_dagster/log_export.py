"""`warmup export-log`: one local date's send log as CSV, streamed row by row.

One CSV row per `send_log` row (each attempt of each job) whose job is of that local date, in
the order they were written. The rows come from a server-side cursor a batch at a time, so a
day of a million sends is never in memory at once.
"""

from __future__ import annotations

import csv
from datetime import date
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.engine import Engine

from warmup_dagster.db.models import Mailbox, SendLog, User, WarmupJob

COLUMNS = (
    "job_id", "kind", "mailbox_email", "user", "recipient_email", "scheduled_for_utc",
    "sent_at_utc", "status", "attempts", "message_id", "in_reply_to", "error",
)  # fmt: skip
LATE = "late: this outcome came after another claim took the job over; it counts nowhere"
BATCH = 2_000


def export_log(engine: Engine, day: date, out: TextIO) -> int:
    """Write the send log of local date `day` to `out` as CSV (`COLUMNS`); returns the rows.

    Times are ISO 8601 UTC; `sent_at_utc` is when the attempt ended (for an attempt that did
    not send, when it was made); `attempts` is the attempt's number; a late outcome's error
    says it is late (`LATE`), so no count of sends from the file includes it.
    """
    query = (
        select(
            SendLog.job_id,
            SendLog.kind,
            Mailbox.email,
            User.name,
            SendLog.recipient_email,
            WarmupJob.scheduled_at,
            SendLog.created_at,
            SendLog.status,
            SendLog.attempt,
            SendLog.message_id,
            WarmupJob.in_reply_to,
            SendLog.error,
            SendLog.late,
        )
        .join(Mailbox, Mailbox.id == SendLog.mailbox_id)
        .join(User, User.id == SendLog.user_id)
        .outerjoin(WarmupJob, WarmupJob.id == SendLog.job_id)
        .where(SendLog.local_date == day)  # by its index (migration 0007)
        .order_by(SendLog.id)
    )
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    written = 0
    with engine.connect() as conn:
        for r in conn.execution_options(yield_per=BATCH).execute(query):
            error = r.error or ""
            if r.late:
                error = f"{LATE}; {error}" if error else LATE
            writer.writerow(
                (
                    "" if r.job_id is None else r.job_id,
                    r.kind.name.lower(),
                    r.email,
                    r.name,
                    r.recipient_email,
                    "" if r.scheduled_at is None else r.scheduled_at.isoformat(),
                    r.created_at.isoformat(),
                    r.status.name,
                    r.attempt,
                    r.message_id,
                    r.in_reply_to or "",
                    error,
                )
            )
            written += 1
    return written
