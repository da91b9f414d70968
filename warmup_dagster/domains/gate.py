"""What planning reads of a mailbox's domain: whether the gate holds it, and its throttle.

`COLUMNS` join onto the planner's mailbox rows (an outer join: a domain not checked yet is
planned as before). With `WARMUP_DOMAIN_GATE=hold` a domain failing SPF or DMARC gets no
quota until a check finds it fixed; `flag` (the default) only reports it. A domain that a
blocklist lists sends `WARMUP_DNSBL_THROTTLE` of its quota while it is listed, whatever the
gate says. Jobs planned before the check stay queued; the next planning of the day applies it,
and meanwhile a held domain's queued jobs, replies included, are held at the claim
(`queue.holds`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warmup_dagster.db.models import DomainCheck
from warmup_dagster.domains.config import HOLD
from warmup_dagster.settings import Settings

COLUMNS = (
    DomainCheck.gate_reason.label("domain_gate_reason"),
    DomainCheck.listed.label("domain_listed"),
    DomainCheck.listed_since.label("domain_listed_since"),
)


@dataclass(frozen=True)
class DomainLimits:
    """What a mailbox's domain does to its quota."""

    held: str  # why the gate holds it; empty when it does not
    throttle: float  # at most this share of the quota (1: no throttle)
    throttle_reason: str


def limits(row: Any, settings: Settings) -> DomainLimits:
    """The limits of the mailbox `row` (a planner row carrying `COLUMNS`)."""
    held = ""
    if settings.domain_gate == HOLD and row.domain_gate_reason:
        held = f"held: domain {row.domain} fails {row.domain_gate_reason}"
    throttle, reason = 1.0, ""
    if row.domain_listed:
        since = row.domain_listed_since
        throttle = settings.dnsbl_throttle
        reason = (
            f"domain {row.domain} blocklisted"
            + (f" since {since:%Y-%m-%d %H:%M} UTC" if since else "")
            + f": throttled to {throttle:.0%}"
        )
    return DomainLimits(held, throttle, reason)
