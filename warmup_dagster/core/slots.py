"""Send windows and slot times: when in its local day a mailbox sends. Pure functions.

All arithmetic is on UTC instants, so DST changes and half-hour zones need no special case:
a window is "from HH:00 to HH:00 local time on that date", converted once.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Window:
    """A send window as UTC instants, `[start, end)`."""

    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return max(0.0, (self.end - self.start).total_seconds())


def send_window(day: date, timezone: str, start_hour: int, end_hour: int) -> Window:
    """The window of local `day` in `timezone`, from `start_hour`:00 to `end_hour`:00 local."""
    zone = ZoneInfo(timezone)

    def local(hour: int) -> datetime:
        on_day, at = (day + timedelta(days=1), 0) if hour == 24 else (day, hour)
        return datetime.combine(on_day, time(at), zone).astimezone(UTC)

    return Window(local(start_hour), local(end_hour))


def local_day(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


def epoch_minute(when: datetime) -> int:
    return int(when.timestamp()) // 60


# Margins at the rules' edges, in clock time. A claimed job goes out within seconds: a sender
# run keeps at most 4 x its concurrency claimed ahead of its SMTP sessions, so a job waits at
# most 4 sessions before its own, and the SMTP timeout (30 s by default) bounds each: from claim
# to arrival is 150 s at worst. Admission keeps its own margins (`core.admission`); planning's
# are wider by what a due job may wait to be claimed, so admission seldom has to move a slot.
#
# No slot later than this before the window's end: the 3 minutes admission keeps (claim to
# arrival), plus 2 for a due job to be claimed (a sender run waking, or a new run starting).
PLAN_END_MARGIN = timedelta(minutes=5)
# The longest a claimed mail takes to arrive, by default (`WARMUP_ARRIVAL_MARGIN_SECONDS`):
# admission adds it between two claims of one mailbox and carries claims this close before a
# minute into that minute's caps (`core.admission`).
ARRIVAL_MARGIN = timedelta(seconds=30)
# Slots of one mailbox are `WARMUP_SAME_MAILBOX_DELAY_MIN` plus the arrival margin plus this
# apart: two due jobs may be claimed unevenly late.
CLAIM_SLACK = timedelta(seconds=30)
PLAN_SPACING_MARGIN = ARRIVAL_MARGIN + CLAIM_SLACK


def share_ahead(window: Window, since: datetime) -> tuple[timedelta, timedelta]:
    """`(ahead, length)`: how much of `window` is at or after `since`, and its whole length."""
    length = max(timedelta(0), window.end - window.start)
    ahead = window.end - min(max(since, window.start), window.end)
    return ahead, length


def prorate(value: int, window: Window, since: datetime) -> int:
    """`value` x the share of `window` at or after `since`, rounded down (exact: no float)."""
    ahead, length = share_ahead(window, since)
    if length <= timedelta(0):
        return 0
    return value * (ahead // timedelta(microseconds=1)) // (length // timedelta(microseconds=1))


def with_margins(
    window: Window, min_gap_s: float, max_gap_s: float, arrival_margin: timedelta = ARRIVAL_MARGIN
) -> tuple[Window, float, float]:
    """What `place_slots` is given to plan inside the margins: the window up to
    `PLAN_END_MARGIN` before its end, and gaps of at least the minimum plus the arrival margin
    plus `CLAIM_SLACK` (the typical maximum never below that)."""
    end = max(window.start, window.end - PLAN_END_MARGIN)
    min_gap = min_gap_s + (arrival_margin + CLAIM_SLACK).total_seconds()
    return Window(window.start, end), min_gap, max(max_gap_s, min_gap)


SECOND = 1_000_000  # microseconds
MINUTE = 60 * SECOND
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(when: datetime) -> int:
    return (when - EPOCH) // timedelta(microseconds=1)


class CapLedger:
    """Planned sends per minute and per hour, globally and per user, against their caps.

    Loaded with what is already planned (`add_global` for everybody's jobs, `add_user` for the
    users being planned), then asked `fits` and told `take` for each new slot, so a whole batch
    of mailboxes shares one view of the caps.
    """

    def __init__(
        self,
        global_per_minute: int,
        global_per_hour: int,
        user_per_minute: int,
        user_per_hour: int,
    ) -> None:
        self.limits = (global_per_minute, global_per_hour, user_per_minute, user_per_hour)
        self.global_minute: Counter[int] = Counter()
        self.global_hour: Counter[int] = Counter()
        self.user_minute: Counter[tuple[int, int]] = Counter()
        self.user_hour: Counter[tuple[int, int]] = Counter()

    def add_global(self, minute: int, count: int) -> None:
        self.global_minute[minute] += count
        self.global_hour[minute // 60] += count

    def add_user(self, user_id: int, minute: int, count: int) -> None:
        self.user_minute[user_id, minute] += count
        self.user_hour[user_id, minute // 60] += count

    def take(self, user_id: int, minute: int) -> None:
        """Count one new slot for `user_id` at `minute`."""
        self.add_global(minute, 1)
        self.add_user(user_id, minute, 1)

    def fits(self, user_id: int, minute: int) -> bool:
        hour = minute // 60
        gm, gh, um, uh = self.limits
        return (
            self.global_minute[minute] < gm
            and self.global_hour[hour] < gh
            and self.user_minute[user_id, minute] < um
            and self.user_hour[user_id, hour] < uh
        )


def target_offsets(
    n: int, span: float, min_gap: float, max_gap: float, rng: random.Random
) -> list[float]:
    """`n` increasing offsets (seconds) in `[0, span]`, consecutive ones at least `min_gap` apart.

    When the quota is dense (an average gap of `max_gap` or less would fill the span) gaps are
    drawn between `min_gap` and `max_gap`; otherwise the sends spread over the whole span with
    random gaps. Never on a grid. Returns fewer than `n` only when `n` can't fit at `min_gap`.
    """
    if n <= 0 or span < 0:
        return []
    n = min(n, math.floor(span / min_gap) + 1) if min_gap > 0 else n
    if n == 1:
        return [rng.uniform(0, span)]
    inner = n - 1
    room = span - inner * min_gap
    if span / n <= max_gap:
        gaps = [rng.uniform(min_gap, max_gap) for _ in range(inner)]
        extra = sum(gaps) - inner * min_gap
        if extra > room:
            # squeeze into a random share of the room, so dense mailboxes don't all open the
            # window on the same second
            share = room * rng.uniform(0.9, 1.0)
            gaps = [min_gap + (g - min_gap) * share / extra for g in gaps]
        offset = rng.uniform(0, max(0.0, span - sum(gaps)))
    else:
        cuts = sorted(rng.uniform(0, room) for _ in range(n))
        offset = cuts[0]
        gaps = [min_gap + cuts[i + 1] - cuts[i] for i in range(inner)]
    offsets = [offset]
    for gap in gaps:
        offsets.append(offsets[-1] + gap)
    return offsets


def place_slots(
    n: int,
    window: Window,
    not_before: datetime,
    min_gap_s: float,
    max_gap_s: float,
    rng: random.Random,
    busy: Sequence[datetime] = (),
    fits: Callable[[int], bool] = lambda minute: True,
    take: Callable[[int], None] = lambda minute: None,
) -> list[datetime]:
    """Up to `n` send times for one mailbox inside `window`, not before `not_before`.

    Each slot keeps `min_gap_s` from the previous slot and from every `busy` time (the
    mailbox's sends that stay), and is moved later, to a random second of a later minute,
    while `fits(epoch minute)` says a cap is full; `take(epoch minute)` counts a slot placed.
    What does not fit before the window closes is left out: the caller reports the shortfall.
    """
    start = max(window.start, not_before)
    span = (window.end - start).total_seconds()
    if n <= 0 or span <= 0:
        return []
    # Whole microseconds since the epoch: exact like datetimes, several times faster to add.
    start_us, end_us = _micros(start), _micros(window.end)
    gap = math.ceil(min_gap_s * SECOND)
    busy_us = sorted(_micros(b) for b in busy)
    slots: list[int] = []
    # A dense quota's offsets run up to `span` itself, and the window excludes its end.
    for offset in target_offsets(n, span - 1e-6, min_gap_s, max_gap_s, rng):
        when = start_us + round(offset * SECOND)
        if slots and when < slots[-1] + gap:
            when = slots[-1] + gap
        while when < end_us:
            clash = next((b for b in busy_us if abs(b - when) < gap), None) if busy_us else None
            if clash is not None:
                when = clash + gap
            elif not fits(when // MINUTE):
                second = when // SECOND % 60
                when += (60 - second) * SECOND + round(rng.uniform(0, 59) * SECOND)
            else:
                break
        if when >= end_us:
            break
        take(when // MINUTE)
        slots.append(when)
    return [EPOCH + timedelta(microseconds=us) for us in slots]
