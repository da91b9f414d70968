"""What a sender run keeps up beside its claims: the leases of the jobs it holds, and writing
their outcomes.

Both run as side tasks of the run (see `worker`), in their own short transactions
(`queue.extend_leases`, `queue.record`), never under the claim lock: a claim may wait seconds
for that lock when claims are slow, and a lease that is not renewed meanwhile runs out, so
another claim takes the job over and sends it again with the same Message-ID.

Renewal runs every quarter lease. Recording waits for no timer: a result is written as soon as
it arrives (each accepted message the moment its server says 250), together with whatever
arrived while the previous write was in progress, so a busy run writes in batches and an idle
one writes each outcome alone. Until it is written, an outcome lives only in this process: a
run killed then loses it and its job is sent again once its lease runs out (the gap is the
one write's time, no longer the half second a timer left).

The run's own writes go one at a time (an asyncio lock): a renewal and a record touch the same
rows, and two transactions of one run locking them in different orders could deadlock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy.engine import Engine

from warmup_dagster import queue
from warmup_dagster.clock import Clock
from warmup_dagster.core.delivery import RetryPolicy
from warmup_dagster.queue import ClaimedJob, Result
from warmup_dagster.sending.retry import retrying_async
from warmup_dagster.sending.summary import RunSummary

# Results per outcome write at most (more wait for the next one, at once).
RECORD_BATCH = 500
# The shortest renewal interval (real seconds), for very short leases at high clock speeds.
RENEW_AT_LEAST_EVERY_S = 0.05
# Seconds between progress lines in the run's log.
PROGRESS_EVERY_S = 60.0


class Upkeep:
    """The jobs a run holds and their results: renews their leases and records the results."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        lease_seconds: int,
        worker_id: str,
        policy: RetryPolicy,
        rng: random.Random,
        log: logging.Logger,
        summary: RunSummary,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.worker_id = worker_id
        self.policy = policy
        self.rng = rng
        self.log = log
        self.summary = summary
        self._held: set[int] = set()  # job ids claimed and not yet recorded
        self._results: list[Result] = []
        self._arrived = asyncio.Event()  # results are waiting to be written
        self._stopping = asyncio.Event()
        self._writes = asyncio.Lock()
        # One record at a time, so a caller that awaits `record` finds every result written
        # when it returns, not still in another caller's batch.
        self._recording = asyncio.Lock()
        self._last_progress = time.monotonic()

    @property
    def holding(self) -> bool:
        """Whether the run holds jobs whose outcomes are not written yet."""
        return bool(self._held)

    @property
    def renew_every(self) -> float:
        """Real seconds between renewals: a quarter of the lease."""
        return max(RENEW_AT_LEAST_EVERY_S, self.clock.real_seconds(self.lease_seconds) / 4)

    def claimed(self, jobs: Iterable[ClaimedJob]) -> None:
        self._held.update(job.candidate.job_id for job in jobs)

    def finished(self, results: Iterable[Result]) -> None:
        """Hand over results to be written now (the recording side task wakes for them)."""
        self._results.extend(results)
        if self._results:
            self._arrived.set()

    def stop(self) -> None:
        """End the side tasks once their current write is done (never cancel one mid-write:
        what it committed would go uncounted, or be written twice)."""
        self._stopping.set()
        self._arrived.set()

    async def keep_renewing(self) -> None:
        """Side task: renew the held jobs' leases every quarter lease, until stopped."""
        while not await pause(self._stopping, self.renew_every):
            await self.renew()

    async def keep_recording(self) -> None:
        """Side task: write results as they arrive, until stopped (the run records what is
        left itself)."""
        while not self._stopping.is_set():
            await self._arrived.wait()
            self._arrived.clear()
            await self.record()

    async def renew(self) -> None:
        if not self._held:
            return
        until = self.clock.now() + timedelta(seconds=self.lease_seconds)
        held = set(self._held)

        async def once() -> None:
            async with self._writes:  # for each try, not across the waits (see `record`)
                await asyncio.to_thread(
                    queue.extend_leases, self.engine, self.worker_id, held, until
                )

        await retrying_async("renewing leases", once, self.clock, self.log)

    async def record(self) -> None:
        """Write every result so far, in batches."""
        async with self._recording:
            while self._results:
                batch = self._results[:RECORD_BATCH]
                self._results = self._results[RECORD_BATCH:]
                try:
                    recorded = await self._record_batch(batch)
                except Exception:
                    # Back in line for the run's last record on its way out: a lost outcome
                    # would mean a re-send.
                    self._results[:0] = batch
                    raise
                self._count(batch, recorded)
        # Progress at most once a minute: trickling mail must not become a log line per email.
        if time.monotonic() - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = time.monotonic()
            self.log.info(f"progress: {self.summary.metadata()}")

    def _count(self, batch: list[Result], recorded: queue.Recorded) -> None:
        s = self.summary
        s.outcomes.update(recorded.outcomes)
        s.late.update(recorded.late)
        for box in recorded.paused - s.paused_mailboxes:
            # Rare and needing an operator: one line per paused mailbox, in the run's log.
            r = next(r for r in batch if r.job.candidate.mailbox_id == box)
            self.log.warning(f"paused {r.job.sender}, its jobs held: {r.error}")
        s.paused_mailboxes |= recorded.paused
        self._held.difference_update(r.job.candidate.job_id for r in batch)

    async def _record_batch(self, batch: list[Result]) -> queue.Recorded:
        """Write one batch, retrying through a database outage: losing it would mean re-sends.

        The write lock is taken for each try, not across the waits, so the renewals go on
        (and retry) between them.
        """

        async def once() -> queue.Recorded:
            async with self._writes:
                return await asyncio.to_thread(
                    queue.record, self.engine, batch, self.worker_id, self.policy, self.rng
                )

        return await retrying_async("recording outcomes", once, self.clock, self.log)


async def pause(event: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds`, or less if `event` is set meanwhile; returns whether it is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()
