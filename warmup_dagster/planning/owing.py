"""Which mailboxes owe sends now that a re-plan could still place: the catch-up's question.

A mailbox-day owes `quota - sends that count - jobs still queued` (`queue.counting`), where
a planned send never attempted `WARMUP_CATCH_UP_HELD_SECONDS` after its slot is not counted
as queued: it was
held (its mailbox paused, then resumed; sending stopped), and a re-plan spreads it over what
is left of the window instead of the sender sending the backlog back to back. Its last
planning recorded a `shortfall`: what did not fit then. It is worth re-planning when it owes
more than that shortfall (something was lost or held since), it is active, and its send
window is still open with room for a slot.

A mailbox paused when its day was planned has a quota of 0 for that day and no job to fail
or hold. Resumed later, it is `resumed`: planned with nothing before its state last changed,
and worth a re-plan, which gives it the day's quota in what is left of its window (the
planner's whole computation: ramp, weekdays, throttles, plan; so `owed` says 0 until then).
Re-planned, its plan is newer than its state and it is found as any other.

Found by index, never by a scan of history: the candidates are the mailboxes with a FAILED
job, or an overdue planned one, due in the last two days (the `(status, due_at)` index holds
few of either), or whose state changed in the last two days (`state_changed_at`), and only
they are counted (their jobs by `(mailbox_id, local_date)`, their sends by
`(mailbox_id, created_at)`, their `daily_quotas` row by its key).
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
    resumed: bool = False  # planned with a quota of 0 before it was last made active

    @property
    def owed(self) -> int:
        return max(0, self.quota - self.counted - (self.queued - self.overdue))

    @property
    def worth_replanning(self) -> bool:
        return self.resumed or self.owed > self.shortfall


def owing(conn: Connection, settings: Settings, now: datetime) -> list[Owing]:
    """The active mailboxes whose today (in their timezone) owes more than its last plan's
    shortfall, or was planned with nothing before they were resumed, with their window open
    past the planner's first slot; in mailbox id order."""
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
    columns = (
        Mailbox.id,
        Mailbox.email,
        Mailbox.timezone,
        Mailbox.state,
        Mailbox.state_changed_at,
    )
    changed = {
        b.id: b
        for b in conn.execute(
            select(*columns).where(
                Mailbox.state_changed_at >= now - LOOK_BACK, Mailbox.state == MailboxState.ACTIVE
            )
        )
    }
    with_jobs = failed.keys() | overdue.keys()
    boxes = dict(changed)
    for among_ids in among(conn, Mailbox.id, {box_id for box_id, _ in with_jobs} - changed.keys()):
        boxes.update({b.id: b for b in conn.execute(select(*columns).where(among_ids))})
    open_days: dict[tuple[int, date], Any] = {}
    for box_id, box in boxes.items():
        if box.state != MailboxState.ACTIVE:
            continue
        timezone = box.timezone or settings.send_window_timezone
        day = local_day(now, timezone)
        if box_id not in changed and (box_id, day) not in with_jobs:
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
        quotas: dict[int, tuple[int, int, datetime]] = {}
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
                (q.mailbox_id, (q.quota, q.shortfall, q.planned_at))
                for q in conn.execute(
                    select(
                        DailyQuota.mailbox_id,
                        DailyQuota.quota,
                        DailyQuota.shortfall,
                        DailyQuota.planned_at,
                    ).where(among_ids, DailyQuota.local_date == day)
                )
            )
        for box_id in ids:
            if box_id not in quotas:
                continue  # never planned: the daily pass plans it
            quota, shortfall, planned_at = quotas[box_id]
            changed_at = open_days[box_id, day].state_changed_at
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
                resumed=quota == 0 and changed_at is not None and planned_at < changed_at,
            )
            if row.worth_replanning:
                found.append(row)
    return sorted(found, key=lambda o: o.mailbox_id)


def owing_summary(found: list[Owing]) -> str:
    """One line: how many mailboxes owe how many sends, and how many were resumed."""
    behind = [o for o in found if not o.resumed]
    line = f"{len(behind):,} mailboxes owe {sum(o.owed - o.shortfall for o in behind):,} sends"
    if resumed := len(found) - len(behind):
        line += f"; {resumed:,} resumed after a plan made while paused get their day's quota"
    return line


def _per_day(conn: Connection, *where: Any) -> dict[tuple[int, date], int]:
    """How many jobs match `where`, per mailbox-day."""
    query = select(WarmupJob.mailbox_id, WarmupJob.local_date, func.count()).where(*where)
    rows = conn.execute(query.group_by(WarmupJob.mailbox_id, WarmupJob.local_date))
    return {(box_id, day): n for box_id, day, n in rows}
