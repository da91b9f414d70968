"""The send queue and its counts: jobs, the send log, what planning decided per mailbox-day, the
cap counters and the running totals (docs/QUEUE.md)."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from warmup_dagster.core.admission import Scope
from warmup_dagster.db.models.base import Base, BigId, UTCDateTime, enum_type


class JobStatus(enum.Enum):
    """The one status vocabulary for send jobs and send-log entries."""

    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    SENT = "SENT"
    FAILED = "FAILED"
    RETRY = "RETRY"
    # Sent, and the recipient answered it (engagement): a delivered send, counted as SENT is.
    # Only jobs take it; their send-log rows stay SENT.
    REPLIED = "REPLIED"


class JobKind(enum.Enum):
    SEND = "SEND"
    REPLY = "REPLY"


class WarmupJob(Base):
    """One planned email (a send or a reply) and its delivery state.

    `scheduled_at` is the planned slot and never changes; `due_at` is when the job may next be
    claimed (the slot, then later after a retry backoff or outside the send window).
    """

    __tablename__ = "warmup_jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[JobKind] = mapped_column(enum_type(JobKind, "kind"))
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    # The sender's owner and the recipient, copied for the hot queries without foreign keys:
    # on PostgreSQL each key check costs more than the row itself when a million jobs are
    # written a day. `mailbox_id` keeps its key; a deleted recipient leaves its address here.
    user_id: Mapped[int] = mapped_column(Integer)
    recipient_mailbox_id: Mapped[int | None] = mapped_column(Integer)
    recipient_email: Mapped[str] = mapped_column(String(320))
    local_date: Mapped[date] = mapped_column(Date)
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[JobStatus] = mapped_column(enum_type(JobStatus, "status"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    picked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    worker_id: Mapped[str | None] = mapped_column(String(128))
    # Set at the first attempt: `core.content.job_message_id` derives it from the job, the same
    # at every attempt, so planning a million jobs a day writes no ids and the unique index
    # holds only mail that was attempted. A reply may carry its id from the start.
    message_id: Mapped[str | None] = mapped_column(String(255))
    parent_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("warmup_jobs.id", ondelete="SET NULL")
    )
    in_reply_to: Mapped[str | None] = mapped_column(String(255))
    references: Mapped[str | None] = mapped_column(Text)
    # The words are composed from `content_seed` when the job is sent, then stored here: what
    # went out is on record, and planning a million jobs does not write a million bodies.
    content_seed: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    token: Mapped[str | None] = mapped_column(String(64))  # the id's MAC, set with it
    smtp_code: Mapped[int | None] = mapped_column(Integer)
    smtp_reply: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("attempts >= 0", name="attempts_nonnegative"),
        # The claim query: due work by time.
        Index("ix_warmup_jobs_status_due_at", "status", "due_at"),
        # Planning and the claim's spacing check: a mailbox's jobs by day.
        Index("ix_warmup_jobs_mailbox_id_local_date", "mailbox_id", "local_date"),
        # Replies only: a partial index costs sends nothing. (Every index on this table costs
        # planning time: COPY of 341,000 jobs takes 1.4 s bare and 7.2 s with all of them.)
        Index(
            "ix_warmup_jobs_parent_job_id",
            "parent_job_id",
            postgresql_where=text("parent_job_id IS NOT NULL"),
            sqlite_where=text("parent_job_id IS NOT NULL"),
        ),
        # Planning: inbound per recipient per day, and a user's queued sends by time.
        Index(
            "ix_warmup_jobs_local_date_recipient_mailbox_id", "local_date", "recipient_mailbox_id"
        ),
        Index("ix_warmup_jobs_user_id_due_at", "user_id", "due_at"),
        # The claim: the claims of the arrival margin before a minute (`queue.caps.carried`).
        # Partial: planning writes jobs unclaimed, so it costs planning nothing.
        Index(
            "ix_warmup_jobs_picked_at",
            "picked_at",
            postgresql_where=text("picked_at IS NOT NULL"),
            sqlite_where=text("picked_at IS NOT NULL"),
        ),
        Index(
            "uq_warmup_jobs_message_id",
            "message_id",
            unique=True,
            postgresql_where=text("message_id IS NOT NULL"),
            sqlite_where=text("message_id IS NOT NULL"),
        ),
    )


class SendLog(Base):
    """One row per claim of a job, written when its attempt ends: the audit trail and what
    sends are counted from (see `warmup_dagster.queue`)."""

    __tablename__ = "send_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("warmup_jobs.id", ondelete="SET NULL"))
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[JobKind] = mapped_column(enum_type(JobKind, "kind"))
    recipient_email: Mapped[str] = mapped_column(String(320))
    message_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[JobStatus] = mapped_column(enum_type(JobStatus, "status"))
    attempt: Mapped[int] = mapped_column(Integer)
    smtp_code: Mapped[int | None] = mapped_column(Integer)
    smtp_reply: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    worker_id: Mapped[str | None] = mapped_column(String(128))
    # When the attempt was admitted under the caps (they count it in that minute); None for
    # entries written before sending existed.
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The job's local day, which its mailbox's quota and its owner's plan limit count it for:
    # one user's mailboxes in several timezones have different days at one instant.
    local_date: Mapped[date | None] = mapped_column(Date)
    # The outcome of an attempt that had lost its job (its lease ran out and another claim
    # took the job and closed this attempt): on record, so a duplicate send shows, but counted
    # nowhere. See `warmup_dagster.queue` for what counts.
    late: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_send_log_mailbox_id_created_at", "mailbox_id", "created_at"),
        Index("ix_send_log_user_id_created_at", "user_id", "created_at"),
        Index("ix_send_log_created_at", "created_at"),
        Index("ix_send_log_job_id", "job_id"),
        # A day's fill rate and audit, and the counter audit's day scopes.
        Index("ix_send_log_local_date", "local_date"),
        # Health: bounces and refused logins (every 5xx) by time; a few rows, cheap to keep.
        Index(
            "ix_send_log_refusals",
            "created_at",
            "mailbox_id",
            postgresql_where=text("smtp_code >= 500"),
            sqlite_where=text("smtp_code >= 500"),
        ),
    )


class DailyQuota(Base):
    """What planning decided for one mailbox on one local day (the fill-rate denominator)."""

    __tablename__ = "daily_quotas"

    mailbox_id: Mapped[int] = mapped_column(
        ForeignKey("mailboxes.id", ondelete="CASCADE"), primary_key=True
    )
    local_date: Mapped[date] = mapped_column(Date, primary_key=True)
    quota: Mapped[int] = mapped_column(Integer)
    ramp: Mapped[int] = mapped_column(Integer)
    kept: Mapped[int] = mapped_column(Integer)  # jobs of the day sent or attempted, not FAILED
    planned: Mapped[int] = mapped_column(Integer)  # pending jobs written by the last planning
    shortfall: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    first_slot: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_slot: Mapped[datetime | None] = mapped_column(UTCDateTime)
    planned_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_daily_quotas_local_date", "local_date"),)


class SendCounter(Base):
    """Sends admitted per cap and period: how every send-time cap is held across sender runs.

    One row per `(scope, period, subject_id)` (see `core.admission`): the global and per-user
    counts per minute and per hour, and per user and per mailbox per local day. A claim reads
    and raises them in the transaction that claims the jobs; day counts are given back when an
    attempt does not end in a send. A ledger that must agree with the send log and the jobs in
    flight: `warmup_dagster.queue` states how, `queue.audit` checks it.
    """

    __tablename__ = "send_counters"

    scope: Mapped[Scope] = mapped_column(enum_type(Scope, "scope"), primary_key=True)
    period: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    used: Mapped[int] = mapped_column(Integer)


class Total(enum.Enum):
    """What a running total in `send_totals` adds up (its label says of what)."""

    SENT = "SENT"  # sends that count, by kind (label `send` or `reply`)
    ERROR = "ERROR"  # attempts that did not send and jobs refused, by reason (`core.reasons`)
    CYCLE = "CYCLE"  # attempts by how long from claim to outcome, by histogram bucket
    CYCLE_SECONDS = "CYCLE_SECONDS"  # the seconds of those attempts, added up (label empty)


class SendTotal(Base):
    """Running totals of what the sender did, raised in the transactions that do it and never
    pruned: the metrics' counters, which must not fall (`send_counters` are pruned, and their
    day counts are reservations given back). Written by the queue package only."""

    __tablename__ = "send_totals"

    metric: Mapped[Total] = mapped_column(enum_type(Total, "metric"), primary_key=True)
    label: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
