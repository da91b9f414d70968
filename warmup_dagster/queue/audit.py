"""Checking the counter ledger against the send log (see the package docstring).

`counter_mismatches` recomputes every counter of a span from `send_log` and the jobs in
flight and returns each disagreement, naming scope, subject and period. No Dagster here: an
asset check or a test calls it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from warmup_dagster.core.admission import CounterKey, Scope
from warmup_dagster.core.slots import epoch_minute
from warmup_dagster.db.dialect import epoch_minute_sql
from warmup_dagster.db.models import JobKind, SendCounter, SendLog, WarmupJob
from warmup_dagster.queue.counters import DAY_SCOPES, HOUR_SCOPES, MINUTE_SCOPES
from warmup_dagster.queue.counting import counted
from warmup_dagster.queue.states import IN_FLIGHT

_SUBJECTS = {"GLOBAL": "everyone", "USER": "user", "MAILBOX": "mailbox"}


@dataclass(frozen=True)
class Mismatch:
    """A counter that disagrees with what the send log and the jobs in flight say."""

    scope: Scope
    subject_id: int
    period: int
    stored: int
    expected: int

    def period_label(self) -> str:
        if self.scope in MINUTE_SCOPES:
            return f"the minute from {_minute_start(self.period).isoformat()}"
        if self.scope in HOUR_SCOPES:
            return f"the hour from {_minute_start(self.period * 60).isoformat()}"
        return f"local date {date.fromordinal(self.period).isoformat()}"

    def __str__(self) -> str:
        kind = _SUBJECTS[self.scope.name.split("_")[0]]
        subject = kind if self.scope.name.startswith("GLOBAL") else f"{kind} {self.subject_id}"
        return (
            f"{self.scope.name} of {subject} in {self.period_label()}: the counter says "
            f"{self.stored}, the send log and the jobs in flight say {self.expected}"
        )


def _minute_start(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, UTC)


def counter_mismatches(engine: Engine, since: datetime, until: datetime) -> list[Mismatch]:
    """Every counter of the span that disagrees with the send log and the jobs in flight.

    The span is widened to whole hours for the minute and hour scopes; the day scopes are
    checked for every local date from `since`'s UTC date to `until`'s, whenever their rows
    were written. Only spans whose counters are still kept (`counters.KEEP_MINUTES`,
    `KEEP_DAYS`) can agree.
    """
    first = epoch_minute(since) // 60 * 60
    end = -(-epoch_minute(until) // 60) * 60  # the minute after the span's last whole hour
    lo, hi = _minute_start(first), _minute_start(end)
    days = [since.date() + timedelta(days=n) for n in range((until.date() - since.date()).days + 1)]
    with engine.connect() as conn:
        expected = _claims(conn, lo, hi) + _day_uses(conn, days)
        stored = _stored(conn, first, end, days)
    keys = sorted(set(stored) | set(expected), key=lambda k: (k[0].name, k[1], k[2]))
    return [
        Mismatch(*key, stored.get(key, 0), expected.get(key, 0))
        for key in keys
        if stored.get(key, 0) != expected.get(key, 0)
    ]


def _claims(conn: Connection, lo: datetime, hi: datetime) -> Counter[CounterKey]:
    """The rate scopes: every claim in `[lo, hi)`, closed by a log row or still in flight."""
    out: Counter[CounterKey] = Counter()
    for at, conditions in (
        # A row is written after its claim: the indexed `created_at` bounds the search.
        (SendLog.claimed_at, (SendLog.late.is_(False), SendLog.created_at >= lo)),
        (WarmupJob.picked_at, (WarmupJob.status == IN_FLIGHT,)),
    ):
        user = SendLog.user_id if at is SendLog.claimed_at else WarmupJob.user_id
        minute = epoch_minute_sql(conn, at)
        query = (
            select(minute, user, func.count())
            .where(*conditions, at >= lo, at < hi)
            .group_by(minute, user)
        )
        for m, user_id, n in conn.execute(query):
            m = int(m)
            out.update(
                {
                    (Scope.GLOBAL_MINUTE, 0, m): n,
                    (Scope.GLOBAL_HOUR, 0, m // 60): n,
                    (Scope.USER_MINUTE, user_id, m): n,
                    (Scope.USER_HOUR, user_id, m // 60): n,
                }
            )
    return out


def _day_uses(conn: Connection, days: list[date]) -> Counter[CounterKey]:
    """The day scopes: sends that count and jobs in flight, per user and per mailbox (sends
    only: a reply does not use its mailbox's quota)."""
    out: Counter[CounterKey] = Counter()
    for table, condition in ((SendLog, counted()), (WarmupJob, (WarmupJob.status == IN_FLIGHT,))):
        columns = (table.user_id, table.mailbox_id, table.kind, table.local_date)
        query = (
            select(*columns, func.count())
            .where(*condition, table.local_date.in_(days))
            .group_by(*columns)
        )
        for user_id, mailbox_id, kind, day, n in conn.execute(query):
            out[Scope.USER_DAY, user_id, day.toordinal()] += n
            if kind is JobKind.SEND:
                out[Scope.MAILBOX_DAY, mailbox_id, day.toordinal()] += n
    return out


def _stored(conn: Connection, first: int, end: int, days: Iterable[date]) -> dict[CounterKey, int]:
    c = SendCounter
    ordinals = [d.toordinal() for d in days]
    query = select(c.scope, c.subject_id, c.period, c.used).where(
        ((c.scope.in_(MINUTE_SCOPES)) & (c.period >= first) & (c.period < end))
        | ((c.scope.in_(HOUR_SCOPES)) & (c.period >= first // 60) & (c.period < end // 60))
        | ((c.scope.in_(DAY_SCOPES)) & (c.period.in_(ordinals)))
    )
    return {(scope, subject, period): used for scope, subject, period, used in conn.execute(query)}
