"""Planning a batch of mailboxes: load, call the pure core, write. One locked transaction.

For each mailbox, planning covers every local day whose send window has not ended and opens
within `HORIZON` of now: the rest of today and, once it is near, tomorrow. Re-planning a day
replaces its never-attempted pending jobs and plans only what is still owed; jobs that were
sent, are in flight or wait for a retry stay and count against the quota; jobs that failed
stay on record and count for nothing, so what they owed is planned again (catch-up).
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from functools import partial

from sqlalchemy.engine import Connection, Engine, Row

from warmup_dagster.clock import Clock
from warmup_dagster.core.ramp import Quota, RampSettings, daily_quota
from warmup_dagster.core.slots import (
    local_day,
    place_slots,
    send_window,
    with_margins,
)
from warmup_dagster.db.dialect import exclusive, refresh_statistics
from warmup_dagster.db.models import DailyQuota, JobKind, JobStatus, MailboxState, WarmupJob
from warmup_dagster.domains.gate import DomainLimits, limits
from warmup_dagster.health import gate as health_gate
from warmup_dagster.planning import first_day, queries
from warmup_dagster.planning.model import DayPlan, Kept, Order, Target
from warmup_dagster.planning.recipients import pair_recipients
from warmup_dagster.planning.shared import HORIZON, Shared
from warmup_dagster.queue.counting import day_usage
from warmup_dagster.queue.enqueue import JobWriter, replace_unattempted
from warmup_dagster.queue.states import DELIVERED
from warmup_dagster.settings import Settings

LEAD = timedelta(minutes=1)  # the first new slot is at least this far in the future
PART = 5_000  # mailbox-days planned together: the memory of a part, not of the whole call
LOCK = "warmup-planner"


def plan_mailboxes(
    engine: Engine,
    emails: list[str],
    settings: Settings,
    clock: Clock,
    *,
    replan: bool = True,
    rng: random.Random | None = None,
) -> list[DayPlan]:
    """Plan the mailboxes `emails` (partition keys) and return one `DayPlan` per mailbox-day.

    With `replan=False` only days that have no plan yet are planned (the daily schedule);
    with `replan=True` (a rerun from the UI) planned days are planned again, idempotently.
    Unknown addresses are ignored (a partition whose mailbox was deleted). After one round of
    reads, slots, recipients and writes go in parts of `PART` mailbox-days.
    """
    rng = rng or random.Random()
    with exclusive(engine, LOCK) as conn:
        now = clock.now()
        targets = _targets(conn, emails, settings, now, replan)
        if not targets:
            return []
        by_day = _ids_by_day(targets)
        if replan:  # a day not planned yet has no planned jobs
            replace_unattempted(conn, by_day)
        shared = Shared(conn, settings, now, targets, by_day, rng)
        plans = _quotas(conn, targets, shared.kept, settings)
        order = list(zip(targets, plans, strict=True))
        rng.shuffle(order)  # no mailbox is always first to the free minutes
        # One writer for the whole call: the server stores a part's jobs while the next part
        # is computed.
        with JobWriter(conn, now) as jobs:
            for start in range(0, len(order), PART):
                part = order[start : start + PART]
                _place(part, shared, settings, now, rng)
                pair_recipients(part, shared, rng)
                _write(jobs, part, shared.rows, rng)
        queries.replace_daily_quotas(conn, [_outcome(plan, now) for plan in plans])
    # Committed: the claims that start now must plan their queries knowing these jobs.
    refresh_statistics(engine, [WarmupJob.__tablename__, DailyQuota.__tablename__], jobs.written)
    return plans


def _ids_by_day(targets: list[Target]) -> dict[date, list[int]]:
    by_day: dict[date, list[int]] = defaultdict(list)
    for t in targets:
        by_day[t.day].append(t.box.id)
    return by_day


def _place(
    order: Order, shared: Shared, settings: Settings, now: datetime, rng: random.Random
) -> None:
    """Slots for each mailbox-day, through the shared rate-cap ledger."""
    ledger = shared.ledger
    for target, plan in order:
        busy = [due for _, due, _ in shared.kept.get((target.box.id, target.day), [])]
        owed = max(0, plan.quota.value - plan.kept)
        user = target.box.user_id
        # inside the margins, so that latency between claim and arrival crosses no rule
        window, min_gap, max_gap = with_margins(
            target.window,
            settings.same_mailbox_delay_min * 60,
            settings.same_mailbox_delay_max * 60,
            timedelta(seconds=settings.arrival_margin_seconds),
        )
        plan.slots = place_slots(
            owed,
            window,
            now + LEAD,
            min_gap,
            max_gap,
            rng,
            busy=busy,
            fits=partial(ledger.fits, user),
            take=partial(ledger.take, user),
        )
        if len(plan.slots) < owed:
            plan.notes.append(
                f"{owed - len(plan.slots)} of {owed} did not fit the window and rate caps"
            )


def _targets(
    conn: Connection, emails: list[str], settings: Settings, now: datetime, replan: bool
) -> list[Target]:
    targets = []
    for box in queries.batch_mailboxes(conn, emails):
        timezone = box.timezone or settings.send_window_timezone
        today = local_day(now, timezone)
        for day in (today, today + timedelta(days=1)):
            window = send_window(
                day, timezone, settings.send_window_start_hour, settings.send_window_end_hour
            )
            if window.end > now and window.start < now + HORIZON:
                targets.append(Target(box, day, timezone, window))
    if not replan and targets:
        done = queries.planned_days(conn, {t.box.id for t in targets}, {t.day for t in targets})
        targets = [t for t in targets if (t.box.id, t.day) not in done]
    return targets


def _quotas(
    conn: Connection, targets: list[Target], kept: Kept, settings: Settings
) -> list[DayPlan]:
    """Each target's quota, with the owner's plan limit shared across the batch, and a first
    day lowered as `first_day` says.

    The plan limit holds per user and local date, as the sender enforces it: a user's
    mailboxes in several timezones share one limit for each date.
    """
    remaining: dict[tuple[int, date], int] = {}
    groups: dict[date, set[int]] = defaultdict(set)
    for t in targets:
        groups[t.day].add(t.box.user_id)
    for day, users in groups.items():
        # the sends that count and the jobs still queued (`queue.counting.day_usage`)
        used = day_usage(conn, users, day, *any_zone(day))
        for user in users:
            remaining[user, day] = -used[user]
    plans = []
    for t in targets:
        box = t.box
        jobs = kept.get((box.id, t.day), [])
        key = (box.user_id, t.day)
        left = remaining[key] + box.plan_limit
        # replies hold slots (spacing) but no quota: the quota counts the mailbox's SEND jobs
        sends = [status for status, _, kind in jobs if kind is JobKind.SEND]
        kept_queued = sum(1 for status in sends if status != JobStatus.FAILED)
        quota_of = partial(
            _quota_of,
            box,
            limits(box, settings),
            health_gate.limits(box, settings),
            first_day.ramp(box, t.timezone, settings, box.weekdays_only),
            t.day,
            settings.daily_variance,
        )
        # what the plan allows this mailbox: what is left, plus its own jobs already counted
        quota = quota_of(max(0, left) + kept_queued)
        quota = first_day.first_day_quota(t, settings, quota, quota_of)
        plan = DayPlan(box.id, box.email, t.day, quota)
        # a FAILED job stays on record but holds nothing: what it owed is planned again
        plan.kept = kept_queued
        plan.sent = sum(1 for status in sends if status in DELIVERED)
        remaining[key] -= max(0, quota.value - plan.kept)
        plans.append(plan)
    return plans


def _quota_of(
    box: Row,
    domain: DomainLimits,
    health: tuple[float, str],
    ramp: RampSettings,
    day: date,
    variance: float,
    plan_remaining: int | None,
) -> Quota:
    # the mailbox's own state first; an active mailbox may be held for its domain (`gate`)
    active = box.state == MailboxState.ACTIVE
    inactive = f"{box.state.value.lower()}: {box.state_reason or 'no reason given'}"
    health_throttle, health_reason = health
    throttle_reasons = [
        r for r in (box.throttle_reason, domain.throttle_reason, health_reason) if r
    ]
    return daily_quota(
        box.id,
        ramp,
        day,
        active=active and not domain.held,
        inactive_reason=domain.held if active else inactive,
        throttle=min(box.throttle, domain.throttle, health_throttle),
        throttle_reason="; ".join(throttle_reasons),
        plan_remaining=plan_remaining,
        variance=variance,
    )


def any_zone(day: date) -> tuple[datetime, datetime]:
    """A span holding every send and job of local date `day`, in any timezone: from its start
    at UTC+14 to its end at UTC-12, and an hour more each side for a retry's backoff."""
    start = datetime.combine(day, time(0), UTC)
    return start - timedelta(hours=15), start + timedelta(days=1, hours=13)


def _write(
    jobs: JobWriter,
    order: Order,
    rows: dict[int, Row],
    rng: random.Random,
) -> None:
    seeds = rng.getrandbits
    for target, plan in order:
        jobs.add_sends(
            plan.mailbox_id,
            target.box.user_id,
            plan.local_date,
            (
                (recipient, rows[recipient].email, when, seeds(63))
                for when, recipient in zip(plan.slots, plan.recipients, strict=True)
            ),
        )


def _outcome(plan: DayPlan, now: datetime) -> dict:
    """The `daily_quotas` row of a planned mailbox-day."""
    return {
        "mailbox_id": plan.mailbox_id,
        "local_date": plan.local_date,
        "quota": plan.quota.value,
        "ramp": plan.quota.ramp,
        "kept": plan.kept,
        "planned": plan.planned,
        "shortfall": plan.shortfall,
        "reason": plan.reason or None,
        "first_slot": min(plan.slots, default=None),
        "last_slot": max(plan.slots, default=None),
        "planned_at": now,
    }
