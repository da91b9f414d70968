"""The data model: plans, users, mailboxes, send jobs and the send log.

Statuses and other closed vocabularies are Python enums stored by name (upper case) in a
VARCHAR with a CHECK constraint, identical on SQLite and PostgreSQL: the database refuses
`sent` as firmly as it refuses `banana`, and adding a value is an ordinary migration.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    false,
    text,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from warmup_dagster.core.admission import Scope
from warmup_dagster.core.health import HealthState

# Explicit constraint names keep migrations identical on both databases.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that goes in and comes out as timezone-aware UTC on both databases."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: every time must carry a timezone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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


class MailboxState(enum.Enum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    DISABLED = "DISABLED"


class Security(enum.Enum):
    """Transport security of an SMTP or IMAP connection (CSV spells them lower case)."""

    STARTTLS = "starttls"
    SSL = "ssl"
    NONE = "none"


def _enum(cls: type[enum.Enum], name: str) -> SAEnum:
    return SAEnum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        validate_strings=True,
        length=16,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Plan(Base):
    """A subscription plan: the limits every user on it shares."""

    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    max_mailboxes: Mapped[int] = mapped_column(Integer)
    daily_send_limit: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("max_mailboxes > 0", name="max_mailboxes_positive"),
        CheckConstraint("daily_send_limit > 0", name="daily_send_limit_positive"),
    )


class User(Base):
    """An owner of mailboxes."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(320), unique=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Mailbox(Base):
    """A mailbox in the pool, with its servers, encrypted credentials and warmup settings."""

    __tablename__ = "mailboxes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    # The name in its mail's From: and signature; None: derived from the address
    # (`core.names.derived_display_name`).
    display_name: Mapped[str | None] = mapped_column(String(200))
    domain: Mapped[str] = mapped_column(String(255), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    smtp_host: Mapped[str] = mapped_column(String(255))
    smtp_port: Mapped[int] = mapped_column(Integer)
    smtp_security: Mapped[Security] = mapped_column(_enum(Security, "smtp_security"))
    smtp_username: Mapped[str] = mapped_column(String(320))
    smtp_password_enc: Mapped[str] = mapped_column(Text)
    imap_host: Mapped[str] = mapped_column(String(255))
    imap_port: Mapped[int] = mapped_column(Integer)
    imap_security: Mapped[Security] = mapped_column(_enum(Security, "imap_security"))
    imap_username: Mapped[str] = mapped_column(String(320))
    imap_password_enc: Mapped[str] = mapped_column(Text)
    # None: the deployment's WARMUP_SEND_WINDOW_TIMEZONE.
    timezone: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[MailboxState] = mapped_column(_enum(MailboxState, "state"))
    state_reason: Mapped[str | None] = mapped_column(Text)
    state_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A share of its quota set on the row itself (1: all of it); planning takes the lowest of
    # this, its domain's blocklist throttle and its health's (`mailbox_health`).
    throttle: Mapped[float] = mapped_column(Float, default=1.0, server_default="1")
    throttle_reason: Mapped[str | None] = mapped_column(Text)
    # Sends the receiving server refused for good (5xx): counted against the mailbox's health.
    hard_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    daily_limit: Mapped[int] = mapped_column(Integer)
    ramp_start: Mapped[int] = mapped_column(Integer)
    ramp_step: Mapped[int] = mapped_column(Integer)
    reply_rate: Mapped[float] = mapped_column(Float)
    weekdays_only: Mapped[bool] = mapped_column(Boolean)
    warmup_start_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("smtp_port BETWEEN 1 AND 65535", name="smtp_port_range"),
        CheckConstraint("imap_port BETWEEN 1 AND 65535", name="imap_port_range"),
        CheckConstraint("daily_limit > 0", name="daily_limit_positive"),
        CheckConstraint("ramp_start > 0 AND ramp_start <= daily_limit", name="ramp_start_range"),
        CheckConstraint("ramp_step >= 0", name="ramp_step_nonnegative"),
        CheckConstraint("reply_rate >= 0 AND reply_rate <= 1", name="reply_rate_range"),
        CheckConstraint("throttle >= 0 AND throttle <= 1", name="throttle_range"),
        Index("ix_mailboxes_state", "state"),
        Index("ix_mailboxes_state_changed_at", "state_changed_at"),  # catch-up's resumed
    )


class WarmupJob(Base):
    """One planned email (a send or a reply) and its delivery state.

    `scheduled_at` is the planned slot and never changes; `due_at` is when the job may next be
    claimed (the slot, then later after a retry backoff or outside the send window).
    """

    __tablename__ = "warmup_jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[JobKind] = mapped_column(_enum(JobKind, "kind"))
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
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus, "status"))
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
    kind: Mapped[JobKind] = mapped_column(_enum(JobKind, "kind"))
    recipient_email: Mapped[str] = mapped_column(String(320))
    message_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus, "status"))
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

    scope: Mapped[Scope] = mapped_column(_enum(Scope, "scope"), primary_key=True)
    period: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    used: Mapped[int] = mapped_column(Integer)


class Placement(enum.Enum):
    """Where the receiving side found a warmup message."""

    PENDING = "PENDING"  # not looked for yet, or not found within the grace period so far
    INBOX = "INBOX"
    SPAM = "SPAM"
    NOT_FOUND = "NOT_FOUND"  # not in the inbox or the spam folder after the grace period


class SentCopy(enum.Enum):
    """What became of the sender's own copy of a warmup message (its Sent folder)."""

    PENDING = "PENDING"
    FILED = "FILED"  # moved into the sender's Warmup folder
    ABSENT = "ABSENT"  # the sender's provider keeps no copy (no Sent folder, or not in it)


class Engagement(Base):
    """One delivered warmup message for the receiving side to handle over IMAP.

    Taken in from the send log once its job was sent (`engagement.intake`); looked for from
    `due_at` on (a human-like delay after the send), in the recipient's inbox and spam folder.
    Written by the engagement package only (`warmup_dagster.engagement`).
    """

    __tablename__ = "engagements"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("warmup_jobs.id", ondelete="SET NULL"))
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    recipient_mailbox_id: Mapped[int] = mapped_column(
        ForeignKey("mailboxes.id", ondelete="CASCADE")
    )
    sender_mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    # 1 for a new message, 2 for its reply, and so on (a thread stops at WARMUP_ENGAGE_MAX_TURNS)
    turn: Mapped[int] = mapped_column(Integer)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The send's local day (its send-log row's): placement per mailbox and local date, as the
    # fill rate counts days. None only for rows taken in before it was recorded.
    local_date: Mapped[date | None] = mapped_column(Date)
    # When the next look is due: the recipient's side while `done` is false, and the sender's
    # copy while `sent_copy` is PENDING.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    placement: Mapped[Placement] = mapped_column(_enum(Placement, "placement"))
    seen: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    flagged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    filed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    reply_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("warmup_jobs.id", ondelete="SET NULL")
    )
    sent_copy: Mapped[SentCopy] = mapped_column(_enum(SentCopy, "sent_copy"))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    placed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        # Due work by time: the recipient's side, then the sender's copies.
        Index("ix_engagements_done_due_at", "done", "due_at"),
        Index("ix_engagements_sent_copy_due_at", "sent_copy", "due_at"),
        # The intake's high-water mark, and placement per sending mailbox and day (health).
        Index("ix_engagements_sent_at", "sent_at"),
        Index("ix_engagements_sender_mailbox_id_sent_at", "sender_mailbox_id", "sent_at"),
        Index("ix_engagements_recipient_mailbox_id_done", "recipient_mailbox_id", "done"),
        # Placement per local date (`health.placement`), every mailbox's or some.
        Index("ix_engagements_local_date_sender_mailbox_id", "local_date", "sender_mailbox_id"),
        CheckConstraint("turn >= 1", name="turn_positive"),
    )


class EngagementMailbox(Base):
    """The receiving side's state of one mailbox: its lease, last pass and pause.

    An IMAP login refused pauses engagement for the mailbox (`paused_reason`) until
    `warmup mailboxes resume`; sending is not affected.
    """

    __tablename__ = "engagement_mailboxes"

    mailbox_id: Mapped[int] = mapped_column(
        ForeignKey("mailboxes.id", ondelete="CASCADE"), primary_key=True
    )
    paused_reason: Mapped[str | None] = mapped_column(Text)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # An engagement run holds the mailbox until then (one IMAP session per mailbox at a time).
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    leased_by: Mapped[str | None] = mapped_column(String(128))
    last_pass_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # When the Warmup folder was last pruned of mail older than the retention.
    pruned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ImapRefusal(Base):
    """One IMAP login a mailbox's server refused: an auth failure, as health counts them.

    Written by the engagement package only, with the pause it causes: engagement of the
    mailbox stops there, so a mailbox has one row per refusal until it is resumed and refused
    again. Health counts them over its window with the SMTP auth failures (`health.placement`).
    """

    __tablename__ = "imap_refusals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The mailbox's local day at the refusal: its placement per local date counts it.
    local_date: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        Index("ix_imap_refusals_at", "at"),
        Index("ix_imap_refusals_local_date_mailbox_id", "local_date", "mailbox_id"),
    )


class MailboxHealth(Base):
    """A mailbox's latest health (`core.health`): its state, why, and the window's figures.

    Written by `warmup_dagster.health.store` only (the `mailbox_health` asset), one row per
    mailbox with mail in the window; a mailbox without a row is healthy. Planning reads the
    state: a THROTTLED mailbox keeps WARMUP_HEALTH_THROTTLE of its quota, a PAUSED one none.
    """

    __tablename__ = "mailbox_health"

    mailbox_id: Mapped[int] = mapped_column(
        ForeignKey("mailboxes.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[HealthState] = mapped_column(_enum(HealthState, "state"))
    reason: Mapped[str | None] = mapped_column(Text)
    inbox: Mapped[int] = mapped_column(Integer)
    spam: Mapped[int] = mapped_column(Integer)
    not_found: Mapped[int] = mapped_column(Integer)
    bounces: Mapped[int] = mapped_column(Integer)
    auth_failures: Mapped[int] = mapped_column(Integer)
    # Since when the state is what it is (kept while later computations agree).
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_mailbox_health_state", "state"),)


class MailboxOAuth(Base):
    """A mailbox that signs in with OAuth2 (XOAUTH2) instead of a password: its provider,
    its refresh token and the access token every run shares (`warmup_dagster.oauth`).

    Both tokens are encrypted like the passwords (`crypto.Cipher`). The access token is
    cached here with its expiry, so every run on every machine uses the same one and the
    provider sees one refresh per lifetime, not one per send. `refused_reason` is set when
    the provider refused the refresh token (revoked, consent expired): no run asks again
    until `warmup mailboxes connect` (or an import) stores a new one.
    """

    __tablename__ = "mailbox_oauth"

    mailbox_id: Mapped[int] = mapped_column(
        ForeignKey("mailboxes.id", ondelete="CASCADE"), primary_key=True
    )
    provider: Mapped[str] = mapped_column(String(32))
    # None: not connected yet (`warmup mailboxes connect EMAIL --provider P`).
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    access_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refused_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


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

    metric: Mapped[Total] = mapped_column(_enum(Total, "metric"), primary_key=True)
    label: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class ClockAnchor(Base):
    """Where a scaled virtual clock started, shared by every process of a deployment."""

    __tablename__ = "clock_anchors"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    virtual_start: Mapped[datetime] = mapped_column(UTCDateTime)
    real_start: Mapped[datetime] = mapped_column(UTCDateTime)
    speed: Mapped[float] = mapped_column(Float)


class DomainStatus(enum.Enum):
    """A sending domain's worst check (`warmup_dagster.domains`)."""

    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


class DomainCheck(Base):
    """A sending domain's latest checks (MX, SPF, DKIM, DMARC, blocklists). Written by
    `warmup_dagster.domains.store` only; planning reads the gate and the listing."""

    __tablename__ = "domain_checks"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    status: Mapped[DomainStatus] = mapped_column(_enum(DomainStatus, "status"))
    # One object per check: kind, status, detail, fix, data (`domains.model.Check`).
    checks: Mapped[list] = mapped_column(JSON)
    # Failing SPF or DMARC, in words: what keeps the domain out of planning when
    # WARMUP_DOMAIN_GATE=hold. None when both pass or only warn.
    gate_reason: Mapped[str | None] = mapped_column(Text)
    listed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    listed_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_domain_checks_status", "status"),)


class SecretKeyCheck(Base):
    """Which key the stored credentials are encrypted with, as one row (id 1).

    `check_value` is `Cipher.check_value` of that key: a process with another key stops
    before it reads or writes a credential. `token_key_enc` is the message-token key
    (`core.content.token_key` of the first key), encrypted like a credential, so rotating the
    secret re-encrypts it and warmup mail sent before a rotation is still recognised.
    Written by `warmup_dagster.secrets` only.
    """

    __tablename__ = "secret_key_check"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    check_value: Mapped[str] = mapped_column(String(64))
    token_key_enc: Mapped[str] = mapped_column(Text)
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)


class RunBeat(Base):
    """The last sign of life of a Dagster run that uses the warmup database (`liveness`).

    Written by the run itself every fifth of `WARMUP_RUN_DEAD_SECONDS` and as its step ends;
    `dead_runs_sensor` fails a STARTED run whose row has gone stale, and deletes the rows of
    runs that ended.
    """

    __tablename__ = "run_beats"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime)
