"""Replies: the receiving side's answers, queued like every job, and the originals marked.

A reply is a REPLY job of the replying mailbox (`enqueue.NewJob` with its Message-ID, subject,
body, In-Reply-To and References), claimed and capped like any other job. The job it answers
becomes REPLIED: still a delivered send (`states.DELIVERED`), its send-log row still SENT.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from warmup_dagster.db.models import JobKind, JobStatus, WarmupJob
from warmup_dagster.queue.enqueue import NewJob, enqueue


def enqueue_reply(
    conn: Connection, now: datetime, original_job_id: int | None, reply: NewJob
) -> int:
    """Queue `reply` once and mark the job it answers REPLIED, in `conn`'s transaction.

    Idempotent: a reply whose Message-ID is already queued is not written again (an
    engagement pass retried after a failure derives the same id), and its job id is returned.

    Args:
        conn: A connection inside a transaction.
        now: The time the reply is queued.
        original_job_id: The answered job; None when it is gone (its row was deleted).
        reply: The reply, a `JobKind.REPLY` job (`NewJob.check` names what it lacks).

    Returns:
        The reply job's id.

    Raises:
        ValueError: `reply` is not a reply, or lacks a field a reply needs.
    """
    if reply.kind is not JobKind.REPLY:
        raise ValueError(f"{reply.kind.name} job of mailbox {reply.mailbox_id}: not a reply")
    reply.check()
    existing = _job_id(conn, reply.message_id)
    if existing is None:
        enqueue(conn, now, [reply])
        existing = _job_id(conn, reply.message_id)
        assert existing is not None, "the reply was just written"
    if original_job_id is not None:
        mark_replied(conn, [original_job_id], now)
    return existing


def mark_replied(conn: Connection, job_ids: list[int], now: datetime) -> int:
    """Mark sent jobs REPLIED; jobs in any other state are left as they are.

    Returns:
        How many jobs changed.
    """
    if not job_ids:
        return 0
    return conn.execute(
        update(WarmupJob)
        .where(WarmupJob.id.in_(job_ids), WarmupJob.status == JobStatus.SENT)
        .values(status=JobStatus.REPLIED, updated_at=now)
    ).rowcount


def _job_id(conn: Connection, message_id: str | None) -> int | None:
    return conn.scalar(select(WarmupJob.id).where(WarmupJob.message_id == message_id))
