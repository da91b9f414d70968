"""Which mailboxes have engagement work due, and holding them: leases, pauses, resuming.

A mailbox is due when a message to it is due to be looked for (`done` false, `due_at` passed)
or a copy of a message it sent is due to be filed (`sent_copy` PENDING). An engagement run
leases the due mailboxes it takes (`engagement_mailboxes.leased_until`) under one lock, so two
runs never open sessions on the same mailbox; a run that dies leaves a lease that runs out.
An IMAP login refused pauses the mailbox's engagement (`paused_reason`) until it is resumed.
A mailbox whose last pass failed (its IMAP down, a session cut) is due again only
`WARMUP_ENGAGE_RECHECK_MINUTES` after that pass, as the messages it was to look for are: the
copies of mail it sent stay due meanwhile, and without the wait a run took the mailbox again at
once, session after failed session, until its `WARMUP_ENGAGE_MAILBOXES_PER_RUN` were used up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Connection, Engine

from warmup_dagster.db.dialect import exclusive, upsert
from warmup_dagster.db.engine import writing
from warmup_dagster.db.models import (
    Engagement,
    EngagementMailbox,
    Mailbox,
    MailboxState,
    SentCopy,
)

LOCK = "warmup-engagement"


def due_mailboxes(
    conn: Connection, now: datetime, limit: int, recheck: timedelta = timedelta(0)
) -> list[int]:
    """Ids of mailboxes with engagement work due, not paused, not leased and not failed within
    `recheck` (`WARMUP_ENGAGE_RECHECK_MINUTES`); soonest first."""
    held = select(EngagementMailbox.mailbox_id).where(
        or_(
            EngagementMailbox.paused_reason.is_not(None),
            EngagementMailbox.leased_until > now,
            and_(
                EngagementMailbox.last_error.is_not(None),
                EngagementMailbox.last_pass_at > now - recheck,
            ),
        )
    )
    disabled = select(Mailbox.id).where(Mailbox.state == MailboxState.DISABLED)
    found: dict[int, datetime] = {}
    for column, condition in (
        (Engagement.recipient_mailbox_id, Engagement.done.is_(False)),
        (Engagement.sender_mailbox_id, Engagement.sent_copy == SentCopy.PENDING),
    ):
        query = (
            select(column, func.min(Engagement.due_at))
            .where(
                condition,
                Engagement.due_at <= now,
                column.not_in(held),
                column.not_in(disabled),
            )
            .group_by(column)
            .order_by(func.min(Engagement.due_at))
            .limit(limit)
        )
        for box_id, due in conn.execute(query):
            found[box_id] = min(due, found.get(box_id, due))
    return sorted(found, key=lambda box_id: found[box_id])[:limit]


def lease(
    engine: Engine,
    now: datetime,
    limit: int,
    worker_id: str,
    seconds: float,
    recheck: timedelta = timedelta(0),
) -> list[int]:
    """Take up to `limit` due mailboxes (`due_mailboxes`) for this run until `now + seconds`
    (clock time)."""
    with exclusive(engine, LOCK) as conn:
        ids = due_mailboxes(conn, now, limit, recheck)
        until = now + timedelta(seconds=seconds)
        for box_id in ids:
            conn.execute(
                upsert(
                    conn,
                    EngagementMailbox.__table__,
                    ["mailbox_id"],
                    lambda new: {
                        "leased_until": new.leased_until,
                        "leased_by": new.leased_by,
                        "updated_at": new.updated_at,
                    },
                ).values(mailbox_id=box_id, leased_until=until, leased_by=worker_id, updated_at=now)
            )
    return ids


def extend(engine: Engine, ids: Sequence[int], worker_id: str, until: datetime) -> None:
    """Renew this run's leases of `ids` until `until`."""
    if not ids:
        return
    with writing(engine) as conn:
        conn.execute(
            update(EngagementMailbox)
            .where(
                EngagementMailbox.mailbox_id.in_(list(ids)),
                EngagementMailbox.leased_by == worker_id,
            )
            .values(leased_until=until)
        )


def finish_pass(
    conn: Connection,
    box_id: int,
    worker_id: str,
    now: datetime,
    *,
    error: str | None = None,
    paused: str | None = None,
    pruned: bool = False,
) -> None:
    """End a mailbox's pass: its lease given back, its last pass, error or pause recorded."""
    values: dict = {"last_pass_at": now, "last_error": error, "updated_at": now}
    if paused is not None:
        values |= {"paused_reason": paused, "paused_at": now}
    if pruned:
        values["pruned_at"] = now
    conn.execute(
        update(EngagementMailbox)
        .where(EngagementMailbox.mailbox_id == box_id)
        .values(
            **values,
            leased_until=None,
            leased_by=None,
        )
        .where(or_(EngagementMailbox.leased_by == worker_id, EngagementMailbox.leased_by.is_(None)))
    )


def pruned_at(conn: Connection, box_id: int) -> datetime | None:
    return conn.scalar(
        select(EngagementMailbox.pruned_at).where(EngagementMailbox.mailbox_id == box_id)
    )


def resume(conn: Connection, box_id: int, now: datetime) -> bool:
    """Lift an engagement pause (`warmup mailboxes resume`); True if there was one."""
    return bool(
        conn.execute(
            update(EngagementMailbox)
            .where(
                and_(
                    EngagementMailbox.mailbox_id == box_id,
                    EngagementMailbox.paused_reason.is_not(None),
                )
            )
            .values(paused_reason=None, paused_at=None, updated_at=now)
        ).rowcount
    )


def paused_reasons(conn: Connection) -> dict[int, str]:
    """Mailbox id -> why its engagement is paused, for every paused mailbox."""
    return dict(
        conn.execute(
            select(EngagementMailbox.mailbox_id, EngagementMailbox.paused_reason).where(
                EngagementMailbox.paused_reason.is_not(None)
            )
        ).all()
    )
