"""Small builders of rows for tests (direct ORM inserts, no CSV)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from itertools import count

from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster.crypto import Cipher
from warmup_dagster.db.models import (
    Engagement,
    JobKind,
    JobStatus,
    Mailbox,
    MailboxState,
    Placement,
    Plan,
    Security,
    SendLog,
    SentCopy,
    User,
    WarmupJob,
)

_seq = count(1)


def add_user(session: Session, name: str, now: datetime, plan: str = "default") -> User:
    plan_id = session.scalar(select(Plan.id).where(Plan.name == plan))
    user = User(name=name, plan_id=plan_id, created_at=now)
    session.add(user)
    session.flush()
    return user


def add_mailbox(
    session: Session, user: User, email: str, now: datetime, cipher: Cipher, **overrides: object
) -> Mailbox:
    values: dict[str, object] = {
        "email": email,
        "domain": email.rsplit("@", 1)[1],
        "user_id": user.id,
        "smtp_host": "127.0.0.1",
        "smtp_port": 2525,
        "smtp_security": Security.NONE,
        "smtp_username": email,
        "smtp_password_enc": cipher.encrypt("pw"),
        "imap_host": "127.0.0.1",
        "imap_port": 1143,
        "imap_security": Security.NONE,
        "imap_username": email,
        "imap_password_enc": cipher.encrypt("pw"),
        "timezone": None,
        "state": MailboxState.ACTIVE,
        "daily_limit": 40,
        "ramp_start": 2,
        "ramp_step": 2,
        "reply_rate": 0.3,
        "weekdays_only": False,
        "warmup_start_date": now.date(),
        "created_at": now,
        "updated_at": now,
    }
    values.update(overrides)
    box = Mailbox(**values)
    session.add(box)
    session.flush()
    return box


def add_job(
    session: Session,
    box: Mailbox,
    to: Mailbox,
    at: datetime,
    status: JobStatus,
    **overrides: object,
) -> WarmupJob:
    n = next(_seq)
    values: dict[str, object] = dict(
        kind=JobKind.SEND,
        mailbox_id=box.id,
        user_id=box.user_id,
        recipient_mailbox_id=to.id,
        recipient_email=to.email,
        local_date=at.date(),
        scheduled_at=at,
        due_at=at,
        status=status,
        attempts=0,
        message_id=f"<job{n}@{box.domain}>",
        subject=f"hello {n}",
        body="body",
        token=f"t{n}",
        created_at=at,
        updated_at=at,
    )
    values.update(overrides)
    job = WarmupJob(**values)
    session.add(job)
    session.flush()
    return job


def log_send(
    session: Session, job: WarmupJob, at: datetime, status: JobStatus = JobStatus.SENT
) -> SendLog:
    entry = SendLog(
        job_id=job.id,
        mailbox_id=job.mailbox_id,
        user_id=job.user_id,
        kind=job.kind,
        recipient_email=job.recipient_email,
        message_id=job.message_id,
        status=status,
        attempt=1,
        smtp_code=250 if status == JobStatus.SENT else 451,
        local_date=job.local_date,
        created_at=at,
    )
    session.add(entry)
    return entry


def add_engagement(
    session: Session,
    job: WarmupJob,
    placement: Placement = Placement.PENDING,
    recipient_id: int | None = None,
    local_date: date | None = None,
) -> Engagement:
    """The engagement of a sent `job` (as intake takes it in), with `placement` recorded; the
    recipient is the job's pool mailbox unless `recipient_id` says otherwise."""
    at = job.sent_at or job.due_at
    row = Engagement(
        job_id=job.id,
        message_id=job.message_id,
        recipient_mailbox_id=recipient_id or job.recipient_mailbox_id,
        sender_mailbox_id=job.mailbox_id,
        turn=1,
        sent_at=at,
        local_date=local_date or job.local_date,
        due_at=at,
        done=placement is not Placement.PENDING,
        placement=placement,
        sent_copy=SentCopy.PENDING,
        created_at=at,
        updated_at=at,
    )
    session.add(row)
    session.flush()
    return row


def days(n: int) -> timedelta:
    return timedelta(days=n)


__all__ = ["add_engagement", "add_job", "add_mailbox", "add_user", "date", "days", "log_send"]
