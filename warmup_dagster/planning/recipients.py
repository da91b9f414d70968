"""Choosing recipients for a part of a planning call, from the pool the call loaded."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date

from warmup_dagster.core.pairing import Member, assign_recipients, provider_of
from warmup_dagster.planning import first_day
from warmup_dagster.planning.model import DayPlan, Order
from warmup_dagster.planning.shared import Shared

CANDIDATE_FACTOR = 3  # recipients are drawn from pool members holding 3x a part's demand
WHOLE_POOL = 20_000  # up to this size every member is a candidate (exact fairness)


def candidates(shared: Shared, senders: set[int], demand: int, day: date) -> dict[int, Member]:
    """The senders plus pool members with room left, holding `CANDIDATE_FACTOR` x the demand.

    Pools up to `WHOLE_POOL` are taken whole. In a pool of 100,000 a part of a few thousand
    senders needs only part of the pool's inbound capacity; walking on from where the last
    part stopped in a shuffled pool keeps each part's work proportional to the part, while
    inbound stays fair across parts (`received` is shared).
    """
    received = shared.received[day]

    def member(member_id: int) -> Member:
        key = (member_id, day)
        if key not in shared.members:
            r = shared.rows[member_id]
            # capacity: what the mailbox itself sends that day (its quota before day limits)
            shared.members[key] = Member(
                r.id,
                r.user_id,
                r.domain,
                provider_of(r.smtp_host),
                first_day.capacity(r, day, shared.settings),
            )
        return shared.members[key]

    members = {sender: member(sender) for sender in senders}
    pool, room = shared.pool_ids, 0
    if len(pool) <= WHOLE_POOL:
        return {**members, **{m: member(m) for m in pool}}
    for _ in range(len(pool)):
        if room >= CANDIDATE_FACTOR * demand:
            break
        candidate = member(pool[shared.cursor])
        shared.cursor = (shared.cursor + 1) % len(pool)
        left = candidate.capacity - received.get(candidate.id, 0)
        if left > 0:
            members[candidate.id] = candidate
            room += left
    return members


def pair_recipients(order: Order, shared: Shared, rng: random.Random) -> None:
    """Recipients for each mailbox-day of a part with slots; slots beyond them are dropped."""
    by_day: dict[date, list[DayPlan]] = defaultdict(list)
    for _, plan in order:
        by_day[plan.local_date].append(plan)
    for day, plans in by_day.items():
        # only active mailboxes get slots, and they are all pool members
        demand = [(p.mailbox_id, len(p.slots)) for p in plans if p.slots]
        senders = {sender for sender, _ in demand}
        members = candidates(shared, senders, sum(n for _, n in demand), day)
        received = shared.received[day]
        recent = shared.recent[day]
        assignment = assign_recipients(demand, members, rng, received=received, recent=recent)
        for recipients in assignment.recipients.values():
            received.update(recipients)
        for plan in plans:
            plan.recipients = assignment.recipients.get(plan.mailbox_id, [])
            plan.slots = plan.slots[: len(plan.recipients)]
            if plan.mailbox_id in assignment.unassigned:
                plan.notes.append(
                    f"{assignment.unassigned[plan.mailbox_id]} had no eligible recipient "
                    "(other owner, other domain)"
                )
