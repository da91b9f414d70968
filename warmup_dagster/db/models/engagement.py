"""The receiving side: messages to find, rescue and answer, each mailbox's engagement state, IMAP
refusals, and mailbox health."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from warmup_dagster.core.health import HealthState
from warmup_dagster.db.models.base import Base, BigId, UTCDateTime, enum_type


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
    placement: Mapped[Placement] = mapped_column(enum_type(Placement, "placement"))
    seen: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    flagged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    filed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    reply_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("warmup_jobs.id", ondelete="SET NULL")
    )
    sent_copy: Mapped[SentCopy] = mapped_column(enum_type(SentCopy, "sent_copy"))
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
    state: Mapped[HealthState] = mapped_column(enum_type(HealthState, "state"))
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
