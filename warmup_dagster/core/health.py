"""A mailbox's health from what happened to its mail: pure decisions, no I/O.

The receiving side records where each message landed (inbox, spam, not found); the sender
records bounces (a permanent 5xx refusal) and refused logins. Over a recent window these
decide a state: HEALTHY, WATCH (reported, nothing changes), THROTTLED (the next plan gives it
`throttle` of its quota) or PAUSED (planned nothing until its figures recover). Each signal
has three thresholds, one per step; the worst step any signal reaches is the state, and every
signal at or past a step says why in the reasons.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class HealthState(enum.Enum):
    """A mailbox's health, best first."""

    HEALTHY = "HEALTHY"
    WATCH = "WATCH"
    THROTTLED = "THROTTLED"
    PAUSED = "PAUSED"


# The state each threshold step leads to, in the order of `Thresholds`' triples.
STEPS = (HealthState.WATCH, HealthState.THROTTLED, HealthState.PAUSED)


@dataclass(frozen=True)
class Figures:
    """One mailbox's mail over a span: placements of what it sent, bounces, auth failures."""

    inbox: int = 0
    spam: int = 0
    not_found: int = 0
    bounces: int = 0
    auth_failures: int = 0  # logins refused: SMTP (535, ...) and IMAP

    @property
    def placed(self) -> int:
        """Messages whose placement is decided (found in the inbox or spam, or not found)."""
        return self.inbox + self.spam + self.not_found

    def rate(self, count: int) -> float | None:
        """`count` as a share of the placed messages; None when none is placed."""
        return count / self.placed if self.placed else None


@dataclass(frozen=True)
class Thresholds:
    """Where each signal reaches WATCH, THROTTLED and PAUSED (each triple in that order)."""

    min_messages: int  # placed messages before the spam rate counts at all
    spam_rate: tuple[float, float, float]
    bounces: tuple[int, int, int]
    auth_failures: tuple[int, int, int]
    throttle: float  # the share of its quota a THROTTLED mailbox keeps

    @classmethod
    def from_settings(cls, settings: Any) -> Thresholds:
        def triple(signal: str) -> Any:
            return tuple(getattr(settings, f"health_{s}_{signal}") for s in LEVELS)

        return cls(
            min_messages=settings.health_min_messages,
            spam_rate=triple("spam_rate"),
            bounces=triple("bounces"),
            auth_failures=triple("auth_failures"),
            throttle=settings.health_throttle,
        )


# The settings' names of the steps (WARMUP_HEALTH_<LEVEL>_<SIGNAL>).
LEVELS = ("watch", "throttle", "pause")


@dataclass(frozen=True)
class Verdict:
    state: HealthState
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def _step(value: float, thresholds: tuple[float, ...]) -> int:
    """How many thresholds `value` reaches (0: none)."""
    return sum(1 for t in thresholds if value >= t)


def judge(figures: Figures, t: Thresholds) -> Verdict:
    """The health of a mailbox with `figures` over the window (see the module docstring)."""
    worst = 0
    reasons = []
    spam_rate = figures.rate(figures.spam)
    if spam_rate is not None and figures.placed >= t.min_messages:
        step = _step(spam_rate, t.spam_rate)
        if step:
            reasons.append(
                f"spam rate {spam_rate:.0%} of {figures.placed} placed "
                f"({STEPS[step - 1].value.lower()} at {t.spam_rate[step - 1]:.0%})"
            )
        worst = max(worst, step)
    for count, limits, what in (
        (figures.bounces, t.bounces, "bounces"),
        (figures.auth_failures, t.auth_failures, "auth failures"),
    ):
        step = _step(count, limits)
        if step:
            reasons.append(
                f"{count} {what} ({STEPS[step - 1].value.lower()} at {limits[step - 1]})"
            )
        worst = max(worst, step)
    state = STEPS[worst - 1] if worst else HealthState.HEALTHY
    return Verdict(state, tuple(reasons))


def throttle_of(state: HealthState, throttle: float) -> float:
    """The share of its quota a mailbox in `state` keeps (`throttle`: a THROTTLED one's)."""
    if state is HealthState.PAUSED:
        return 0.0
    if state is HealthState.THROTTLED:
        return throttle
    return 1.0
