"""Which due jobs may be sent now: every send-time cap in one pure function.

A sender claims due jobs in batches; before any of them is sent, `admit` walks the batch in
due order against what is already counted and decides, per job:

- **admit** it (its counts are taken at once, so the rest of the batch sees them);
- **defer** it to the moment it could go: the next opening of its mailbox's send window, the
  end of its mailbox's minimum spacing (plus the arrival margin), the next minute or hour of its
  owner's rate caps;
- **refuse** it when its local day's window is over, or ends within `END_MARGIN` (it expired
  unsent: claimed then, it could arrive after the window), or when a daily
  limit is used up (the mailbox's quota for the job's day, or the owner plan's daily limit):
  planning never plans past them, so this only happens when something else filled the day
  first; the job fails with the reason;
- or leave it untouched when the global per-minute or per-hour cap is full: everything behind
  it would wait for the same cap, so the batch stops there.

A job of a mailbox that may not send at all for now (`held`: health PAUSED, its domain held
by the gate) is deferred to when that is looked at again, whatever its kind (a reply is a
send too), or refused once its day is over, before any cap is looked at: it takes no count.

Counts are keyed `(Scope, subject, window)`: subject is 0 for global scopes, a user or a mailbox
id otherwise; window is the epoch minute, the epoch hour, or the local date's ordinal. The
minute and hour caps hold at the mail's arrival, not only at its claim: a claim made within the
arrival margin before a minute (or hour) began may arrive in it, so those claims count against
that minute's cap too (`carried_spans`; they stay counted in their own minute as well). Day
counts are reservations that the sender gives back when an attempt does not end in a send; a
reclaimed job (its earlier claim's lease ran out) already holds its day reservation.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from warmup_dagster.core.slots import ARRIVAL_MARGIN, epoch_minute, local_day, send_window

# Margins at the rules' edges, in clock time, so that latency between a claim and the mail's
# arrival never crosses a rule. A claimed job waits at most 4 SMTP sessions before its own (a
# sender run keeps at most 4 x its concurrency claimed ahead), each bounded by the SMTP timeout,
# 30 s by default: 150 s at worst from claim to arrival, so no claim within 3 minutes of the
# window's end. As a rule a job goes out within seconds of its claim and arrival jitter is
# seconds, within one SMTP timeout: 30 s more than the minimum spacing between two claims of one
# mailbox keeps their arrivals the minimum apart, and a claim made within 30 s before a minute
# began counts against that minute's caps as well. `WARMUP_ARRIVAL_MARGIN_SECONDS` sets that
# margin (`core.slots.ARRIVAL_MARGIN` is its default); planning keeps wider ones.
END_MARGIN = timedelta(minutes=3)


class Scope(enum.Enum):
    GLOBAL_MINUTE = "GLOBAL_MINUTE"
    GLOBAL_HOUR = "GLOBAL_HOUR"
    USER_MINUTE = "USER_MINUTE"
    USER_HOUR = "USER_HOUR"
    USER_DAY = "USER_DAY"
    MAILBOX_DAY = "MAILBOX_DAY"


CounterKey = tuple[Scope, int, int]
Span = tuple[datetime, datetime]


@dataclass(frozen=True)
class Candidate:
    """A due job as the claim sees it."""

    job_id: int
    mailbox_id: int
    user_id: int
    local_date: date
    timezone: str
    counts_toward_quota: bool  # new sends do; replies don't use the mailbox's quota
    reclaimed: bool = False


@dataclass(frozen=True)
class Limits:
    global_per_minute: int
    global_per_hour: int
    user_per_minute: int
    user_per_hour: int
    min_spacing: timedelta
    window_start_hour: int
    window_end_hour: int
    # the margins (see `END_MARGIN`): fields, so a caller may derive them from its settings
    end_margin: timedelta = END_MARGIN
    # the longest a claimed mail takes to arrive: it widens the spacing and carries claims
    # into the next minute's and hour's caps
    arrival_margin: timedelta = ARRIVAL_MARGIN

    @property
    def spacing(self) -> timedelta:
        """The least time between two claims of one mailbox."""
        return self.min_spacing + self.arrival_margin


@dataclass
class Decision:
    admitted: list[Candidate] = field(default_factory=list)
    deferred: list[tuple[Candidate, datetime, str]] = field(default_factory=list)
    refused: list[tuple[Candidate, str]] = field(default_factory=list)
    # Counts taken by the admitted jobs, to add to the stored counters.
    taken: Counter[CounterKey] = field(default_factory=Counter)
    # The global cap was full: nothing more goes before this time.
    blocked_until: datetime | None = None


def counter_keys(c: Candidate, now: datetime) -> list[CounterKey]:
    """Every count an admission of `c` at `now` takes."""
    minute = epoch_minute(now)
    keys = [
        (Scope.GLOBAL_MINUTE, 0, minute),
        (Scope.GLOBAL_HOUR, 0, minute // 60),
        (Scope.USER_MINUTE, c.user_id, minute),
        (Scope.USER_HOUR, c.user_id, minute // 60),
    ]
    if not c.reclaimed:
        keys += day_keys(c)
    return keys


def day_keys(c: Candidate) -> list[CounterKey]:
    """The day reservations of `c`, given back when its attempt does not end in a send."""
    keys = [(Scope.USER_DAY, c.user_id, c.local_date.toordinal())]
    if c.counts_toward_quota:
        keys.append((Scope.MAILBOX_DAY, c.mailbox_id, c.local_date.toordinal()))
    return keys


def window_check(c: Candidate, now: datetime, limits: Limits) -> tuple[datetime | None, str | None]:
    """`(opening, expired)`: when the mailbox's window next opens (None while it is open),
    and, when the job's own local day is over, why (None while it is not).

    The window counts as closed from `limits.end_margin` before its end: a claim then could
    arrive after it.
    """
    over = f"expired: its day ({c.local_date}) is over"
    today = local_day(now, c.timezone)
    if c.local_date < today:
        return None, over
    window = send_window(today, c.timezone, limits.window_start_hour, limits.window_end_hour)
    if now < window.start:
        return window.start, None
    closing = window.end - limits.end_margin
    if now < closing:
        return None, None
    if c.local_date == today:
        if now >= window.end:
            return None, over
        minutes = f"{limits.end_margin.total_seconds() / 60:g}"
        return None, f"expired: its day's window ({c.local_date}) ends within {minutes} minutes"
    tomorrow = today + timedelta(days=1)
    return send_window(
        tomorrow, c.timezone, limits.window_start_hour, limits.window_end_hour
    ).start, None


def carried_spans(now: datetime, margin: timedelta) -> tuple[Span, Span]:
    """The claims made before `now`'s minute, and before its hour, that may arrive in them:
    those of the `margin` before each one's start, as `[start - margin, start)`."""
    minute = datetime.fromtimestamp(epoch_minute(now) * 60, tz=now.tzinfo)
    hour = minute.replace(minute=0)
    return (minute - margin, minute), (hour - margin, hour)


def _minute_start(now: datetime, minutes: int) -> datetime:
    return datetime.fromtimestamp((epoch_minute(now) // minutes + 1) * minutes * 60, tz=now.tzinfo)


def admit(
    candidates: Iterable[Candidate],
    now: datetime,
    limits: Limits,
    counts: Mapping[CounterKey, int],
    last_sent: Mapping[int, datetime],
    quotas: Mapping[tuple[int, date], int],
    plan_limits: Mapping[int, int],
    carried: Mapping[CounterKey, int] | None = None,
    held: Mapping[int, str] | None = None,
    hold_until: datetime | None = None,
) -> Decision:
    """Decide each candidate against every cap (see the module docstring).

    Args:
        candidates: Due jobs, earliest due first.
        now: The claim's time.
        limits: The rate caps, spacing and window.
        counts: Stored counts for the keys the candidates touch (absent keys are 0).
        last_sent: Per mailbox, the latest claim of any of its jobs.
        quotas: Per (mailbox, local date), the planned quota; a missing day has no quota cap.
        plan_limits: Per user, the plan's daily send limit.
        carried: For the minute and hour keys of `now`, the claims before them that may arrive
            in them (`carried_spans`).
        held: Per mailbox that may not send for now, why (`queue.holds`).
        hold_until: When a held mailbox's jobs are looked at again (required with `held`).
    """
    decision = Decision()
    taken = decision.taken
    last = dict(last_sent)
    carried = carried or {}
    held = held or {}
    if held and hold_until is None:
        raise ValueError("held mailboxes need a hold_until")

    def used(key: CounterKey) -> int:
        return counts.get(key, 0) + taken[key] + carried.get(key, 0)

    minute = epoch_minute(now)
    for c in candidates:
        hold = held.get(c.mailbox_id)
        if hold is not None:
            _, expired = window_check(c, now, limits)
            if expired:
                decision.refused.append((c, expired))
            else:
                assert hold_until is not None
                decision.deferred.append((c, max(hold_until, now), hold))
            continue
        if used((Scope.GLOBAL_MINUTE, 0, minute)) >= limits.global_per_minute:
            decision.blocked_until = _minute_start(now, 1)
            break
        if used((Scope.GLOBAL_HOUR, 0, minute // 60)) >= limits.global_per_hour:
            decision.blocked_until = _minute_start(now, 60)
            break
        opening, expired = window_check(c, now, limits)
        if expired:
            # Its day is over: sending yesterday's mail today would only crowd today's. The
            # miss shows in the day's fill rate, where catching up is decided.
            decision.refused.append((c, expired))
            continue
        if opening is not None:
            decision.deferred.append((c, opening, "outside the send window"))
            continue
        previous = last.get(c.mailbox_id)
        if previous is not None and now < previous + limits.spacing:
            decision.deferred.append((c, previous + limits.spacing, "mailbox spacing"))
            continue
        if not c.reclaimed:
            day = c.local_date.toordinal()
            quota = quotas.get((c.mailbox_id, c.local_date))
            over_quota = quota is not None and used((Scope.MAILBOX_DAY, c.mailbox_id, day)) >= quota
            if c.counts_toward_quota and over_quota:
                why = f"the mailbox's quota of {quota} for {c.local_date} is used up"
                decision.refused.append((c, why))
                continue
            plan_limit = plan_limits.get(c.user_id)
            if plan_limit is not None and used((Scope.USER_DAY, c.user_id, day)) >= plan_limit:
                why = f"the owner's plan allows {plan_limit} sends on {c.local_date}, all used"
                decision.refused.append((c, why))
                continue
        if used((Scope.USER_MINUTE, c.user_id, minute)) >= limits.user_per_minute:
            decision.deferred.append((c, _minute_start(now, 1), "owner's per-minute cap"))
            continue
        if used((Scope.USER_HOUR, c.user_id, minute // 60)) >= limits.user_per_hour:
            decision.deferred.append((c, _minute_start(now, 60), "owner's per-hour cap"))
            continue
        taken.update(counter_keys(c, now))
        last[c.mailbox_id] = now
        decision.admitted.append(c)
    return decision
