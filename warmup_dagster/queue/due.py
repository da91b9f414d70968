"""What is due: the queries a claim selects from, and the dispatch sensor's counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine, Row

from warmup_dagster.db.models import Mailbox, MailboxState, WarmupJob
from warmup_dagster.queue.states import CLAIMABLE, IN_FLIGHT


def due_jobs() -> Any:
    """Jobs of active mailboxes, with what a claim and the sender read of them."""
    return (
        select(
            WarmupJob.id,
            WarmupJob.kind,
            WarmupJob.mailbox_id,
            WarmupJob.user_id,
            WarmupJob.local_date,
            WarmupJob.status,
            WarmupJob.due_at,
            WarmupJob.attempts,
            WarmupJob.picked_at,
            WarmupJob.worker_id,
            WarmupJob.recipient_email,
            WarmupJob.message_id,
            WarmupJob.token,
            WarmupJob.content_seed,
            WarmupJob.subject,
            WarmupJob.body,
            WarmupJob.in_reply_to,
            WarmupJob.references,
            WarmupJob.error,  # why it waited: a refusal keeps it
            Mailbox.email,
            Mailbox.display_name,
            Mailbox.domain,
            Mailbox.timezone,
            Mailbox.smtp_host,
            Mailbox.smtp_port,
            Mailbox.smtp_security,
            Mailbox.smtp_username,
            Mailbox.smtp_password_enc,
        )
        .join(Mailbox, Mailbox.id == WarmupJob.mailbox_id)
        .where(Mailbox.state == MailboxState.ACTIVE)
    )


def claimable(now: datetime) -> tuple[Any, ...]:
    return (WarmupJob.status.in_(CLAIMABLE), WarmupJob.due_at <= now)


def earliest_due(conn: Connection, now: datetime, limit: int) -> list[Row[Any]]:
    """The `limit` claimable jobs that came due first, locked `FOR UPDATE SKIP LOCKED`.

    One ordered index read per claimable status, as in `next_due`: one read over both statuses
    joins and sorts every due job, which grows with a backlog and with statistics that missed
    the day's jobs. Up to `limit` jobs of each status are locked; the claim's transaction ends
    the locks of those past the first `limit`, which the next claim takes.
    """
    rows: list[Row[Any]] = []
    for status in CLAIMABLE:
        rows += conn.execute(
            due_jobs()
            .where(WarmupJob.status == status, WarmupJob.due_at <= now)
            .order_by(WarmupJob.due_at)
            .limit(limit)
            .with_for_update(of=WarmupJob, skip_locked=True)
        )
    return sorted(rows, key=lambda r: r.due_at)[:limit]


def expired(now: datetime) -> tuple[Any, ...]:
    """In flight past its lease: the run that claimed it died or lost the database."""
    return (WarmupJob.status == IN_FLIGHT, WarmupJob.lease_expires_at < now)


def due_count(engine: Engine, now: datetime, cap: int) -> int:
    """How many jobs could be claimed now, counting no further than `cap`."""
    with engine.connect() as conn:
        due = conn.scalar(
            select(func.count()).select_from(
                due_jobs().where(*claimable(now)).limit(cap).subquery()
            )
        )
        lapsed = conn.scalar(
            select(func.count()).select_from(due_jobs().where(*expired(now)).limit(cap).subquery())
        )
    return min(cap, (due or 0) + (lapsed or 0))


def next_due(engine: Engine) -> datetime | None:
    """When the earliest claimable job of an active mailbox comes due.

    One ordered index probe per claimable status, not one query over all of them: PostgreSQL
    cannot read `(status, due_at)` in due order across several statuses, so with statistics
    that missed the day's new jobs it joined and sorted every one of them (0.4 s for 190,000;
    seconds at a million). With one status the index gives the order, whatever the estimates.
    """
    with engine.connect() as conn:
        firsts = [
            conn.scalar(
                select(WarmupJob.due_at)
                .join(Mailbox, Mailbox.id == WarmupJob.mailbox_id)
                .where(WarmupJob.status == status, Mailbox.state == MailboxState.ACTIVE)
                .order_by(WarmupJob.due_at)
                .limit(1)
            )
            for status in CLAIMABLE
        ]
    return min((first for first in firsts if first is not None), default=None)
