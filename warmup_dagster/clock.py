"""The one clock: every "now" in the project comes from a `Clock`.

`RealClock` is wall time. `ScaledClock` runs virtual time at `speed` times wall time from an
anchor (virtual start, real start). The anchor is stored in the application database, so every
process of a deployment (webserver, daemon, each run, each machine) computes the same virtual
"now" from the same two numbers.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from warmup_dagster.db.engine import writing
from warmup_dagster.db.models import ClockAnchor
from warmup_dagster.settings import Settings


class Clock(ABC):
    """Source of the current time (always timezone-aware UTC)."""

    speed: float = 1.0

    @abstractmethod
    def now(self) -> datetime: ...

    def real_seconds(self, virtual_seconds: float) -> float:
        """How long a span of virtual time lasts in wall-clock seconds."""
        return virtual_seconds / self.speed

    def sleep(self, virtual_seconds: float) -> None:
        time.sleep(max(0.0, self.real_seconds(virtual_seconds)))


class RealClock(Clock):
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ScaledClock(Clock):
    """Virtual time: `virtual_start + (wall_now - real_start) * speed`."""

    def __init__(self, virtual_start: datetime, real_start: datetime, speed: float) -> None:
        if virtual_start.tzinfo is None or real_start.tzinfo is None:
            raise ValueError("ScaledClock needs timezone-aware instants")
        self.virtual_start = virtual_start
        self.real_start = real_start
        self.speed = speed

    def now(self) -> datetime:
        elapsed = (datetime.now(UTC) - self.real_start).total_seconds()
        return self.virtual_start + timedelta(seconds=elapsed * self.speed)


class FixedClock(Clock):
    """A clock that only moves when told to; for tests and deterministic simulations."""

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> datetime:
        self._now += timedelta(**delta)
        return self._now

    def sleep(self, virtual_seconds: float) -> None:
        self._now += timedelta(seconds=max(0.0, virtual_seconds))


def clock_from_settings(settings: Settings, engine: Engine) -> Clock:
    """The deployment's clock: real unless `WARMUP_CLOCK_SPEED` or `WARMUP_CLOCK_START` is set.

    The first process to ask records the anchor in `clock_anchors`; later ones read it back, so
    all agree, however many start at once. Changing either variable starts a new anchor.
    """
    if settings.clock_speed == 1.0 and settings.clock_start is None:
        return RealClock()
    start = settings.clock_start.isoformat() if settings.clock_start else "now"
    key = f"{start}|{settings.clock_speed!r}"
    try:
        # Under the write lock on SQLite (BEGIN IMMEDIATE, waiting out the busy timeout): a
        # plain transaction that read no anchor and then wrote one failed at once with
        # "database is locked" when another process wrote first, as processes starting
        # together (a daemon's first runs) did.
        with writing(engine) as conn, Session(bind=conn) as session:
            anchor = session.scalar(select(ClockAnchor).where(ClockAnchor.key == key))
            if anchor is None:
                real_now = datetime.now(UTC)
                anchor = ClockAnchor(
                    key=key,
                    virtual_start=settings.clock_start or real_now,
                    real_start=real_now,
                    speed=settings.clock_speed,
                )
                session.add(anchor)
                session.flush()
            return ScaledClock(anchor.virtual_start, anchor.real_start, anchor.speed)
    except IntegrityError:  # PostgreSQL: another process anchored between the read and write
        with Session(engine) as session:
            anchor = session.scalars(select(ClockAnchor).where(ClockAnchor.key == key)).one()
            return ScaledClock(anchor.virtual_start, anchor.real_start, anchor.speed)
