"""Recording what a mailbox's pass did: placements, marks, filing, replies, the pass itself.

Placements are written the moment a session knows them (`record_placements`, before it moves
anything), the rest when the session ends (`record_pass`), in one transaction with the
replies it queues (`queue.replies.enqueue_replies`) and the mailbox's pass state; a login the
server refused also leaves an `imap_refusals` row, which health counts as an auth failure.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection, Engine

from warmup_dagster.core.content import compose_reply, is_warmup_message_id, reply_message_id
from warmup_dagster.core.engagement import draw, reply_due, wants_reply
from warmup_dagster.core.names import display_name
from warmup_dagster.core.slots import local_day
from warmup_dagster.db.engine import writing
from warmup_dagster.db.models import (
    Engagement,
    ImapRefusal,
    JobKind,
    Mailbox,
    MailboxState,
    Placement,
    SentCopy,
    WarmupJob,
)
from warmup_dagster.engagement import mailboxes
from warmup_dagster.engagement.imap import PassOutcome
from warmup_dagster.queue.enqueue import NewJob
from warmup_dagster.queue.holds import held
from warmup_dagster.queue.replies import enqueue_replies
from warmup_dagster.settings import Settings


@dataclass
class Written:
    """What `record_pass` wrote, for the run's summary."""

    placements: Counter[str] = field(default_factory=Counter)
    flagged: int = 0
    filed: int = 0
    replies: int = 0
    copies_filed: int = 0


def record_placements(engine: Engine, placements: dict[int, Placement], now: datetime) -> None:
    """Record where messages landed (only where nothing is recorded yet)."""
    with writing(engine) as conn:
        for placement in set(placements.values()):
            ids = [i for i, p in placements.items() if p is placement]
            conn.execute(
                update(Engagement)
                .where(Engagement.id.in_(ids), Engagement.placement == Placement.PENDING)
                .values(placement=placement, placed_at=now, updated_at=now)
            )


def record_failure(
    engine: Engine, box_id: int, worker_id: str, now: datetime, *, paused: str
) -> None:
    """End a pass that could not start (e.g. the password is unreadable): pause the mailbox."""
    with writing(engine) as conn:
        mailboxes.finish_pass(conn, box_id, worker_id, now, error=paused, paused=paused)


def record_pass(
    engine: Engine,
    now: datetime,
    settings: Settings,
    token_key: bytes,
    box: Any,
    due: Sequence[Any],
    outcome: PassOutcome,
    worker_id: str,
) -> Written:
    """Record one mailbox's pass and queue its replies, in one transaction.

    Args:
        engine: The application database.
        now: When the pass ended.
        settings: Grace period, recheck delay, reply delays and turns.
        token_key: Derives the replies' Message-IDs.
        box: The mailbox's `mailboxes` row (the recipient of `due`, the replier).
        due: The `engagements` rows the pass was given.
        outcome: What the session did.
        worker_id: The run holding the mailbox's lease.

    Returns:
        What was written.
    """
    written = Written()
    grace = timedelta(minutes=settings.engage_not_found_minutes)
    recheck = now + timedelta(minutes=settings.engage_recheck_minutes)
    failed = outcome.error or outcome.paused
    # Rows are updated in id order: a pass of the sender, filing its copies, may update some of
    # them at the same time, and the same order for every transaction keeps them deadlock-free.
    with writing(engine) as conn:
        rows: dict[frozenset[str], list[dict[str, Any]]] = defaultdict(list)
        answered = [e for e in due if e.id in outcome.handled]
        replies = _replies(conn, now, settings, token_key, box, answered, outcome)
        for e in sorted(due, key=lambda row: row.id):
            handled = outcome.handled.get(e.id)
            values: dict[str, Any] = {"updated_at": now, "attempts": e.attempts + 1}
            if handled is not None:
                values |= {
                    "done": True,
                    "seen": True,
                    "flagged": handled.flagged,
                    "filed": handled.filed,
                    "handled_at": now,
                    "error": None,
                }
                written.placements[handled.placement.name] += 1
                written.flagged += handled.flagged
                written.filed += handled.filed
                reply = replies.get(e.id)
                if reply is not None:
                    values["reply_job_id"] = reply
                    written.replies += 1
            elif failed:
                values |= {"error": failed, "due_at": recheck}
            elif not is_warmup_message_id(token_key, e.message_id):
                values |= {"done": True, "placement": Placement.NOT_FOUND, "handled_at": now}
                values["error"] = "not a warmup Message-ID: not looked for"
                written.placements[Placement.NOT_FOUND.name] += 1
            elif now - e.sent_at >= grace:
                values |= {"done": True, "handled_at": now, "error": None}
                values["placement"] = Placement.NOT_FOUND
                values["placed_at"] = now
                written.placements[Placement.NOT_FOUND.name] += 1
            else:
                values |= {"due_at": recheck, "error": None}
            rows[frozenset(values)].append({"eid": e.id, **values})
        # One statement per set of columns, each row in it by id (an executemany).
        for group in rows.values():
            _update_each(conn, group)
    with writing(engine) as conn:
        copies = [
            {"eid": engagement_id, "sent_copy": copy, "updated_at": now}
            for engagement_id, copy in sorted(outcome.copies.items())
        ]
        if copies:
            _update_each(conn, copies)
        written.copies_filed += sum(c["sent_copy"] is SentCopy.FILED for c in copies)
        mailboxes.finish_pass(
            conn,
            box.id,
            worker_id,
            now,
            error=outcome.error or outcome.paused,
            paused=outcome.paused,
            pruned=outcome.pruned is not None,
        )
        if outcome.login_refused and outcome.paused:
            # An auth failure, as health counts them (`health.placement`).
            timezone = box.timezone or settings.send_window_timezone
            conn.execute(
                insert(ImapRefusal).values(
                    mailbox_id=box.id,
                    at=now,
                    local_date=local_day(now, timezone),
                    reason=outcome.paused,
                )
            )
    return written


def _update_each(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Update `engagements` row `eid` of each of `rows` with its values (the same columns)."""
    columns = [c for c in rows[0] if c != "eid"]
    # Parameter names apart from the columns' (SQLAlchemy reserves those for SET).
    conn.execute(
        update(Engagement)
        .where(Engagement.id == bindparam("eid"))
        .values({c: bindparam(f"new_{c}") for c in columns}),
        [{"eid": r["eid"], **{f"new_{c}": r[c] for c in columns}} for r in rows],
    )


def _replies(
    conn: Connection,
    now: datetime,
    settings: Settings,
    token_key: bytes,
    box: Any,
    handled: Sequence[Any],
    outcome: PassOutcome,
) -> dict[int, int]:
    """Queue the replies to the `handled` engagements their recipient answers, all at once;
    engagement id -> its reply job's id. Nothing while the recipient may not send.

    The originals, their senders and the replier's name are read in one query each, and
    the replies queued in one write (`queue.replies.enqueue_replies`).
    """
    wanted = [
        e
        for e in handled
        if outcome.handled[e.id].placement is not Placement.NOT_FOUND
        and e.job_id is not None
        and wants_reply(e.message_id, box.reply_rate, e.turn, settings.engage_max_turns)
    ]
    if not wanted:
        return {}
    if box.state is not MailboxState.ACTIVE or held(conn, settings, [box.id]):
        # A mailbox that may not send answers nothing (`queue.holds`): its owner paused it, its
        # health is PAUSED or its domain held. Its mail is still read, rescued and filed.
        return {}
    originals = {
        row.id: row
        for row in conn.execute(
            select(
                WarmupJob.id,
                WarmupJob.subject,
                WarmupJob.body,
                WarmupJob.references,
                WarmupJob.message_id,
                WarmupJob.sent_at,
            ).where(WarmupJob.id.in_(sorted({e.job_id for e in wanted})))
        )
    }
    senders = dict(
        conn.execute(
            select(Mailbox.id, Mailbox.email).where(
                Mailbox.id.in_(sorted({e.sender_mailbox_id for e in wanted}))
            )
        ).all()
    )
    replier_name = conn.scalar(select(Mailbox.display_name).where(Mailbox.id == box.id))
    timezone = box.timezone or settings.send_window_timezone
    jobs: dict[int, tuple[int, NewJob]] = {}
    for e in wanted:
        original, sender = originals.get(e.job_id), senders.get(e.sender_mailbox_id)
        if original is None or sender is None or original.subject is None:
            continue
        due = reply_due(
            now,
            e.message_id,
            settings.engage_reply_delay_min,
            settings.engage_reply_delay_max,
            timezone,
            settings.send_window_start_hour,
            settings.send_window_end_hour,
        )
        seed = int(draw(e.message_id, "reply-words") * 2**62)
        subject, body = compose_reply(
            seed,
            original.subject,
            original.body or "",
            box.email,
            sender,
            due.astimezone(ZoneInfo(timezone)),
            display_name(box.email, replier_name),
            original_date=original.sent_at,
        )
        message_id, token = reply_message_id(token_key, e.message_id, box.domain)
        references = " ".join([*(original.references or "").split(), e.message_id])
        jobs[e.id] = (
            original.id,
            NewJob(
                kind=JobKind.REPLY,
                mailbox_id=box.id,
                user_id=box.user_id,
                local_date=local_day(due, timezone),
                recipient_email=sender,
                recipient_mailbox_id=e.sender_mailbox_id,
                due_at=due,
                content_seed=seed,
                message_id=message_id,
                token=token,
                subject=subject,
                body=body,
                in_reply_to=e.message_id,
                references=references,
                parent_job_id=original.id,
            ),
        )
    queued = enqueue_replies(conn, now, list(jobs.values()))
    return {engagement_id: queued[job.message_id] for engagement_id, (_, job) in jobs.items()}
