"""Who sends to whom: recipients from the pool for a day's sends. Pure functions.

The rules, strongest first:
1. Never the sender itself, a mailbox of the same owner, or one on the same domain.
2. Inbound is spread fairly: each active mailbox can receive about as many as it sends that
   day (its `capacity`, normally its own quota). Recipients are drawn from a shuffled stream
   in which each mailbox appears once per unit of capacity left, so nobody receives more
   than its capacity while others have room. Only when the pool's capacity is used up (or
   every mailbox with room is ruled out by rule 1) does a mailbox receive beyond it: the one
   with the least received beyond its capacity among a random sample of the pool.
3. The same pair is not repeated within the recent days given in `recent`, where the pool
   allows; nor twice in one sender's day while it has other choices. In the fallback of rule 2
   this wins over capacity: a mailbox may then receive one more than its capacity rather than
   the sender writing to the same mailbox twice.
4. Providers mix in proportion to their share of the pool's capacity, because the stream is
   a uniform shuffle of it.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

# How many set-aside recipients a pick looks through before drawing from the stream.
DEFERRED_SCAN = 64
# How many members the over-capacity fallback compares.
FALLBACK_SAMPLE = 256


class Member(NamedTuple):
    """A mailbox of the pool as pairing sees it (a tuple: planning makes 100,000s a day)."""

    id: int
    owner_id: int
    domain: str
    provider: str
    capacity: int  # inbound it may take today


@dataclass
class Assignment:
    recipients: dict[int, list[int]]  # sender id -> recipient ids, in slot order
    unassigned: dict[int, int]  # sender id -> sends with no eligible recipient at all


def provider_of(smtp_host: str) -> str:
    """The provider a mailbox is on, from its SMTP host: its last two labels.

    `smtp.gmail.com` -> `gmail.com`; an IP address stays whole. Good enough to mix providers;
    not a public-suffix lookup.
    """
    host = smtp_host.lower().rstrip(".")
    labels = host.split(".")
    if labels[-1].isdigit() or len(labels) <= 2:
        return host
    return ".".join(labels[-2:])


def _eligible(sender: Member, other: Member) -> bool:
    return (
        other.id != sender.id
        and other.owner_id != sender.owner_id
        and other.domain != sender.domain
    )


def assign_recipients(
    demand: Sequence[tuple[int, int]],
    members: Mapping[int, Member],
    rng: random.Random,
    *,
    received: Mapping[int, int] | None = None,
    recent: Mapping[int, set[int]] | None = None,
) -> Assignment:
    """Choose recipients for `demand`, a list of (sender id, sends wanted).

    `received` is what each member already receives today from plans outside this call;
    `recent` maps a sender to the recipients it had in the last few days.
    """
    received_now: dict[int, int] = dict(received or {})
    recent = recent or {}
    stream: list[int] = []
    for member in members.values():
        stream.extend([member.id] * max(0, member.capacity - received_now.get(member.id, 0)))
    rng.shuffle(stream)
    position = 0
    deferred: deque[int] = deque()
    everyone = list(members.values())
    result = Assignment({}, {})
    order = list(demand)
    rng.shuffle(order)
    for sender_id, wanted in order:
        sender = members[sender_id]
        chosen: list[int] = []
        taken: set[int] = set()
        avoid = recent.get(sender_id, set())

        for _ in range(wanted):
            pick = None
            for _scan in range(min(DEFERRED_SCAN, len(deferred))):
                candidate = deferred.popleft()
                if _fresh(sender, members[candidate], taken, avoid):
                    pick = candidate
                    break
                deferred.append(candidate)
            while pick is None and position < len(stream):
                candidate = stream[position]
                position += 1
                if _fresh(sender, members[candidate], taken, avoid):
                    pick = candidate
                else:
                    deferred.append(candidate)
            if pick is None:
                pick = _least_loaded(sender, everyone, received_now, taken, avoid, rng)
            if pick is None:
                break
            chosen.append(pick)
            taken.add(pick)
            received_now[pick] = received_now.get(pick, 0) + 1
        result.recipients[sender_id] = chosen
        if len(chosen) < wanted:
            result.unassigned[sender_id] = wanted - len(chosen)
    return result


def _fresh(sender: Member, other: Member, taken: set[int], avoid: set[int]) -> bool:
    return _eligible(sender, other) and other.id not in taken and other.id not in avoid


def _least_loaded(
    sender: Member,
    members: Sequence[Member],
    received: Mapping[int, int],
    taken: set[int],
    avoid: set[int],
    rng: random.Random,
) -> int | None:
    """Fallback once the stream has nothing eligible: the least-loaded of a random sample.

    Prefers members not yet taken today and not recently paired, then relaxes those two.
    Sampling keeps a pick cheap in a pool of 100,000.
    """
    sample = rng.sample(members, min(FALLBACK_SAMPLE, len(members)))
    eligible = [m for m in sample if _eligible(sender, m)]
    # the sample may hold only mailboxes already taken while others outside it are still free
    if all(m.id in taken for m in eligible) and len(sample) < len(members):
        eligible = [m for m in members if _eligible(sender, m)]
    for pool in (
        [m for m in eligible if m.id not in taken and m.id not in avoid],
        [m for m in eligible if m.id not in taken],
        eligible,
    ):
        if pool:
            load = min(received.get(m.id, 0) - m.capacity for m in pool)
            best = [m.id for m in pool if received.get(m.id, 0) - m.capacity == load]
            return rng.choice(best)
    return None
