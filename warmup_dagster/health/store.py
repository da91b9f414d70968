"""The `mailbox_health` table: every mailbox's latest verdict. This module writes it.

`refresh` reads the window's figures of every mailbox in one grouped query
(`placement.over_window`), judges each (`core.health.judge`) and replaces the table's rows in
one transaction: one row per mailbox with mail in the window, its `since` kept while the
state stays the same. A mailbox with nothing in the window has no row: healthy.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, insert, select
from sqlalchemy.engine import Engine

from warmup_dagster.core.health import Figures, HealthState, Thresholds, judge
from warmup_dagster.db.engine import chunks, writing
from warmup_dagster.db.models import Mailbox, MailboxHealth
from warmup_dagster.health.placement import over_window
from warmup_dagster.settings import Settings


@dataclass(frozen=True)
class Health:
    """One mailbox's stored verdict, as the CLI and the UI show it."""

    email: str
    state: HealthState
    reason: str
    figures: Figures
    since: datetime


def refresh(engine: Engine, settings: Settings, now: datetime) -> int:
    """Judge every mailbox over the last `WARMUP_HEALTH_WINDOW_DAYS` and store the verdicts.

    Returns the number of mailboxes judged (those with mail in the window).
    """
    thresholds = Thresholds.from_settings(settings)
    since = now - timedelta(days=settings.health_window_days)
    with writing(engine) as conn:
        figures = over_window(conn, since)
        earlier = {
            box: (state, at)
            for box, state, at in conn.execute(
                select(MailboxHealth.mailbox_id, MailboxHealth.state, MailboxHealth.since)
            )
        }
        rows = []
        for box, f in sorted(figures.items()):
            verdict = judge(f, thresholds)
            state, at = earlier.get(box, (None, None))
            rows.append(
                {
                    "mailbox_id": box,
                    "state": verdict.state,
                    "reason": verdict.reason or None,
                    "inbox": f.inbox,
                    "spam": f.spam,
                    "not_found": f.not_found,
                    "bounces": f.bounces,
                    "auth_failures": f.auth_failures,
                    "since": at if state is verdict.state else now,
                    "computed_at": now,
                }
            )
        conn.execute(delete(MailboxHealth))
        for part in chunks(rows):
            conn.execute(insert(MailboxHealth), list(part))
    return len(rows)


def _health(row: Any) -> Health:
    return Health(
        row.email,
        row.state,
        row.reason or "",
        Figures(row.inbox, row.spam, row.not_found, row.bounces, row.auth_failures),
        row.since,
    )


_QUERY = select(Mailbox.email, MailboxHealth.__table__).join(
    Mailbox, Mailbox.id == MailboxHealth.mailbox_id
)


def not_healthy(engine: Engine, limit: int) -> list[Health]:
    """Up to `limit` mailboxes that are not healthy, the worst first."""
    worst_first = case(
        {s.name: n for n, s in enumerate(reversed(list(HealthState)))}, value=MailboxHealth.state
    )
    query = (
        _QUERY.where(MailboxHealth.state != HealthState.HEALTHY)
        .order_by(worst_first, Mailbox.email)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [_health(row) for row in conn.execute(query)]


def counts(engine: Engine) -> dict[str, int]:
    """Mailboxes by state (`mailboxes_<state>`; mailboxes with no verdict count as healthy),
    and the window's figures added up over every mailbox."""
    with engine.connect() as conn:
        by_state = Counter(
            dict(
                conn.execute(
                    select(MailboxHealth.state, func.count()).group_by(MailboxHealth.state)
                ).all()
            )
        )
        pool = conn.scalar(select(func.count()).select_from(Mailbox)) or 0
        totals = conn.execute(
            select(
                *(
                    func.coalesce(func.sum(c), 0)
                    for c in (
                        MailboxHealth.inbox,
                        MailboxHealth.spam,
                        MailboxHealth.not_found,
                        MailboxHealth.bounces,
                        MailboxHealth.auth_failures,
                    )
                )
            )
        ).one()
    judged_unhealthy = sum(n for s, n in by_state.items() if s is not HealthState.HEALTHY)
    figures = {f"mailboxes_{s.value.lower()}": by_state.get(s, 0) for s in HealthState}
    figures["mailboxes_healthy"] = pool - judged_unhealthy
    names = ("inbox", "spam", "not_found", "bounces", "auth_failures")
    return {**figures, **{f"window_{n}": int(v) for n, v in zip(names, totals, strict=True)}}
