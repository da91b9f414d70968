"""The `send_counters` ledger: reading, raising and pruning the caps' counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.engine import Connection, Engine

from warmup_dagster.core.admission import CounterKey, Scope
from warmup_dagster.core.slots import epoch_minute
from warmup_dagster.db.dialect import upsert
from warmup_dagster.db.engine import chunks, writing
from warmup_dagster.db.models import SendCounter

# Keep minute and hour counters this long, day counters a week: enough for any report.
KEEP_MINUTES = 2 * 24 * 60
KEEP_DAYS = 7
MINUTE_SCOPES = (Scope.GLOBAL_MINUTE, Scope.USER_MINUTE)
HOUR_SCOPES = (Scope.GLOBAL_HOUR, Scope.USER_HOUR)
DAY_SCOPES = (Scope.USER_DAY, Scope.MAILBOX_DAY)

_COUNTER = SendCounter.__table__
_KEY = (_COUNTER.c.scope, _COUNTER.c.subject_id, _COUNTER.c.period)


def read_counters(conn: Connection, keys: Iterable[CounterKey]) -> dict[CounterKey, int]:
    """The stored counts of `keys` (absent keys are left out: they are 0)."""
    found: dict[CounterKey, int] = {}
    for part in chunks(list(set(keys)), 1000):  # three parameters per key
        query = select(*_KEY, _COUNTER.c.used).where(tuple_(*_KEY).in_(part))
        for scope, subject, period, used in conn.execute(query):
            found[scope, subject, period] = used
    return found


def _lock_order(item: tuple[CounterKey, int]) -> tuple[str, int, int]:
    (scope, subject, period), _ = item
    return scope.name, subject, period


def bump_counters(conn: Connection, deltas: Counter[CounterKey]) -> None:
    """Add `deltas` to the stored counters in one statement (an upsert).

    Rows are written in one order everywhere, so two transactions can't deadlock on them.
    """
    rows = [
        {"scope": scope.name, "subject_id": subject, "period": period, "used": n}
        for (scope, subject, period), n in sorted(deltas.items(), key=_lock_order)
        if n
    ]
    if rows:
        statement = upsert(
            conn,
            _COUNTER,
            ["scope", "period", "subject_id"],
            lambda new: {"used": _COUNTER.c.used + new.used},
        )
        conn.execute(statement, rows)


def _prunable(now: datetime) -> list[Any]:
    """The conditions of the counters no cap and no audit reads again, one per scope group."""
    minute = epoch_minute(now)
    old_day = now.date().toordinal() - KEEP_DAYS
    return [
        SendCounter.scope.in_(scopes) & (SendCounter.period < before)
        for scopes, before in (
            (MINUTE_SCOPES, minute - KEEP_MINUTES),
            (HOUR_SCOPES, (minute - KEEP_MINUTES) // 60),
            (DAY_SCOPES, old_day),
        )
    ]


def prune_counters(engine: Engine, now: datetime) -> int:
    """Delete counters no cap will read again, in one transaction; returns how many.

    A sender run does it at its start: little has piled up since the last run. Retention
    deletes them in batches (`delete_counter_batch`).
    """
    with writing(engine) as conn:
        return sum(conn.execute(delete(SendCounter).where(old)).rowcount for old in _prunable(now))


def delete_counter_batch(conn: Connection, now: datetime, batch: int) -> int:
    """Delete at most `batch` of the counters `prune_counters` would delete; returns how many
    (0 when none is left)."""
    for old in _prunable(now):
        keys = select(*_KEY).where(old).limit(batch)
        if deleted := conn.execute(delete(SendCounter).where(tuple_(*_KEY).in_(keys))).rowcount:
            return deleted
    return 0


def count_prunable_counters(engine: Engine, now: datetime) -> int:
    """How many counters `prune_counters` would delete now."""
    with engine.connect() as conn:
        return sum(
            conn.scalar(select(func.count()).select_from(SendCounter).where(old)) or 0
            for old in _prunable(now)
        )
