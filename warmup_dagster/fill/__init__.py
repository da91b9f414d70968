"""A local day's fill rate: what was planned, what was sent, what broke a rule.

`load` reads one local date's rows (`rows`) and gives a `day.Day`, which computes every
figure with pandas on first use: per mailbox (quota, sent, replied, failed, held, late, fill)
and per day (sends, mean fill, mailboxes under quota, failures by reason, lateness, sends per
hour, rule breaks). The `fill_rate` asset, its checks (`checks`) and the `warmup report` and
`warmup audit` commands all read a `Day`: nothing is computed twice. The rule audit's pure
part is `core.rules`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine

from warmup_dagster.db.models import Mailbox
from warmup_dagster.fill.day import Day
from warmup_dagster.fill.rows import load_day
from warmup_dagster.queue.audit import Mismatch, counter_mismatches
from warmup_dagster.queue.counters import KEEP_MINUTES
from warmup_dagster.settings import Settings

__all__ = ["Day", "load", "mismatches", "timezones"]


def load(engine: Engine, settings: Settings, day: date, now: datetime) -> Day:
    """Local date `day`'s figures, as of the clock's `now`."""
    return Day(load_day(engine, day, settings.send_window_timezone), settings, now)


def mismatches(engine: Engine, day: Day) -> list[Mismatch] | None:
    """The counters of the hours of `day`'s claims that disagree with the send log; None when
    those hours' counters are pruned already (`queue.counters.KEEP_MINUTES`)."""
    span = day.span
    if span is None:
        return []
    if span[0] < day.now - timedelta(minutes=KEEP_MINUTES):
        return None
    return counter_mismatches(engine, *span)


def timezones(engine: Engine, default: str) -> set[str]:
    """The pool's timezones (a mailbox without one has `default`)."""
    with engine.connect() as conn:
        return {tz or default for (tz,) in conn.execute(select(Mailbox.timezone).distinct())}
