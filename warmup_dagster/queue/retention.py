"""Retention: deleting the history nobody needs any more, in bounded batches.

`warmup_jobs` and `send_log` grow by about a million rows a day each at full scale. For each
local date past retention (before `cutoff`), oldest first, and only for the dates the caller
releases (the `fill_rate` record exists, see `sensors/retention.py`), `prune` deletes:

- its finished jobs (`states.FINISHED`: SENT, FAILED) with their `send_log` rows, at most
  `WARMUP_RETENTION_BATCH_ROWS` jobs per transaction;
- its `send_log` rows whose job is gone already (`job_id` NULL);
- its `daily_quotas` rows of the mailboxes that have no job of the date left;

and then the counters no cap and no audit reads again (`counters.prune_counters`, batched).

What stays: every job still queued (PENDING, RETRY: a paused mailbox's, owed until a claim
refuses it as expired after the resume) or in flight (PROCESSING), with its log rows and its
mailbox's quota of the date; every date not past retention; every date not released.
`send_totals` is never pruned: the Prometheus counters read it and must not fall.

Each batch is one short transaction: it locks only the finished rows it deletes, which no
claim selects (a claim reads `(status, due_at)` for PENDING and RETRY and skips locked rows),
and it takes no table lock and not the claim lock. On SQLite, where every write holds the
database's one write lock, the batch size bounds how long a claim waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.engine import Connection, Engine

from warmup_dagster.db.dialect import among, refresh_statistics
from warmup_dagster.db.engine import writing
from warmup_dagster.db.models import DailyQuota, SendLog, WarmupJob
from warmup_dagster.queue.counters import count_prunable_counters, delete_counter_batch
from warmup_dagster.queue.states import FINISHED
from warmup_dagster.settings import Settings

# Given the dates past retention, the ones that may be pruned.
Release = Callable[[list[date]], set[date]]


def cutoff(now: datetime, days: int) -> date | None:
    """The first local date kept: dates before it are past retention (None: keep all).

    `days` clock days before the clock's UTC date, which is at most a day off any mailbox's
    local date.
    """
    return now.date() - timedelta(days=days) if days else None


@dataclass
class DayPruned:
    """What pruning one local date deleted (or, in a dry run, would delete) and kept."""

    day: date
    jobs: int = 0
    log_rows: int = 0
    quotas: int = 0
    held: int = 0  # jobs of the date kept: still queued or in flight

    def __str__(self) -> str:
        kept = f"; kept {self.held:,} jobs still queued or in flight" if self.held else ""
        return (
            f"{self.day}: {self.jobs:,} finished jobs, {self.log_rows:,} send-log rows,"
            f" {self.quotas:,} daily quotas{kept}"
        )


@dataclass
class Pruned:
    """What one prune did: per date, the dates kept unreleased, the counters, the batches."""

    cutoff: date | None
    dry_run: bool
    days: list[DayPruned] = field(default_factory=list)
    unreleased: list[date] = field(default_factory=list)
    counters: int = 0
    batches: int = 0
    longest_batch_seconds: float = 0.0

    @property
    def jobs(self) -> int:
        return sum(d.jobs for d in self.days)

    @property
    def log_rows(self) -> int:
        return sum(d.log_rows for d in self.days)

    @property
    def quotas(self) -> int:
        return sum(d.quotas for d in self.days)

    @property
    def rows(self) -> int:
        return self.jobs + self.log_rows + self.quotas + self.counters

    def metadata(self) -> dict[str, Any]:
        """The figures a run records (numbers, and the dates as text)."""
        return {
            "cutoff": str(self.cutoff),
            "dry_run": self.dry_run,
            "days_pruned": len(self.days),
            "jobs": self.jobs,
            "log_rows": self.log_rows,
            "quotas": self.quotas,
            "counters": self.counters,
            "batches": self.batches,
            "longest_batch_seconds": round(self.longest_batch_seconds, 3),
            "kept_without_fill_rate": ", ".join(map(str, self.unreleased)),
        }

    def lines(self) -> list[str]:
        """The report, one line each: the dates, what was kept, the totals."""
        verb = "would delete" if self.dry_run else "deleted"
        if self.cutoff is None:
            out = ["retention is off (WARMUP_RETENTION_DAYS=0): no history is pruned"]
        else:
            out = [f"dates before {self.cutoff} are past retention"]
            out += [str(d) for d in self.days]
        if self.unreleased:
            out.append(
                f"kept {len(self.unreleased)} dates without a fill_rate record: "
                + ", ".join(map(str, self.unreleased))
                + " (materialize their fill_rate partitions, or set"
                " WARMUP_RETENTION_REQUIRES_FILL_RATE=false)"
            )
        out.append(
            f"{verb} {self.jobs:,} jobs, {self.log_rows:,} send-log rows, {self.quotas:,} daily"
            f" quotas and {self.counters:,} counters"
            + ("" if self.dry_run else f" in {self.batches:,} batches")
        )
        return out


def old_dates(engine: Engine, before: date) -> list[date]:
    """Every local date before `before` with rows in `warmup_jobs`, `send_log` or
    `daily_quotas`, in order.

    One index probe per date and table (the smallest date after the last one found), so the
    cost is the number of old dates, not the number of old rows.
    """
    found: set[date] = set()
    with engine.connect() as conn:
        for column in (WarmupJob.local_date, SendLog.local_date, DailyQuota.local_date):
            after: date | None = None
            while True:
                conditions = [column < before] + ([] if after is None else [column > after])
                after = conn.scalar(select(func.min(column)).where(*conditions))
                if after is None:
                    break
                found.add(after)
    return sorted(found)


def prune(
    engine: Engine,
    now: datetime,
    settings: Settings,
    release: Release | None = None,
    *,
    dry_run: bool = False,
) -> Pruned:
    """Delete what is past retention (see the module docstring); report what went.

    Args:
        now: the clock's time; dates before `cutoff(now, WARMUP_RETENTION_DAYS)` are past
            retention.
        release: given those dates, the ones that may go (the others are kept and reported);
            None releases all of them.
        dry_run: count what would be deleted, delete nothing.

    Returns:
        Per date, what was (or would be) deleted and kept; the counters; the batches and the
        longest one's seconds (wall time, each batch one transaction).
    """
    first_kept = cutoff(now, settings.retention_days)
    result = Pruned(first_kept, dry_run)
    if first_kept is not None:
        dates = old_dates(engine, first_kept)
        released = set(dates) if release is None else release(dates) & set(dates)
        result.unreleased = [d for d in dates if d not in released]
        batch = settings.retention_batch_rows
        for day in sorted(released):
            if dry_run:
                result.days.append(_count_day(engine, day))
            else:
                result.days.append(_prune_day(engine, day, batch, result))
    if dry_run:
        result.counters = count_prunable_counters(engine, now)
    else:
        batch = settings.retention_batch_rows

        def counters(conn: Connection) -> int:
            deleted = delete_counter_batch(conn, now, batch)
            result.counters += deleted
            return deleted

        _batches(engine, result, counters)
        if result.rows:
            refresh_statistics(
                engine, ["warmup_jobs", "send_log", "daily_quotas", "send_counters"], result.rows
            )
    return result


def _elapsed(started: float) -> float:
    return time.monotonic() - started


def _finished_of(day: date) -> tuple[Any, ...]:
    return (WarmupJob.local_date == day, WarmupJob.status.in_(FINISHED))


def _orphans_of(day: date) -> tuple[Any, ...]:
    return (SendLog.local_date == day, SendLog.job_id.is_(None))


def _without_jobs(day: date) -> tuple[Any, ...]:
    """A mailbox's quota of `day` that no job of the day needs any more."""
    left = exists().where(
        WarmupJob.mailbox_id == DailyQuota.mailbox_id, WarmupJob.local_date == day
    )
    return (DailyQuota.local_date == day, ~left)


def _delete_in(conn: Connection, table: Any, column: Any, ids: Iterable[Any], *extra: Any) -> int:
    deleted = 0
    for condition in among(conn, column, list(ids)):
        deleted += conn.execute(delete(table).where(condition, *extra)).rowcount
    return deleted


def _batches(engine: Engine, result: Pruned, step: Callable[[Connection], int]) -> None:
    """Run `step` (one batch: it returns how many rows it found to delete) in a transaction
    of its own each time, until it finds none."""
    while True:
        started = time.monotonic()
        with writing(engine) as conn:
            found = step(conn)
        if not found:
            return
        result.batches += 1
        result.longest_batch_seconds = max(result.longest_batch_seconds, _elapsed(started))


def _prune_day(engine: Engine, day: date, batch: int, result: Pruned) -> DayPruned:
    pruned = DayPruned(day)

    def jobs(conn: Connection) -> int:
        ids = conn.scalars(select(WarmupJob.id).where(*_finished_of(day)).limit(batch)).all()
        # The log rows first: deleting a job would otherwise set their job_id to NULL.
        pruned.log_rows += _delete_in(conn, SendLog, SendLog.job_id, ids)
        # FINISHED is final, so the rows are still finished; the check costs nothing.
        pruned.jobs += _delete_in(
            conn, WarmupJob, WarmupJob.id, ids, WarmupJob.status.in_(FINISHED)
        )
        return len(ids)

    def orphans(conn: Connection) -> int:
        ids = conn.scalars(select(SendLog.id).where(*_orphans_of(day)).limit(batch)).all()
        pruned.log_rows += _delete_in(conn, SendLog, SendLog.id, ids)
        return len(ids)

    def quotas(conn: Connection) -> int:
        boxes = conn.scalars(
            select(DailyQuota.mailbox_id).where(*_without_jobs(day)).limit(batch)
        ).all()
        pruned.quotas += _delete_in(
            conn, DailyQuota, DailyQuota.mailbox_id, boxes, *_without_jobs(day)
        )
        return len(boxes)

    for step in (jobs, orphans, quotas):
        _batches(engine, result, step)
    with engine.connect() as conn:
        pruned.held = conn.scalar(
            select(func.count()).select_from(WarmupJob).where(WarmupJob.local_date == day)
        )
    return pruned


def _count_day(engine: Engine, day: date) -> DayPruned:
    """What `_prune_day` would delete of `day`, counted."""
    finished = select(WarmupJob.id).where(*_finished_of(day))
    with engine.connect() as conn:

        def count(table: Any, *conditions: Any) -> int:
            return conn.scalar(select(func.count()).select_from(table).where(*conditions)) or 0

        jobs = count(WarmupJob, *_finished_of(day))
        log_rows = count(SendLog, SendLog.job_id.in_(finished)) + count(SendLog, *_orphans_of(day))
        held = count(WarmupJob, WarmupJob.local_date == day) - jobs
        # quotas whose mailbox keeps no job of the day once its finished jobs are gone
        unfinished = exists().where(
            WarmupJob.mailbox_id == DailyQuota.mailbox_id,
            WarmupJob.local_date == day,
            WarmupJob.status.not_in(FINISHED),
        )
        quotas = count(DailyQuota, DailyQuota.local_date == day, ~unfinished)
    return DayPruned(day, jobs, log_rows, quotas, held)
