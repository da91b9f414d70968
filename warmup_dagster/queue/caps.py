"""What a claim reads besides the counters to decide against every cap."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from warmup_dagster.core.admission import Candidate, CounterKey, Limits, Scope, carried_spans
from warmup_dagster.core.slots import epoch_minute
from warmup_dagster.db.models import DailyQuota, Plan, User, WarmupJob
from warmup_dagster.settings import Settings


def limits_from(settings: Settings) -> Limits:
    return Limits(
        global_per_minute=settings.global_sends_per_minute,
        global_per_hour=settings.global_sends_per_hour,
        user_per_minute=settings.user_sends_per_minute,
        user_per_hour=settings.user_sends_per_hour,
        min_spacing=timedelta(minutes=settings.same_mailbox_delay_min),
        window_start_hour=settings.send_window_start_hour,
        window_end_hour=settings.send_window_end_hour,
        arrival_margin=timedelta(seconds=settings.arrival_margin_seconds),
    )


def carried(conn: Connection, now: datetime, margin: timedelta) -> Counter[CounterKey]:
    """The claims before `now`'s minute and hour that may arrive in them, keyed like the caps
    they count against (see `core.admission.carried_spans`), for every owner: the global caps
    take them all."""
    result: Counter[CounterKey] = Counter()
    if margin <= timedelta(0):
        return result
    minute = epoch_minute(now)
    scopes = [
        (Scope.GLOBAL_MINUTE, Scope.USER_MINUTE, minute),
        (Scope.GLOBAL_HOUR, Scope.USER_HOUR, minute // 60),
    ]
    claims: dict[tuple[datetime, datetime], list] = {}
    for span, (global_scope, user_scope, window) in zip(
        carried_spans(now, margin), scopes, strict=True
    ):
        if span not in claims:  # in an hour's first minute both spans are the same
            since, until = span
            claims[span] = conn.execute(
                select(WarmupJob.user_id, func.count())
                .where(WarmupJob.picked_at >= since, WarmupJob.picked_at < until)
                .group_by(WarmupJob.user_id)
            ).all()
        for user, n in claims[span]:
            result[(user_scope, user, window)] += n
            result[(global_scope, 0, window)] += n
    return result


def last_claimed(conn: Connection, candidates: list[Candidate]) -> dict[int, datetime]:
    """Per mailbox, when any of its jobs was last claimed (the spacing's reference)."""
    since = min(c.local_date for c in candidates) - timedelta(days=1)
    query = (
        select(WarmupJob.mailbox_id, func.max(WarmupJob.picked_at))
        .where(
            WarmupJob.mailbox_id.in_({c.mailbox_id for c in candidates}),
            WarmupJob.local_date >= since,
        )
        .group_by(WarmupJob.mailbox_id)
    )
    return {box: at for box, at in conn.execute(query) if at is not None}


def quotas(conn: Connection, candidates: list[Candidate]) -> dict[tuple[int, date], int]:
    pairs = {(c.mailbox_id, c.local_date) for c in candidates if c.counts_toward_quota}
    if not pairs:
        return {}
    query = select(DailyQuota.mailbox_id, DailyQuota.local_date, DailyQuota.quota).where(
        DailyQuota.mailbox_id.in_({box for box, _ in pairs}),
        DailyQuota.local_date.in_({day for _, day in pairs}),
    )
    return {(box, day): quota for box, day, quota in conn.execute(query)}


def plan_limits(conn: Connection, users: set[int]) -> dict[int, int]:
    query = (
        select(User.id, Plan.daily_send_limit)
        .join(Plan, Plan.id == User.plan_id)
        .where(User.id.in_(users))
    )
    return dict(conn.execute(query).all())
