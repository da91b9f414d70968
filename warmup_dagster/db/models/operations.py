"""What running the system keeps: the scaled clock's anchor, domain checks, the secret key's
check value, and the runs' beats."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    Index,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from warmup_dagster.db.models.base import Base, UTCDateTime, enum_type


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
    status: Mapped[DomainStatus] = mapped_column(enum_type(DomainStatus, "status"))
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
