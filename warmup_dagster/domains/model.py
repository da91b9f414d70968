"""What a domain check finds: one `Check` per kind, gathered in a domain's `Report`."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Status(enum.Enum):
    """A check's verdict. `SKIP`: not checked (nothing configured to check against)."""

    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


# Worse first; a domain's status is its worst check's, skipped checks aside.
_RANK = {Status.FAIL: 0, Status.WARN: 1, Status.PASS: 2, Status.SKIP: 3}
# The checks, in the order they are run and shown.
MX, SPF, DKIM, DMARC, BLOCKLISTS = "mx", "spf", "dkim", "dmarc", "blocklists"
KINDS = (MX, SPF, DKIM, DMARC, BLOCKLISTS)
# A failing check of these kinds keeps a domain out of planning when the gate holds.
GATED = (SPF, DMARC)


@dataclass(frozen=True)
class Check:
    """One check of one domain.

    Args:
        kind: One of `KINDS`.
        status: The verdict.
        detail: What was found, one line.
        fix: What the owner should change, one line; empty when nothing needs fixing.
        data: What the check read (records, selectors, listings), for the JSON kept.
    """

    kind: str
    status: Status
    detail: str
    fix: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix,
            "data": self.data,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Check:
        return cls(
            value["kind"], Status(value["status"]), value["detail"], value["fix"], value["data"]
        )


@dataclass(frozen=True)
class Target:
    """A domain to check and the SMTP hosts its mailboxes send through."""

    domain: str
    smtp_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Report:
    """Every check of one domain."""

    domain: str
    checks: tuple[Check, ...]

    @property
    def status(self) -> Status:
        """The worst verdict of the checks that ran (PASS if none ran)."""
        ran = [c.status for c in self.checks if c.status != Status.SKIP]
        return min(ran, key=_RANK.__getitem__, default=Status.PASS)

    @property
    def listings(self) -> list[dict[str, Any]]:
        """The blocklist listings found (zone, what was listed, the code, the zone's text)."""
        return [
            listing for c in self.checks if c.kind == BLOCKLISTS for listing in c.data["listed"]
        ]

    @property
    def gate_reason(self) -> str | None:
        """Why the gate would hold the domain (its failing SPF or DMARC), or None."""
        failing = [c for c in self.checks if c.kind in GATED and c.status == Status.FAIL]
        if not failing:
            return None
        return "; ".join(f"{c.kind.upper()}: {c.detail}" for c in failing)

    def check(self, kind: str) -> Check:
        (found,) = [c for c in self.checks if c.kind == kind]
        return found
