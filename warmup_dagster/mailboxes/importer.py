"""Importing mailboxes from CSV: validate everything, then write everything or nothing."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from warmup_dagster.clock import Clock
from warmup_dagster.crypto import Cipher
from warmup_dagster.db.dialect import upsert
from warmup_dagster.db.models import Mailbox, MailboxState, Plan, User
from warmup_dagster.mailboxes.rows import MailboxRow, RowError, read_rows
from warmup_dagster.progress import ProgressFactory, SilentProgress

DEFAULT_PLAN = "default"
WRITE_CHUNK = 2_000


class ImportRejected(ValueError):
    """The file has bad rows; nothing was written. `errors` lists every one."""

    def __init__(self, errors: list[RowError], rows_read: int) -> None:
        self.errors = sorted(errors, key=lambda e: (e.line, e.field))
        self.rows_read = rows_read
        bad_lines = len({e.line for e in self.errors})
        shown = "\n  ".join(str(e) for e in self.errors[:200])
        more = f"\n  ... and {len(self.errors) - 200} more" if len(self.errors) > 200 else ""
        super().__init__(
            f"nothing imported: {bad_lines} of {rows_read} rows rejected\n  {shown}{more}"
        )


@dataclass
class ImportSummary:
    rows_read: int = 0
    created: int = 0
    updated: int = 0
    rejected: int = 0
    users_created: list[str] = field(default_factory=list)
    dry_run: bool = False

    def __str__(self) -> str:
        verb = "would be " if self.dry_run else ""
        return (
            f"rows read: {self.rows_read:,}; {verb}created: {self.created:,}; "
            f"{verb}updated: {self.updated:,}; rejected: {self.rejected:,}; "
            f"new users: {len(self.users_created):,}"
        )


def import_mailboxes(
    engine: Engine,
    stream: TextIO,
    *,
    cipher: Cipher,
    clock: Clock,
    default_timezone: str = "UTC",
    dry_run: bool = False,
    progress: ProgressFactory = SilentProgress,
) -> ImportSummary:
    """Validate a mailbox CSV and upsert it by address in one transaction.

    A new mailbox starts ACTIVE, its warmup counted from today in its own timezone (or
    `default_timezone`); a re-imported one keeps its state and warmup start date.

    Raises:
        ImportRejected: if any row is invalid or would break a plan's limits; nothing is written.
    """
    rows, errors = [], []
    with progress("read and validate", None) as bar:
        for parsed in read_rows(stream):
            if isinstance(parsed, MailboxRow):
                rows.append(parsed)
            else:
                errors.extend(parsed)
            bar.update(1)
    rows_read = len(rows) + len({e.line for e in errors if e.line > 1})

    with Session(engine) as session, session.begin():
        plans = {p.name: p for p in session.scalars(select(Plan))}
        users = {u.name: u for u in session.scalars(select(User))}
        existing = {
            email: (box_id, user_id)
            for email, box_id, user_id in session.execute(
                select(Mailbox.email, Mailbox.id, Mailbox.user_id)
            )
        }
        user_plan = _resolve_plans(rows, plans, users, errors)
        errors += _check_limits(session, rows, users, user_plan, existing)
        if errors:
            raise ImportRejected(errors, rows_read)

        summary = ImportSummary(rows_read=rows_read, dry_run=dry_run)
        summary.created = sum(1 for r in rows if r.email not in existing)
        summary.updated = len(rows) - summary.created
        summary.users_created = sorted({r.user for r in rows if r.user not in users})
        if dry_run:
            session.rollback()
            return summary
        user_ids = _write_users(session, rows, users, user_plan, clock.now())
        _write_mailboxes(session, rows, user_ids, cipher, clock.now(), default_timezone, progress)
    return summary


def _resolve_plans(
    rows: list[MailboxRow], plans: dict[str, Plan], users: dict[str, User], errors: list[RowError]
) -> dict[str, Plan]:
    """Each user's plan after the import: named in the file, else kept, else the default."""
    by_id = {p.id: p for p in plans.values()}
    chosen: dict[str, tuple[Plan, int]] = {}
    result: dict[str, Plan] = {}
    for row in rows:
        if row.plan is not None:
            plan = plans.get(row.plan)
            if plan is None:
                known = ", ".join(sorted(plans))
                errors.append(RowError(row.line, "plan", f"unknown plan {row.plan!r} ({known})"))
                continue
            earlier = chosen.setdefault(row.user, (plan, row.line))
            if earlier[0].name != plan.name:
                errors.append(
                    RowError(
                        row.line,
                        "plan",
                        f"user {row.user!r} is given plan {earlier[0].name!r} on line "
                        f"{earlier[1]} and {plan.name!r} here",
                    )
                )
            result[row.user] = earlier[0]
        elif row.user not in result:
            user = users.get(row.user)
            result[row.user] = by_id[user.plan_id] if user else plans[DEFAULT_PLAN]
    return result


def _check_limits(
    session: Session,
    rows: list[MailboxRow],
    users: dict[str, User],
    user_plan: dict[str, Plan],
    existing: dict[str, tuple[int, int]],
) -> list[RowError]:
    """Per-user mailbox counts after the import, and each daily limit, against the plan."""
    errors = []
    name_of = {u.id: u.name for u in users.values()}
    counts: Counter[str] = Counter(
        {
            name_of[user_id]: n
            for user_id, n in session.execute(
                select(Mailbox.user_id, func.count()).group_by(Mailbox.user_id)
            )
        }
    )
    for row in rows:
        if row.email in existing:
            counts[name_of[existing[row.email][1]]] -= 1
        counts[row.user] += 1
    reported: set[str] = set()
    for row in rows:
        plan = user_plan.get(row.user)
        if plan is None:
            continue
        if row.daily_limit > plan.daily_send_limit:
            errors.append(
                RowError(
                    row.line,
                    "daily_limit",
                    f"{row.daily_limit} is above plan {plan.name!r}'s {plan.daily_send_limit} "
                    "sends a day",
                )
            )
        if counts[row.user] > plan.max_mailboxes and row.user not in reported:
            reported.add(row.user)
            errors.append(
                RowError(
                    row.line,
                    "user",
                    f"user {row.user!r} would have {counts[row.user]} mailboxes; plan "
                    f"{plan.name!r} allows {plan.max_mailboxes}",
                )
            )
    return errors


def _write_users(
    session: Session,
    rows: list[MailboxRow],
    users: dict[str, User],
    user_plan: dict[str, Plan],
    now: datetime,
) -> dict[str, int]:
    new = sorted({r.user for r in rows if r.user not in users})
    if new:
        session.execute(
            insert(User),
            [{"name": name, "plan_id": user_plan[name].id, "created_at": now} for name in new],
        )
    named = {r.user for r in rows if r.plan is not None}
    for name in named - set(new):
        if users[name].plan_id != user_plan[name].id:
            users[name].plan_id = user_plan[name].id
    session.flush()
    return {name: user_id for name, user_id in session.execute(select(User.name, User.id))}


def _write_mailboxes(
    session: Session,
    rows: list[MailboxRow],
    user_ids: dict[str, int],
    cipher: Cipher,
    now: datetime,
    default_timezone: str,
    progress: ProgressFactory,
) -> None:
    """Upsert by address: what the CSV says is updated; state, its reason and the warmup start
    date of an existing mailbox are kept."""
    updated = [name for name in _values(rows[0], 0, cipher, now) if name != "email"]
    statement = upsert(
        session.connection(),
        Mailbox.__table__,
        ["email"],
        lambda new: {name: new[name] for name in updated},
    )
    with progress("write mailboxes", len(rows)) as bar:
        for start in range(0, len(rows), WRITE_CHUNK):
            chunk = rows[start : start + WRITE_CHUNK]
            params = []
            for row in chunk:
                local_day = now.astimezone(ZoneInfo(row.timezone or default_timezone)).date()
                params.append(
                    {
                        **_values(row, user_ids[row.user], cipher, now),
                        # only a new mailbox takes these; `upsert` leaves them alone
                        "state": MailboxState.ACTIVE,
                        "warmup_start_date": local_day,
                        "created_at": now,
                    }
                )
            session.execute(statement, params)
            bar.update(len(chunk))


def _values(row: MailboxRow, user_id: int, cipher: Cipher, now: datetime) -> dict[str, object]:
    """The columns a CSV row owns; a re-import overwrites exactly these."""
    return {
        "email": row.email,
        "domain": row.domain,
        "user_id": user_id,
        "smtp_host": row.smtp_host,
        "smtp_port": row.smtp_port,
        "smtp_security": row.smtp_security,
        "smtp_username": row.smtp_username,
        "smtp_password_enc": cipher.encrypt(row.smtp_password),
        "imap_host": row.imap_host,
        "imap_port": row.imap_port,
        "imap_security": row.imap_security,
        "imap_username": row.imap_username,
        "imap_password_enc": cipher.encrypt(row.imap_password),
        "timezone": row.timezone,
        "daily_limit": row.daily_limit,
        "ramp_start": row.ramp_start,
        "ramp_step": row.ramp_step,
        "reply_rate": row.reply_rate,
        "weekdays_only": row.weekdays_only,
        "updated_at": now,
    }
