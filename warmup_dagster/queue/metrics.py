"""What the metrics read at scrape time: small tables and index-backed counts, never the log.

- `send_totals` (`totals.read_totals`) for the counters and the cycle histogram;
- the jobs queued, by status and whether they are due, from the `(status, due_at)` index;
- the sender runs holding claims: the distinct workers of the jobs in flight;
- each mailbox's current local day: its quota (`daily_quotas`) and its `MAILBOX_DAY` counter
  (the sends that count plus the jobs in flight, see `warmup_dagster.queue`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from warmup_dagster.core.admission import Scope
from warmup_dagster.core.slots import local_day
from warmup_dagster.db.models import DailyQuota, Mailbox, SendCounter, WarmupJob
from warmup_dagster.queue.states import IN_FLIGHT, QUEUED


def queue_depth(conn: Connection, now: datetime) -> dict[tuple[str, bool], int]:
    """Queued jobs per (status, due by `now`); every pair of `QUEUED` x (True, False) is
    present."""
    due = WarmupJob.due_at <= now
    query = (
        select(WarmupJob.status, due, func.count())
        .where(WarmupJob.status.in_(QUEUED))
        .group_by(WarmupJob.status, due)
    )
    depth = {(status.name, flag): 0 for status in QUEUED for flag in (True, False)}
    for status, is_due, n in conn.execute(query):
        depth[status.name, bool(is_due)] += n
    return depth


def active_workers(conn: Connection, now: datetime) -> int:
    """Sender runs holding claims: distinct workers of the jobs in flight, lease not run out."""
    query = select(func.count(func.distinct(WarmupJob.worker_id))).where(
        WarmupJob.status == IN_FLIGHT, WarmupJob.lease_expires_at >= now
    )
    return conn.scalar(query) or 0


def mailbox_days(
    conn: Connection, now: datetime, default_timezone: str
) -> Counter[tuple[int, int]]:
    """How many mailboxes had each `(quota, used)` on their current local day (in their own
    timezone at `now`): that day's quota in `daily_quotas` and what its counter has used.
    Mailboxes not planned for that day are left out. Run it in `dialect.scanning`: a day's new
    quotas are past the table's statistics, and PostgreSQL then looped over every counter of
    the day for every quota (100,000 x 100,000 at 100,000 mailboxes) instead of hashing them.
    """
    zones = [tz for (tz,) in conn.execute(select(Mailbox.timezone).distinct())]
    by_day: dict[date, list[str | None]] = defaultdict(list)
    for tz in zones:
        by_day[local_day(now, tz or default_timezone)].append(tz)
    counts: Counter[tuple[int, int]] = Counter()
    for day, day_zones in by_day.items():
        used = func.coalesce(SendCounter.used, 0)
        query = (
            select(DailyQuota.quota, used, func.count())
            .outerjoin(
                SendCounter,
                and_(
                    SendCounter.scope == Scope.MAILBOX_DAY,
                    SendCounter.period == day.toordinal(),
                    SendCounter.subject_id == DailyQuota.mailbox_id,
                ),
            )
            .where(DailyQuota.local_date == day)
            .group_by(DailyQuota.quota, used)
        )
        if len(by_day) > 1:  # only the mailboxes whose current day this is
            named = [tz for tz in day_zones if tz is not None]
            in_zones = Mailbox.timezone.in_(named)
            if None in day_zones:
                in_zones = in_zones | Mailbox.timezone.is_(None)
            query = query.join(Mailbox, Mailbox.id == DailyQuota.mailbox_id).where(in_zones)
        counts.update({(quota, n_used): n for quota, n_used, n in conn.execute(query)})
    return counts
