"""Loading one local day's rows into pandas frames: the only I/O of a day's figures.

Every query selects by the day (`local_date`, indexed on each table) or by the span of that
day's claims (`send_log.created_at`, indexed), never the whole history: at a million sends a
day it is one pass over the day's rows. What counts as a send is the queue's definition
(`queue.counting.counted`), evaluated in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import and_, case, func, select, type_coerce
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.types import NullType

from warmup_dagster.db.models import (
    DailyQuota,
    JobStatus,
    Mailbox,
    Plan,
    SendLog,
    User,
    WarmupJob,
)
from warmup_dagster.queue.counting import counted, possibly_delivered
from warmup_dagster.queue.states import IN_FLIGHT

# Attempts of other local days are found by when their outcome was written, which follows the
# claim by seconds; an abandoned attempt is closed when another claim takes its job over, a
# lease later. One that was closed later than this after its claim is not counted against the
# rate caps of this day's span (the counter audit, `queue.audit`, still sees it).
OTHER_DAYS_SLACK = timedelta(hours=1)


@dataclass(frozen=True)
class DayRows:
    """One local day's rows (frames indexed from 0 unless said otherwise).

    - `mailboxes` (indexed by mailbox id): `email`, `user_id`, `user` (the owner's name),
      `timezone`,
      `daily_limit`, `plan_limit` (the owner plan's sends a day); every mailbox of the pool;
    - `quotas` (indexed by mailbox id): the day's `daily_quotas` rows;
    - `log`: the day's `send_log` rows: `job`, `mailbox`, `user` (ids), `kind`, `status`
      (names), `late`, `counts` (a send that counts), `possibly` (an abandoned attempt,
      perhaps delivered: `queue.counting.possibly_delivered`), `at` (the claim; the outcome's
      time for rows from before claims were logged);
    - `jobs`: the day's jobs: `job`, `mailbox`, `status`, `scheduled_at`, and `picked_at` for
      the jobs in flight;
    - `failed`: the day's failed jobs: `mailbox`, `smtp_code`, `error`;
    - `other_attempts`: attempts of other local days claimed in the hours of this day's claims
      (`user` id, `at`), which share its rate caps.
    """

    day: date
    mailboxes: pd.DataFrame
    quotas: pd.DataFrame
    log: pd.DataFrame
    jobs: pd.DataFrame
    failed: pd.DataFrame
    other_attempts: pd.DataFrame


# Rows fetched and turned into columns at a time: a million rows at once held three copies of
# the day (the driver's tuples, SQLAlchemy's rows, the columns) before pandas had the first.
CHUNK = 100_000


def _frame(conn: Connection, query: Any, columns: list[str]) -> pd.DataFrame:
    result = conn.execution_options(yield_per=CHUNK).execute(query)
    parts = [
        pd.DataFrame(dict(zip(columns, zip(*rows, strict=True), strict=True)))
        for rows in result.partitions()
    ]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({c: [] for c in columns})


def _times(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Timestamps as the driver gives them (SQLite's are naive UTC text), converted at once."""
    for column in columns:
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame


def _raw(column: Any) -> Any:
    """A column as the driver returns it, without its type's processing of every value (an
    enum object or a checked UTC timestamp per row: most of the read at a million rows)."""
    return type_coerce(column, NullType())


def load_day(engine: Engine, day: date, default_timezone: str) -> DayRows:
    """Read local date `day`'s rows (see `DayRows`)."""
    with engine.connect() as conn:
        mailboxes = _frame(
            conn,
            select(
                Mailbox.id,
                Mailbox.email,
                Mailbox.user_id,
                User.name,
                Mailbox.timezone,
                Mailbox.daily_limit,
                Plan.daily_send_limit,
            )
            .join(User, User.id == Mailbox.user_id)
            .join(Plan, Plan.id == User.plan_id),
            ["mailbox", "email", "user_id", "user", "timezone", "daily_limit", "plan_limit"],
        ).set_index("mailbox")
        mailboxes["timezone"] = mailboxes["timezone"].fillna(default_timezone)
        q = DailyQuota
        quotas = _frame(
            conn,
            select(q.mailbox_id, q.quota, q.kept, q.planned, q.shortfall, q.reason).where(
                q.local_date == day
            ),
            ["mailbox", "quota", "kept", "planned", "shortfall", "reason"],
        ).set_index("mailbox")
        log = _times(
            _frame(
                conn,
                select(
                    SendLog.job_id,
                    SendLog.mailbox_id,
                    SendLog.user_id,
                    _raw(SendLog.kind),
                    _raw(SendLog.status),
                    SendLog.late,
                    and_(*counted()),
                    and_(*possibly_delivered()),
                    # rows from before claims were logged: the outcome's time
                    _raw(func.coalesce(SendLog.claimed_at, SendLog.created_at)),
                ).where(SendLog.local_date == day),
                ["job", "mailbox", "user", "kind", "status", "late", "counts", "possibly", "at"],
            ),
            "at",
        )
        log["late"] = log["late"].astype(bool)
        log["counts"] = log["counts"].astype(bool)
        log["possibly"] = log["possibly"].astype(bool)
        jobs = _times(
            _frame(
                conn,
                select(
                    WarmupJob.id,
                    WarmupJob.mailbox_id,
                    _raw(WarmupJob.status),
                    _raw(WarmupJob.scheduled_at),
                    # only the claim of a job in flight is read (the stuck jobs)
                    _raw(case((WarmupJob.status == IN_FLIGHT, WarmupJob.picked_at))),
                ).where(WarmupJob.local_date == day),
                ["job", "mailbox", "status", "scheduled_at", "picked_at"],
            ),
            "scheduled_at",
            "picked_at",
        )
        failed = _frame(
            conn,
            select(WarmupJob.mailbox_id, WarmupJob.smtp_code, WarmupJob.error).where(
                WarmupJob.local_date == day, WarmupJob.status == JobStatus.FAILED
            ),
            ["mailbox", "smtp_code", "error"],
        )
        others = _other_attempts(conn, day, log)
    return DayRows(day, mailboxes, quotas, log, jobs, failed, others)


def claim_span(log: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The whole clock hours in which the day's attempts were claimed, `[first, end)`."""
    if log.empty:
        return None
    return log["at"].min().floor("h"), log["at"].max().floor("h") + pd.Timedelta(hours=1)


def _other_attempts(conn: Connection, day: date, log: pd.DataFrame) -> pd.DataFrame:
    span = claim_span(log)
    columns = ["user", "at"]
    if span is None:
        return pd.DataFrame(columns=columns)
    lo, hi = (t.to_pydatetime() for t in span)
    query = select(SendLog.user_id, _raw(SendLog.claimed_at)).where(
        SendLog.created_at >= lo,
        SendLog.created_at < hi + OTHER_DAYS_SLACK,
        SendLog.claimed_at >= lo,
        SendLog.claimed_at < hi,
        SendLog.late.is_(False),
        (SendLog.local_date != day) | SendLog.local_date.is_(None),
    )
    return _times(_frame(conn, query, columns), "at")
