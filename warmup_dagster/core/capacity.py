"""What a pool's daily mail needs, and whether the configured caps carry it. Pure arithmetic.

`warmup capacity` prints it: the capacity table of the system this project replaces (emails a
day, sends a minute inside the send window, SMTP sessions at once at the provider's latency,
sender runs), from the project's measured figures, then what each cap allows in the window and
by how much it falls short. The mail of a day must go out inside the window, so the caps are
compared with the window's hours, not the day's 24.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Measured by `make bench-send` on 2026-12-01 (docs/BENCHMARKS.md, "Sending"), 2 cores:
# 2. the full path at a loopback sink, 5 sender runs: 9,756 sends/min, so one run carries
# 9,756 / 5 when SMTP is not what limits it;
SENDS_PER_MINUTE_PER_RUN = 9_756 / 5
# 3. the full path at a sink taking 1 s per message, as providers do: 5 runs x 10 sessions
# reached 2,755/min of the 3,000/min they allow at 1 s, so sessions are busy 92% of the time.
SESSION_EFFICIENCY = 2_755 / 3_000
# The provider latency that benchmark models: one second per message.
SMTP_LATENCY_SECONDS = 1.0


@dataclass(frozen=True)
class Load:
    """A pool's daily mail: `mailboxes` sending `per_mailbox` a day inside a `window_hours`
    window; `users` owners (None: per-owner caps are not checked)."""

    mailboxes: int
    per_mailbox: float
    window_hours: float
    smtp_latency_seconds: float = SMTP_LATENCY_SECONDS
    users: int | None = None

    def __post_init__(self) -> None:
        for name in ("mailboxes", "per_mailbox", "window_hours", "smtp_latency_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be above 0, not {getattr(self, name)}")
        if self.window_hours > 24:
            raise ValueError(f"window_hours must be at most 24, not {self.window_hours}")
        if self.users is not None and not 0 < self.users <= self.mailboxes:
            raise ValueError(f"users must be from 1 to the mailboxes, not {self.users}")


@dataclass(frozen=True)
class Caps:
    """The configured caps (the `WARMUP_*` settings of the same names)."""

    global_sends_per_minute: int
    global_sends_per_hour: int
    user_sends_per_minute: int
    user_sends_per_hour: int
    worker_count: int
    worker_concurrency: int


@dataclass(frozen=True)
class Need:
    emails_per_day: float
    per_hour: float
    per_minute: float
    sessions: int  # SMTP sessions at once at the load's latency
    per_run: float  # sends a minute one sender run carries at that latency
    runs: int


@dataclass(frozen=True)
class Limit:
    """What one cap allows in the window, and the setting's value the load would need."""

    setting: str
    value: int
    allows: float
    needs: int

    def short_by(self, emails: float) -> float:
        return max(0.0, emails - self.allows)


@dataclass(frozen=True)
class Capacity:
    load: Load
    need: Need
    limits: list[Limit]

    @property
    def carried(self) -> float:
        """The most emails a day the caps let through in the window."""
        return min(limit.allows for limit in self.limits)

    @property
    def feasible(self) -> bool:
        return self.carried >= self.need.emails_per_day

    @property
    def short_by(self) -> float:
        return max(0.0, self.need.emails_per_day - self.carried)


def per_run(concurrency: int, latency_seconds: float) -> float:
    """Sends a minute one sender run carries: its sessions at that latency, as busy as
    measured, and never more than the measured run at a fast sink."""
    by_sessions = concurrency * 60 / latency_seconds * SESSION_EFFICIENCY
    return min(SENDS_PER_MINUTE_PER_RUN, by_sessions)


def capacity(load: Load, caps: Caps) -> Capacity:
    """The need of `load`, and what each of `caps` allows inside its window."""
    emails = load.mailboxes * load.per_mailbox
    per_hour = emails / load.window_hours
    per_minute = per_hour / 60
    run_rate = per_run(caps.worker_concurrency, load.smtp_latency_seconds)
    need = Need(
        emails_per_day=emails,
        per_hour=per_hour,
        per_minute=per_minute,
        sessions=math.ceil(per_minute / 60 * load.smtp_latency_seconds / SESSION_EFFICIENCY),
        per_run=run_rate,
        runs=math.ceil(per_minute / run_rate),
    )
    minutes = load.window_hours * 60
    limits = [
        Limit(
            "WARMUP_GLOBAL_SENDS_PER_MINUTE",
            caps.global_sends_per_minute,
            caps.global_sends_per_minute * minutes,
            math.ceil(per_minute),
        ),
        Limit(
            "WARMUP_GLOBAL_SENDS_PER_HOUR",
            caps.global_sends_per_hour,
            caps.global_sends_per_hour * load.window_hours,
            math.ceil(per_hour),
        ),
        Limit(
            "WARMUP_WORKER_COUNT",
            caps.worker_count,
            caps.worker_count * run_rate * minutes,
            need.runs,
        ),
    ]
    if load.users is not None:
        limits += [
            Limit(
                "WARMUP_USER_SENDS_PER_MINUTE",
                caps.user_sends_per_minute,
                caps.user_sends_per_minute * load.users * minutes,
                math.ceil(per_minute / load.users),
            ),
            Limit(
                "WARMUP_USER_SENDS_PER_HOUR",
                caps.user_sends_per_hour,
                caps.user_sends_per_hour * load.users * load.window_hours,
                math.ceil(per_hour / load.users),
            ),
        ]
    return Capacity(load, need, limits)


def table(result: Capacity) -> list[str]:
    """The capacity table as lines of text (what `warmup capacity` prints)."""
    load, need = result.load, result.need
    emails = need.emails_per_day
    lines = [
        f"{load.mailboxes:,} mailboxes x {load.per_mailbox:g} emails a day, in a "
        f"{load.window_hours:g}-hour send window, SMTP latency {load.smtp_latency_seconds:g} s",
        "",
        "needed",
        f"  emails a day                      {emails:>12,.0f}",
        f"  sends a minute in the window      {need.per_minute:>12,.0f}",
        f"  sends an hour in the window       {need.per_hour:>12,.0f}",
        f"  SMTP sessions at once             {need.sessions:>12,}",
        f"  sender runs (at {need.per_run:,.0f} sends/min each) {need.runs:>8,}",
        "",
        f"what the caps allow in the window ({load.window_hours:g} h)",
    ]
    width = max(len(f"{limit.setting}={limit.value}") for limit in result.limits)
    for limit in result.limits:
        short = limit.short_by(emails)
        verdict = (
            f"short by {short:,.0f} ({short / emails:.1%}): needs {limit.needs:,}"
            if short
            else "enough"
        )
        lines.append(
            f"  {f'{limit.setting}={limit.value}':<{width}}  {limit.allows:>12,.0f}  {verdict}"
        )
    lines.append("")
    if result.feasible:
        lines.append(f"feasible: the caps carry {emails:,.0f} emails a day")
    else:
        lines.append(
            f"infeasible: the caps carry at most {result.carried:,.0f} of {emails:,.0f} emails "
            f"a day, {result.short_by:,.0f} ({result.short_by / emails:.1%}) short"
        )
    return lines
