"""What planning reads of a mailbox's health: the share of its quota it keeps, and why.

`COLUMNS` join onto the planner's mailbox rows (an outer join on `mailbox_health`: a mailbox
never judged is healthy). A THROTTLED mailbox keeps `WARMUP_HEALTH_THROTTLE` of its quota, a
PAUSED one none, until a later health computation finds it better. Jobs planned before stay
queued; the next planning of the day (a catch-up, a re-plan) applies it, as for domains, and
meanwhile a PAUSED mailbox's queued jobs, replies included, are held at the claim
(`queue.holds`).
"""

from __future__ import annotations

from typing import Any

from warmup_dagster.core.health import HealthState, throttle_of
from warmup_dagster.db.models import MailboxHealth
from warmup_dagster.settings import Settings

COLUMNS = (
    MailboxHealth.state.label("health_state"),
    MailboxHealth.reason.label("health_reason"),
)


def limits(row: Any, settings: Settings) -> tuple[float, str]:
    """(throttle, reason) of the mailbox `row` (a planner row carrying `COLUMNS`)."""
    state = row.health_state or HealthState.HEALTHY
    throttle = throttle_of(state, settings.health_throttle)
    if throttle >= 1.0:
        return 1.0, ""
    return throttle, f"health {state.value.lower()}: {row.health_reason}"
