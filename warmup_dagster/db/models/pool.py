"""The pool: plans, users, mailboxes (servers, encrypted credentials, warmup settings, state) and
their OAuth2 sign-in."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from warmup_dagster.db.models.base import Base, UTCDateTime, enum_type


class MailboxState(enum.Enum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    DISABLED = "DISABLED"


class Security(enum.Enum):
    """Transport security of an SMTP or IMAP connection (CSV spells them lower case)."""

    STARTTLS = "starttls"
    SSL = "ssl"
    NONE = "none"


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
    smtp_security: Mapped[Security] = mapped_column(enum_type(Security, "smtp_security"))
    smtp_username: Mapped[str] = mapped_column(String(320))
    smtp_password_enc: Mapped[str] = mapped_column(Text)
    imap_host: Mapped[str] = mapped_column(String(255))
    imap_port: Mapped[int] = mapped_column(Integer)
    imap_security: Mapped[Security] = mapped_column(enum_type(Security, "imap_security"))
    imap_username: Mapped[str] = mapped_column(String(320))
    imap_password_enc: Mapped[str] = mapped_column(Text)
    # None: the deployment's WARMUP_SEND_WINDOW_TIMEZONE.
    timezone: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[MailboxState] = mapped_column(enum_type(MailboxState, "state"))
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
