"""Where one local date's mail landed: every sender's placement of that date, added up.

Read with `health.placement.by_day` (the one definition of a mailbox-day's placement, which
health reads over its window): the placement of a message is its sender's, by the local date
of its send, which is the `fill_rate` partition it belongs to. Only decided placements count
(inbox, spam, not found after the grace period); mail still looked for is `placement_pending`,
so a date materialized soon after its windows closed has figures that are still growing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

from sqlalchemy.engine import Engine

from warmup_dagster.core.health import Figures
from warmup_dagster.health.placement import by_day, pending_on

_COUNTS = tuple(f.name for f in fields(Figures))


@dataclass(frozen=True)
class DayPlacement:
    """One local date's placements: per sending mailbox, and the mail not placed yet."""

    day: date
    senders: Mapping[int, Figures]  # mailbox id -> its figures of the date
    pending: int

    @property
    def total(self) -> Figures:
        """Every sender's figures of the date, added up."""
        return Figures(*(sum(getattr(f, name) for f in self.senders.values()) for name in _COUNTS))

    @property
    def figures(self) -> dict[str, int | float]:
        """The date's counts and rates (of the placed mail; rates only once any is placed)."""
        total = self.total
        found: dict[str, int | float] = {
            "placed": total.placed,
            "placed_inbox": total.inbox,
            "placed_spam": total.spam,
            "placed_not_found": total.not_found,
            "placement_pending": self.pending,
            "bounces": total.bounces,
            "auth_failures": total.auth_failures,
        }
        for name, count in (
            ("inbox_rate", total.inbox),
            ("spam_rate", total.spam),
            ("not_found_rate", total.not_found),
        ):
            rate = total.rate(count)
            if rate is not None:
                found[name] = round(rate, 4)
        return found

    def worst(self, emails: Mapping[int, str], limit: int) -> list[dict[str, Any]]:
        """Up to `limit` senders with mail in spam or not found, the highest spam rate first
        (then the most placed, then the address): email, placed, the three rates."""
        rows = []
        for box, f in self.senders.items():
            if not f.placed or not (f.spam or f.not_found):
                continue
            rows.append(
                {
                    "email": emails.get(box, f"mailbox {box}"),
                    "placed": f.placed,
                    "inbox_rate": round(f.inbox / f.placed, 3),
                    "spam_rate": round(f.spam / f.placed, 3),
                    "not_found_rate": round(f.not_found / f.placed, 3),
                }
            )
        rows.sort(key=lambda r: (-r["spam_rate"], -r["placed"], r["email"]))
        return rows[:limit]


def load(engine: Engine, day: date) -> DayPlacement:
    """Local date `day`'s placements (two index ranges and a count, see `health.placement`)."""
    with engine.connect() as conn:
        senders = {box: f for (box, _), f in by_day(conn, day, day).items()}
        return DayPlacement(day, senders, pending_on(conn, day))
