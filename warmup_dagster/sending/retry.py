"""A sender run's database calls, retried through an outage of the database.

A PostgreSQL restart, a fail-over or a dropped connection raises
`sqlalchemy.exc.OperationalError` from whatever call was in progress. Failing the run for it
would leave every job it holds to wait out its lease; waiting instead costs only the outage.
Each call is one transaction, so a failed one rolled back (or, if the connection went during
its commit, committed without our knowing: a claim's jobs then come back after their lease, a
record written twice finds its jobs no longer in flight and changes nothing but the send log).

The back-off is clock time, like every duration: it doubles from `FIRST_WAIT_S` up to
`MAX_WAIT_S`, and after `ATTEMPTS` tries the call gives up with `DatabaseUnavailable`, which
fails the run loudly (its log names the call and the last error).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import OperationalError

from warmup_dagster.clock import Clock

T = TypeVar("T")

# Tries of one call before the run gives up (the waits between them add up to ~46 clock s).
ATTEMPTS = 10
# The first wait after a failure and the longest, in seconds of clock time.
FIRST_WAIT_S = 0.25
MAX_WAIT_S = 10.0


class DatabaseUnavailable(RuntimeError):
    """The database kept failing a call through every retry."""


def waits(attempts: int = ATTEMPTS) -> list[float]:
    """The clock seconds waited after each failed try but the last."""
    return [min(MAX_WAIT_S, FIRST_WAIT_S * 2**n) for n in range(attempts - 1)]


async def retrying(
    what: str,
    call: Callable[[], T],
    clock: Clock,
    log: logging.Logger,
    attempts: int = ATTEMPTS,
) -> T:
    """Run the blocking `call` in a thread, retrying an `OperationalError` with back-off.

    Args:
        what: What the call does, for the log ("claiming jobs").
        call: One database transaction; it must be safe to run again after a failure.
        clock: The run's clock, for the waits.
        log: Where each failure is logged (a warning; the last one an error).
        attempts: Tries before giving up.

    Raises:
        DatabaseUnavailable: Every try failed; chained to the last error.
    """
    return await retrying_async(what, lambda: asyncio.to_thread(call), clock, log, attempts)


async def retrying_async(
    what: str,
    start: Callable[[], Awaitable[T]],
    clock: Clock,
    log: logging.Logger,
    attempts: int = ATTEMPTS,
) -> T:
    """`retrying` for a call that is a coroutine: `start` makes a new one for each try."""
    for attempt, wait in enumerate([*waits(attempts), None], start=1):
        try:
            return await start()
        except OperationalError as exc:
            reason = str(exc).splitlines()[0]
            if wait is None:
                log.error(f"{what}: the database failed {attempts} tries, giving up: {reason}")
                raise DatabaseUnavailable(
                    f"{what}: the database failed {attempts} tries in a row: {reason}"
                ) from exc
            log.warning(
                f"{what}: the database failed (try {attempt} of {attempts}), "
                f"retrying in {wait:g} s of clock time: {reason}"
            )
            await asyncio.sleep(clock.real_seconds(wait))
    raise AssertionError("unreachable")  # the loop returns or raises
