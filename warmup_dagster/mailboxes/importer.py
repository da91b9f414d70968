"""Importing mailboxes from CSV: validate everything, then write everything or nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import IO
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from warmup_dagster.clock import Clock
from warmup_dagster.crypto import Cipher
from warmup_dagster.db.dialect import refresh_statistics, upsert
from warmup_dagster.db.models import Mailbox, MailboxState, Plan, User
from warmup_dagster.mailboxes.csvsource import read_rows
from warmup_dagster.mailboxes.plans import check_limits, resolve_plans
from warmup_dagster.mailboxes.rows import MailboxRow, RowError
from warmup_dagster.oauth.tokens import REASON_PREFIX, connect_hint, forget, save_connection
from warmup_dagster.progress import ProgressFactory, SilentProgress
from warmup_dagster.secrets import keycheck

WRITE_CHUNK = 2_000
# Bad rows whose errors the message lists; the rest are counted, and all are in `errors`.
SHOWN_ROWS = 100


class ImportRejected(ValueError):
    """The file has bad rows; nothing was written. `errors` lists every one."""

    def __init__(self, errors: list[RowError], rows_read: int) -> None:
        self.errors = sorted(errors, key=lambda e: (e.line, e.field))
        self.rows_read = rows_read
        # Line 1 is the header: its errors stop the reading, so they are not rows to count.
        self.bad_rows = sorted({e.line for e in self.errors if e.line > 1})
        listed = set(self.bad_rows[:SHOWN_ROWS])
        shown = [str(e) for e in self.errors if e.line == 1 or e.line in listed]
        if more := len(self.bad_rows) - len(listed):
            shown.append(f"... and {more:,} more rows")  # counted in the headline, not listed
        if any(e.line == 1 for e in self.errors):
            headline = "nothing imported: the header row is wrong"
        else:
            headline = f"nothing imported: {len(self.bad_rows):,} of {rows_read:,} rows rejected"
        super().__init__("\n  ".join([headline, *shown]))


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
    stream: IO[bytes] | IO[str],
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
        KeyMismatch: `cipher` is not the key the stored credentials are encrypted with;
            nothing is written.
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

    # A write transaction from its BEGIN on SQLite too: the key check below is read and
    # then relied on until the commit.
    with Session(engine.execution_options(sqlite_immediate=True)) as session, session.begin():
        # Before anything is read or written: credentials under a second key would be
        # unreadable by every process that has the first (`secrets.keycheck`).
        keycheck.verify(session.connection(), cipher, clock.now(), writing=True)
        plans = {p.name: p for p in session.scalars(select(Plan))}
        users = {u.name: u for u in session.scalars(select(User))}
        existing = {
            email: (box_id, user_id)
            for email, box_id, user_id in session.execute(
                select(Mailbox.email, Mailbox.id, Mailbox.user_id)
            )
        }
        user_plan = resolve_plans(rows, plans, users, errors)
        errors += check_limits(session, rows, plans, users, user_plan, existing)
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
        _write_sign_in(session, rows, existing, cipher, clock.now())
    # Committed: planning and the claims join these rows, and must know how many there are.
    refresh_statistics(engine, [User.__tablename__, Mailbox.__tablename__], len(rows))
    return summary


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
                        **_first_state(row),
                        "warmup_start_date": local_day,
                        "created_at": now,
                    }
                )
            session.execute(statement, params)
            bar.update(len(chunk))


def _first_state(row: MailboxRow) -> dict[str, object]:
    """A new mailbox starts ACTIVE; an OAuth2 one imported without its refresh token waits,
    paused, for `warmup mailboxes connect` (which resumes it)."""
    if row.oauth_provider is None or row.oauth_refresh_token is not None:
        return {"state": MailboxState.ACTIVE, "state_reason": None}
    hint = connect_hint(row.email, row.oauth_provider)
    return {"state": MailboxState.PAUSED, "state_reason": f"{REASON_PREFIX} not connected: {hint}"}


def _write_sign_in(
    session: Session,
    rows: list[MailboxRow],
    existing: dict[str, tuple[int, int]],
    cipher: Cipher,
    now: datetime,
) -> None:
    """How each mailbox signs in: OAuth2 rows get their provider (and refresh token, when the
    CSV has one); password rows that were OAuth2 before sign in with their passwords again."""
    conn = session.connection()
    oauth = [row for row in rows if row.oauth_provider is not None]
    if oauth:
        ids = dict(session.execute(select(Mailbox.email, Mailbox.id)).all())
        for row in oauth:
            assert row.oauth_provider is not None
            save_connection(
                conn, cipher, ids[row.email], row.oauth_provider, row.oauth_refresh_token, now
            )
    forget(
        conn,
        [existing[r.email][0] for r in rows if r.oauth_provider is None and r.email in existing],
    )


def _values(row: MailboxRow, user_id: int, cipher: Cipher, now: datetime) -> dict[str, object]:
    """The columns a CSV row owns; a re-import overwrites exactly these."""
    return {
        "email": row.email,
        "display_name": row.display_name,
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
