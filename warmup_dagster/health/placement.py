"""Placement, bounces and refused logins per sending mailbox: by local date, or over a window.

A query module, not a table kept up to date: at 100,000 mailboxes x 10 messages a day a
ledger of per-mailbox-day counters would take a million upserts a day from the engagement
runs (each pass of one recipient touches the rows of every sender it heard from), while the
readers (health once every `WARMUP_HEALTH_INTERVAL_SECONDS`, the fill rate once per date) can
afford one grouped query each. The placement of a message is its sender's: the mail a mailbox
sent, where it landed at the recipient. Rows come from three indexes: `engagements` by
`(local_date, sender_mailbox_id)` or `sent_at`, the partial `send_log` index that holds
only the permanent refusals (`smtp_code >= 500`: bounces and refused SMTP logins), and
`imap_refusals` (IMAP logins refused, by `at` or `(local_date, mailbox_id)`). An auth failure
is a refused login on either side: the mailbox's own credentials, refused by its provider.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from typing import Any

from sqlalchemy import Integer, case, cast, func, literal, select, union_all
from sqlalchemy.engine import Connection

from warmup_dagster.core.delivery import AUTH_CODES
from warmup_dagster.core.health import Figures
from warmup_dagster.db.dialect import among
from warmup_dagster.db.models import Engagement, ImapRefusal, JobStatus, Placement, SendLog
from warmup_dagster.planning.planner import any_zone

_FIELDS = ("inbox", "spam", "not_found", "bounces", "auth_failures")


def _flag(condition: Any) -> Any:
    return cast(case((condition, 1), else_=0), Integer)


def _day(day_column: Any) -> list[Any]:
    return [] if day_column is None else [day_column.label("day")]


def _placements(day_column: Any = None) -> Any:
    """Decided placements of `engagements`, one row each: sender, day, the three flags."""
    return select(
        Engagement.sender_mailbox_id.label("mailbox_id"),
        *_day(day_column),
        _flag(Engagement.placement == Placement.INBOX).label("inbox"),
        _flag(Engagement.placement == Placement.SPAM).label("spam"),
        _flag(Engagement.placement == Placement.NOT_FOUND).label("not_found"),
        literal(0).label("bounces"),
        literal(0).label("auth_failures"),
    ).where(Engagement.placement != Placement.PENDING)


def _refusals(day_column: Any = None) -> Any:
    """Permanent refusals of `send_log` (the partial index's rows): bounces and auth failures."""
    auth = SendLog.smtp_code.in_(sorted(AUTH_CODES))
    return select(
        SendLog.mailbox_id.label("mailbox_id"),
        *_day(day_column),
        literal(0).label("inbox"),
        literal(0).label("spam"),
        literal(0).label("not_found"),
        _flag((SendLog.status == JobStatus.FAILED) & ~auth).label("bounces"),
        _flag(auth).label("auth_failures"),
    ).where(SendLog.smtp_code >= 500, SendLog.late.is_(False))


def _imap_refusals(day_column: Any = None) -> Any:
    """IMAP logins refused (`imap_refusals`): auth failures of the mailbox whose login it was."""
    return select(
        ImapRefusal.mailbox_id.label("mailbox_id"),
        *_day(day_column),
        literal(0).label("inbox"),
        literal(0).label("spam"),
        literal(0).label("not_found"),
        literal(0).label("bounces"),
        literal(1).label("auth_failures"),
    )


def _grouped(conn: Connection, rows: Any, by_day: bool) -> dict[Any, Figures]:
    u = rows.subquery()
    keys = [u.c.mailbox_id, u.c.day] if by_day else [u.c.mailbox_id]
    query = select(*keys, *(func.sum(u.c[f]) for f in _FIELDS)).group_by(*keys)
    found = {}
    for row in conn.execute(query):
        key = tuple(row[: len(keys)]) if by_day else row[0]
        found[key] = Figures(*(int(v or 0) for v in row[len(keys) :]))
    return found


def over_window(conn: Connection, since: datetime) -> dict[int, Figures]:
    """Mailbox id -> its figures for mail sent since `since`: one grouped query (health)."""
    placed = _placements().where(Engagement.sent_at >= since)
    refused = _refusals().where(SendLog.created_at >= since)
    imap = _imap_refusals().where(ImapRefusal.at >= since)
    return _grouped(conn, union_all(placed, refused, imap), by_day=False)


def pending_on(conn: Connection, day: date) -> int:
    """How many messages sent on local date `day` have no placement yet (still looked for):
    what a day's placement figures do not count so far."""
    return (
        conn.scalar(
            select(func.count()).where(
                Engagement.local_date == day, Engagement.placement == Placement.PENDING
            )
        )
        or 0
    )


def by_day(
    conn: Connection, first: date, last: date, mailbox_ids: Collection[int] | None = None
) -> dict[tuple[int, date], Figures]:
    """(mailbox id, local date) -> its figures, for the local dates `[first, last]` (the fill
    rate's days, the metrics'), every mailbox's or those of `mailbox_ids`.

    Only mailbox-days with something to count appear. Messages taken in before local dates
    were recorded (`local_date` NULL) are not in any day.
    """
    start, end = any_zone(first)[0], any_zone(last)[1]
    placed = _placements(Engagement.local_date).where(
        Engagement.local_date >= first, Engagement.local_date <= last
    )
    refused = _refusals(SendLog.local_date).where(
        SendLog.created_at >= start,
        SendLog.created_at < end,
        SendLog.local_date >= first,
        SendLog.local_date <= last,
    )
    imap = _imap_refusals(ImapRefusal.local_date).where(
        ImapRefusal.local_date >= first, ImapRefusal.local_date <= last
    )
    if mailbox_ids is None:
        return _grouped(conn, union_all(placed, refused, imap), by_day=True)
    found: dict[tuple[int, date], Figures] = {}
    ids = sorted(mailbox_ids)
    for cond_placed, cond_refused, cond_imap in zip(
        among(conn, Engagement.sender_mailbox_id, ids),
        among(conn, SendLog.mailbox_id, ids),
        among(conn, ImapRefusal.mailbox_id, ids),
        strict=True,
    ):
        rows = union_all(
            placed.where(cond_placed), refused.where(cond_refused), imap.where(cond_imap)
        )
        found.update(_grouped(conn, rows, by_day=True))
    return found
