"""The `send_totals` ledger: running totals that only grow, for the metrics' counters.

The claim and `record` raise them in the transactions that claim and record, after the
counters (every transaction takes the two tables in that order, so they can't deadlock):

- `SENT` by kind (`send`, `reply`): each send that counts (`counting.counted`), once;
- `ERROR` by reason (`core.reasons.REASONS`): each attempt that did not send, each abandoned
  claim, each late outcome and each job a claim refused;
- `CYCLE` by bucket and `CYCLE_SECONDS`: each recorded attempt's time from its claim to its
  outcome, in clock seconds (an abandoned claim has no outcome to time).

Nothing prunes them: a Prometheus counter must not fall (see migration 0008).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from warmup_dagster.core.delivery import Outcome
from warmup_dagster.core.metrics import CYCLE_BOUNDS, bucket_of
from warmup_dagster.core.reasons import LATE, attempt_error
from warmup_dagster.db.dialect import upsert
from warmup_dagster.db.models import JobKind, SendTotal, Total

TotalKey = tuple[Total, str]

_TOTAL = SendTotal.__table__


def attempt_totals(
    kind: JobKind,
    outcome: Outcome,
    code: int | None,
    late: bool,
    claimed_at: datetime,
    at: datetime,
) -> Counter[TotalKey]:
    """What one recorded attempt adds to the totals."""
    seconds = max(0.0, (at - claimed_at).total_seconds())
    deltas: Counter[TotalKey] = Counter(
        {(Total.CYCLE, bucket_of(seconds, CYCLE_BOUNDS)): 1, (Total.CYCLE_SECONDS, ""): seconds}
    )
    error = LATE if late else attempt_error(outcome, code)
    deltas[(Total.SENT, kind.name.lower()) if error is None else (Total.ERROR, error)] += 1
    return deltas


def errors(reasons: Iterable[str]) -> Counter[TotalKey]:
    return Counter((Total.ERROR, reason) for reason in reasons)


def bump_totals(conn: Connection, deltas: Counter[TotalKey]) -> None:
    """Add `deltas` to the stored totals in one upsert, rows in one order everywhere."""
    rows = [
        {"metric": metric.name, "label": label, "value": n}
        for (metric, label), n in sorted(deltas.items(), key=lambda kv: (kv[0][0].name, kv[0][1]))
        if n
    ]
    if rows:
        statement = upsert(
            conn, _TOTAL, ["metric", "label"], lambda new: {"value": _TOTAL.c.value + new.value}
        )
        conn.execute(statement, rows)


def read_totals(conn: Connection) -> dict[TotalKey, float]:
    """Every stored total (a few dozen rows)."""
    query = select(SendTotal.metric, SendTotal.label, SendTotal.value)
    return {(metric, label): value for metric, label, value in conn.execute(query)}
