"""What one planning call reads before it writes anything: the pool, the caps' minute counts,
each day's inbound counts, the kept jobs and recent pairs (`Shared`); the planner
(`planner`) and the recipients' choice (`recipients`) both work from it."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from sqlalchemy.engine import Connection

from warmup_dagster.core.pairing import Member
from warmup_dagster.core.slots import CapLedger
from warmup_dagster.planning import queries
from warmup_dagster.planning.model import Target
from warmup_dagster.settings import Settings

# Planning covers every local day whose send window opens within this of now.
HORIZON = timedelta(hours=24)
RECENT_DAYS = 3  # a pair is not repeated within this many days where the pool allows


class Shared:
    """Everything one planning call reads, read before it writes anything (see `recipients`).

    The pool, the rate caps' minute counts, each day's inbound counts, the kept jobs and recent
    pairs of the mailboxes being planned. Reading it all first keeps every query's cost
    independent of what this call inserts (inside one transaction PostgreSQL's statistics
    don't see those rows, and a query planned for a small table would scan them again for
    every part); the state is then kept current in memory.
    """

    def __init__(
        self,
        conn: Connection,
        settings: Settings,
        now: datetime,
        targets: list[Target],
        by_day: dict[date, list[int]],
        rng: random.Random,
    ) -> None:
        self.settings = settings  # recipients' capacity is their own quota (`first_day`)
        self.rows = {row.id: row for row in queries.pool_members(conn)}
        # Candidates are walked from a moving cursor over one shuffle of the pool.
        self.pool_ids = list(self.rows)
        rng.shuffle(self.pool_ids)
        self.cursor = 0
        self.members: dict[tuple[int, date], Member] = {}
        self.ledger = CapLedger(
            settings.global_sends_per_minute,
            settings.global_sends_per_hour,
            settings.user_sends_per_minute,
            settings.user_sends_per_hour,
        )
        since, until = now - timedelta(hours=1), now + HORIZON + timedelta(days=1)
        for minute, count in queries.minute_load(conn, since, until):
            self.ledger.add_global(minute, count)
        users = {t.box.user_id for t in targets}
        for user, minute, count in queries.user_minute_load(conn, since, until, users):
            self.ledger.add_user(user, minute, count)
        self.kept = queries.kept_jobs(conn, by_day)
        self.received = {day: queries.inbound_counts(conn, day) for day in by_day}
        self.recent: dict[date, dict[int, set[int]]] = {
            day: queries.recent_pairs(conn, ids, day - timedelta(days=RECENT_DAYS), day)
            for day, ids in by_day.items()
        }
