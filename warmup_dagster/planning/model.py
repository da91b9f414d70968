"""What planning works with: a mailbox-day to plan, and what was decided for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.engine import Row

from warmup_dagster.core.ramp import Quota, RampSettings
from warmup_dagster.core.slots import Window
from warmup_dagster.db.models import JobKind, JobStatus


@dataclass
class DayPlan:
    """What planning decided for one mailbox on one local day."""

    mailbox_id: int
    email: str
    local_date: date
    quota: Quota
    kept: int = 0
    sent: int = 0
    slots: list[datetime] = field(default_factory=list)
    recipients: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def planned(self) -> int:
        return len(self.recipients)

    @property
    def shortfall(self) -> int:
        return max(0, self.quota.value - self.kept - self.planned)

    @property
    def reason(self) -> str:
        return "; ".join(r for r in [self.quota.reason, *self.notes] if r)


@dataclass
class Target:
    """One mailbox-day to plan."""

    box: Row  # `queries.batch_mailboxes`, with the owner's `plan_limit`
    day: date
    timezone: str
    window: Window


Order = list[tuple[Target, DayPlan]]
# (status, due time, kind) of each job a mailbox-day keeps; replies hold slots, not quota
Kept = dict[tuple[int, date], list[tuple[JobStatus, datetime, JobKind]]]


def ramp_settings(row: Row, weekdays_only: bool = False) -> RampSettings:
    """A mailbox's ramp from a row of it; pool members (recipients) may receive any day."""
    return RampSettings(
        daily_limit=row.daily_limit,
        ramp_start=row.ramp_start,
        ramp_step=row.ramp_step,
        warmup_start_date=row.warmup_start_date,
        weekdays_only=weekdays_only,
    )
