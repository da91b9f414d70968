"""What a delivery attempt's result means for its job: sent, retried, failed or held. Pure.

The SMTP layer reports a reply code (or none, when the connection failed or timed out); this
module decides, so the rules are in one place and tested without a server:

- 2xx: sent.
- 4xx, and no reply at all (refused, dropped, timed out): retried with exponential backoff
  and jitter, until the attempts run out; then failed.
- 5xx: failed, and counted against the sending mailbox's health.
- Authentication refused (530, 534, 535, 538) or a mailbox whose connection settings can't
  be used: the mailbox is paused with the reason and its jobs are held, not failed.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass


class Outcome(enum.Enum):
    SENT = "SENT"
    RETRY = "RETRY"
    FAILED = "FAILED"
    PAUSE = "PAUSE"


# 530 authentication required, 534 mechanism too weak, 535 credentials invalid, 538
# encryption required for the mechanism: none of these heal by retrying the same login.
AUTH_CODES = frozenset({530, 534, 535, 538})


def classify(code: int | None) -> Outcome:
    """The outcome of an SMTP reply code; `None` means no reply (a network failure)."""
    if code is None:
        return Outcome.RETRY
    if code in AUTH_CODES:
        return Outcome.PAUSE
    if 200 <= code < 300:
        return Outcome.SENT
    if 400 <= code < 500:
        return Outcome.RETRY
    return Outcome.FAILED


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for temporary failures.

    Attempt `n` (1-based) that failed temporarily waits `base * 2**(n-1)` seconds, capped at
    `cap`, then scaled by a random factor in `[1 - jitter, 1]` so retries of many jobs that
    failed together (a provider's outage) do not come back together.
    """

    max_attempts: int = 5
    base_seconds: float = 60.0
    cap_seconds: float = 3600.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before the attempt after `attempt`."""
        raw = min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempt - 1))
        return raw * (1 - self.jitter * rng.random())

    def next_outcome(self, outcome: Outcome, attempt: int) -> Outcome:
        """A temporary failure on the last allowed attempt becomes a failure."""
        if outcome is Outcome.RETRY and attempt >= self.max_attempts:
            return Outcome.FAILED
        return outcome
