"""Which mailboxes owe sends now that a re-plan could still place: the catch-up's question.

A mailbox-day owes `quota - sends that count - jobs still queued` (`queue.counting`), where
a planned send never attempted `WARMUP_CATCH_UP_HELD_SECONDS` after its slot is not counted
as queued: it was
held (its mailbox paused, then resumed; sending stopped), and a re-plan spreads it over what
is left of the window instead of the sender sending the backlog back to back. Its last
planning recorded a `shortfall`: what did not fit then. It is worth re-planning when it owes
more than that shortfall (something was lost or held since), it is active, and its send
window is still open with room for a slot.

Found by index, never by a scan of history: the candidates are the mailboxes with a FAILED
job, or an overdue planned one, due in the last two days (the `(status, due_at)` index holds
few of either), and only they are counted (their jobs by `(mailbox_id, local_date)`, their
sends by `(mailbox_id, created_at)`, their `daily_quotas` row by its key).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from warmup_dagster.core.slots import local_day, send_window, with_margins
from warmup_dagster.db.dialect import among
from warmup_dagster.db.models import (
    DailyQuota,
    JobKind,
    JobStatus,
    Mailbox,
    MailboxState,
    WarmupJob,
)
from warmup_dagster.planning.planner import LEAD, any_zone
from warmup_dagster.queue.counting import count_queued, sends_query
from warmup_dagster.settings import Settings

# FAILED jobs this far back may belong to a local day still open somewhere (UTC-12 to +14).
LOOK_BACK = timedelta(days=2)


@dataclass(frozen=True)
class Owing:
    """A mailbox-day that owes sends a re-plan can place."""

    mailbox_id: int
    email: str
    local_date: date
    quota: int
    counted: int  # sends that count
    queued: int  # jobs pending, in flight or waiting for a retry
    failed: int  # jobs that ended FAILED
    overdue: int  # of `queued`: planned sends never attempted, held past their slots
    shortfall: int  # what its last planning could not place

    @property
    def owed(self) -> int:
        return max(0, self.quota - self.counted - (self.queued - self.overdue))


def owing(conn: Connection, settings: Settings, now: datetime) -> list[Owing]:
    """The active mailboxes whose today (in their timezone) owes more than its last plan's
    shortfall, with their window open past the planner's first slot; in mailbox id order."""
    failed = _per_day(
        conn,
        WarmupJob.status == JobStatus.FAILED,
        WarmupJob.due_at >= now - LOOK_BACK,
        WarmupJob.due_at < now + timedelta(days=1),
    )
    overdue = _per_day(
        conn,
        WarmupJob.status == JobStatus.PENDING,
        WarmupJob.due_at >= now - LOOK_BACK,
        WarmupJob.due_at < now - timedelta(seconds=settings.catch_up_held_seconds),
        WarmupJob.kind == JobKind.SEND,
        WarmupJob.attempts == 0,
    )
    candidates = failed.keys() | overdue.keys()
    if not candidates:
        return []
    boxes = {}
    for among_ids in among(conn, Mailbox.id, {box_id for box_id, _ in candidates}):
        boxes.update(
            {
                b.id: b
                for b in conn.execute(
                    select(Mailbox.id, Mailbox.email, Mailbox.timezone, Mailbox.state).where(
                        among_ids
                    )
                )
            }
        )
    open_days: dict[tuple[int, date], Any] = {}
    for box_id, day in candidates:
        box = boxes.get(box_id)
        if box is None or box.state != MailboxState.ACTIVE:
            continue
        timezone = box.timezone or settings.send_window_timezone
        if day != local_day(now, timezone):
            continue
        window = send_window(
            day, timezone, settings.send_window_start_hour, settings.send_window_end_hour
        )
        planned, _, _ = with_margins(
            window,
            settings.same_mailbox_delay_min * 60,
            settings.same_mailbox_delay_max * 60,
            timedelta(seconds=settings.arrival_margin_seconds),
        )
        if planned.end > now + LEAD:
            open_days[box_id, day] = box
    found = []
    for day in sorted({d for _, d in open_days}):
        ids = [box_id for box_id, d in open_days if d == day]
        since, until = any_zone(day)
        counted = dict(
            conn.execute(
                sends_query(since, until, mailbox_ids=ids, local_date=day, group_by="mailbox")
            ).all()
        )
        queued: dict[int, int] = {}
        quotas: dict[int, tuple[int, int]] = {}
        for among_ids in among(conn, WarmupJob.mailbox_id, ids):
            queued.update(
                conn.execute(
                    select(WarmupJob.mailbox_id, count_queued())
                    .where(among_ids, WarmupJob.local_date == day)
                    .group_by(WarmupJob.mailbox_id)
                ).all()
            )
        for among_ids in among(conn, DailyQuota.mailbox_id, ids):
            quotas.update(
                (mailbox_id, (quota, shortfall))
                for mailbox_id, quota, shortfall in conn.execute(
                    select(DailyQuota.mailbox_id, DailyQuota.quota, DailyQuota.shortfall).where(
                        among_ids, DailyQuota.local_date == day
                    )
                )
            )
        for box_id in ids:
            if box_id not in quotas:
                continue  # never planned: the daily pass plans it
            quota, shortfall = quotas[box_id]
            row = Owing(
                box_id,
                open_days[box_id, day].email,
                day,
                quota,
                counted.get(box_id, 0),
                queued.get(box_id, 0),
                failed.get((box_id, day), 0),
                overdue.get((box_id, day), 0),
                shortfall,
            )
            if row.owed > row.shortfall:
                found.append(row)
    return sorted(found, key=lambda o: o.mailbox_id)


def _per_day(conn: Connection, *where: Any) -> dict[tuple[int, date], int]:
    """How many jobs match `where`, per mailbox-day."""
    query = select(WarmupJob.mailbox_id, WarmupJob.local_date, func.count()).where(*where)
    rows = conn.execute(query.group_by(WarmupJob.mailbox_id, WarmupJob.local_date))
    return {(box_id, day): n for box_id, day, n in rows}
