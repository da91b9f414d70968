"""What a sender run did, summed up: the `send_due_mail` output's metadata in the Dagster UI."""

from __future__ import annotations

import resource
from collections import Counter
from dataclasses import dataclass, field

from warmup_dagster.core.delivery import Outcome


@dataclass
class RunSummary:
    """What a sender run did: the run's metadata in the Dagster UI.

    `late` counts the outcomes that came after another claim had taken their job over (the
    run's lease ran out): they are in the send log, marked late, and count nowhere. A late
    SENT is a message that most likely went out twice.
    """

    claims: int = 0
    claimed: int = 0
    reclaimed: int = 0
    deferred: int = 0
    refused: int = 0
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    late: Counter[Outcome] = field(default_factory=Counter)
    found_delivered: int = 0  # reclaimed jobs found in their recipient's mailbox: not re-sent
    paused_mailboxes: set[int] = field(default_factory=set)
    seconds: float = 0.0
    stopped_by: str | None = None  # the signal that ended the run early (SIGTERM, SIGINT)

    def metadata(self) -> dict[str, int | float]:
        return {
            "claimed": self.claimed,
            "sent": self.outcomes[Outcome.SENT],
            "retried": self.outcomes[Outcome.RETRY],
            "failed": self.outcomes[Outcome.FAILED],
            "held (mailbox paused)": self.outcomes[Outcome.PAUSE],
            "mailboxes paused": len(self.paused_mailboxes),
            "reclaimed": self.reclaimed,
            "reclaimed, found delivered (not sent again)": self.found_delivered,
            "deferred": self.deferred,
            "refused": self.refused,
            "late outcomes": self.late.total(),
            "sent twice (late sends)": self.late[Outcome.SENT],
            "claims": self.claims,
            "seconds": round(self.seconds, 1),
            # The whole run's process: a sender run executes in one process.
            "peak memory (MB)": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }

    def late_warning(self) -> str | None:
        """The run log's one line about late outcomes, or None when there were none."""
        n = self.late.total()
        if not n:
            return None
        return (
            f"{n} outcome(s) came after their jobs' leases ran out and another claim took them "
            f"over; {self.late[Outcome.SENT]} of them sent, so those messages most likely went "
            "out twice (send_log rows with late set)"
        )
