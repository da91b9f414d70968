"""Replies: the receiving side's answers, queued like every job, and the originals marked.

A reply is a REPLY job of the replying mailbox (`enqueue.NewJob` with its Message-ID, subject,
body, In-Reply-To and References), claimed and capped like any other job. The job it answers
becomes REPLIED: still a delivered send (`states.DELIVERED`), its send-log row still SENT.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from warmup_dagster.db.models import JobKind, JobStatus, WarmupJob
from warmup_dagster.queue.enqueue import NewJob, enqueue


def enqueue_reply(
    conn: Connection, now: datetime, original_job_id: int | None, reply: NewJob
) -> int:
    """Queue one reply (`enqueue_replies`); returns its job's id."""
    return enqueue_replies(conn, now, [(original_job_id, reply)])[reply.message_id or ""]


def enqueue_replies(
    conn: Connection, now: datetime, replies: Sequence[tuple[int | None, NewJob]]
) -> dict[str, int]:
    """Queue each reply once and mark the jobs they answer REPLIED, in `conn`'s transaction.

    Idempotent: a reply whose Message-ID is already queued is not written again (an
    engagement pass retried after a failure derives the same id), and its job id is returned.
    One write for all of them: a pass answers several messages at once.

    Args:
        conn: A connection inside a transaction.
        now: The time the replies are queued.
        replies: (the answered job, or None when it is gone; the reply, a `JobKind.REPLY`
            job: `NewJob.check` names what it lacks).

    Returns:
        Each reply's Message-ID -> its job's id.

    Raises:
        ValueError: a reply is not a reply, or lacks a field a reply needs.
    """
    for _, reply in replies:
        if reply.kind is not JobKind.REPLY:
            raise ValueError(f"{reply.kind.name} job of mailbox {reply.mailbox_id}: not a reply")
        reply.check()
    wanted = {reply.message_id or "": reply for _, reply in replies}
    queued = _job_ids(conn, list(wanted))
    new = [reply for message_id, reply in wanted.items() if message_id not in queued]
    if new:
        enqueue(conn, now, new)
        queued |= _job_ids(conn, [reply.message_id or "" for reply in new])
        assert set(wanted) <= set(queued), "the replies were just written"
    mark_replied(conn, sorted({o for o, _ in replies if o is not None}), now)
    return queued


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


def _job_ids(conn: Connection, message_ids: list[str]) -> dict[str, int]:
    if not message_ids:
        return {}
    return dict(
        conn.execute(
            select(WarmupJob.message_id, WarmupJob.id).where(WarmupJob.message_id.in_(message_ids))
        ).all()
    )
