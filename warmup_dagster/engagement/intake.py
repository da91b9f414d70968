"""Taking delivered warmup mail in: one `engagements` row per sent message to a pool mailbox.

The send log is read by its `created_at` index from a little before the newest message taken
in so far (`OVERLAP`: an outcome recorded late by a slow transaction is still seen), and each
message is written once (the Message-ID is unique; a second intake of it writes nothing). So
intake needs no state of its own and may run anywhere, any number of times: the engagement
sensor runs it every tick, and each engagement run at its start.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from warmup_dagster.core.engagement import look_due, thread_turn
from warmup_dagster.db.dialect import is_postgresql
from warmup_dagster.db.engine import writing
from warmup_dagster.db.models import (
    Engagement,
    Mailbox,
    Placement,
    SendLog,
    SentCopy,
    WarmupJob,
)
from warmup_dagster.queue.counting import counted
from warmup_dagster.settings import Settings

# How far before the newest message taken in the next intake reads again (clock time).
OVERLAP = timedelta(minutes=10)
# Rows per statement.
CHUNK = 500
# How far back the first intake of a deployment reads, besides the not-found grace period.
FIRST_LOOKBACK = timedelta(days=1)
# Messages taken in per call at most; the next call goes on from there.
BATCH = 50_000


def take_in(engine: Engine, settings: Settings, now: datetime, batch: int = BATCH) -> int:
    """Write an engagement for each warmup message sent to a pool mailbox since the last intake.

    Args:
        engine: The application database.
        settings: Its look delays (`WARMUP_ENGAGE_LOOK_DELAY_MIN`/`_MAX`) and grace period.
        now: The clock's now; with nothing taken in yet, intake starts a day and the grace
            period back.
        batch: At most this many send-log rows per call.

    Returns:
        How many engagements were written.
    """
    with writing(engine) as conn:
        newest = conn.scalar(select(func.max(Engagement.sent_at)))
        since = (
            newest - OVERLAP
            if newest is not None
            else now - FIRST_LOOKBACK - timedelta(minutes=settings.engage_not_found_minutes)
        )
        rows = conn.execute(
            select(
                SendLog.job_id,
                SendLog.message_id,
                SendLog.created_at,
                SendLog.local_date,
                WarmupJob.mailbox_id,
                WarmupJob.recipient_mailbox_id,
                WarmupJob.references,
            )
            .join(WarmupJob, WarmupJob.id == SendLog.job_id)
            .join(Mailbox, Mailbox.id == WarmupJob.recipient_mailbox_id)
            .where(SendLog.created_at >= since, *counted())
            .order_by(SendLog.created_at)
            .limit(batch)
        ).all()
        if not rows:
            return 0
        values = [
            {
                "job_id": r.job_id,
                "message_id": r.message_id,
                "recipient_mailbox_id": r.recipient_mailbox_id,
                "sender_mailbox_id": r.mailbox_id,
                "turn": thread_turn(r.references),
                "sent_at": r.created_at,
                "local_date": r.local_date,
                "due_at": look_due(
                    r.created_at,
                    r.message_id,
                    settings.engage_look_delay_min,
                    settings.engage_look_delay_max,
                ),
                "done": False,
                "placement": Placement.PENDING,
                "seen": False,
                "flagged": False,
                "filed": False,
                "sent_copy": SentCopy.PENDING,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
            for r in rows
        ]
        return _insert_new(conn, values)


def _insert_new(conn: Connection, values: list[dict]) -> int:
    """Insert the rows whose Message-ID is not taken in yet; returns how many.

    The ones already there are left out first (the count of an executemany's conflicts is not
    reported alike by both drivers); a race with another intake is settled by the unique
    Message-ID (the loser writes nothing for that row).
    """
    insert = pg_insert if is_postgresql(conn) else sqlite_insert
    written = 0
    for start in range(0, len(values), CHUNK):
        part = values[start : start + CHUNK]
        known = set(
            conn.scalars(
                select(Engagement.message_id).where(
                    Engagement.message_id.in_([v["message_id"] for v in part])
                )
            )
        )
        fresh = [v for v in part if v["message_id"] not in known]
        if fresh:
            conn.execute(
                insert(Engagement).on_conflict_do_nothing(index_elements=["message_id"]), fresh
            )
        written += len(fresh)
    return written
