"""One sender run's loop: claim due jobs, send them concurrently, record outcomes in batches.

The loop keeps about four batches of SMTP sessions' worth of jobs claimed ahead (never more:
a claimed job is counted in the minute it was claimed, so it must go out within seconds), sends
them with at most `WARMUP_WORKER_CONCURRENCY` sessions at once (one session per mailbox group),
and writes outcomes every half second or every few hundred results. Database work runs in a
thread so sending never waits for it.

A run lives `WARMUP_SENDER_RUN_MAX_SECONDS` of clock time (like every duration setting: at
`WARMUP_CLOCK_SPEED` S it lasts 1/S as long in real time). While the next due job comes within
that lifetime the run waits for it instead of ending and leaving it to a new run; it ends when
nothing is due before its end, finishing what it claimed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import resource
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from warmup_dagster import queue
from warmup_dagster.clock import Clock
from warmup_dagster.core.content import compose
from warmup_dagster.core.delivery import Outcome, RetryPolicy
from warmup_dagster.crypto import Cipher, SecretKeyError
from warmup_dagster.queue import ClaimedJob, Result
from warmup_dagster.sending.smtp import Account, Delivery, Outgoing, send_group, tls_context
from warmup_dagster.settings import Settings

# Results per outcome write, and the longest a result waits to be written.
RECORD_BATCH = 500
RECORD_EVERY_S = 0.5
# How long to wait when the due jobs are locked by another transaction.
BUSY_ROWS_WAIT_S = 1.0
# Tries to write a batch of outcomes (the database busy or failing over) before the run fails.
RECORD_ATTEMPTS = 5
# Seconds between progress lines in the run's log.
PROGRESS_EVERY_S = 60.0
# Claimed-but-unsent jobs a run keeps ahead, in multiples of its concurrency.
AHEAD = 4


@dataclass
class RunSummary:
    """What a sender run did: the run's metadata in the Dagster UI."""

    claims: int = 0
    claimed: int = 0
    reclaimed: int = 0
    deferred: int = 0
    refused: int = 0
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    paused_mailboxes: set[int] = field(default_factory=set)
    seconds: float = 0.0

    def metadata(self) -> dict[str, int | float]:
        return {
            "claimed": self.claimed,
            "sent": self.outcomes[Outcome.SENT],
            "retried": self.outcomes[Outcome.RETRY],
            "failed": self.outcomes[Outcome.FAILED],
            "held (mailbox paused)": self.outcomes[Outcome.PAUSE],
            "mailboxes paused": len(self.paused_mailboxes),
            "reclaimed": self.reclaimed,
            "deferred": self.deferred,
            "refused": self.refused,
            "claims": self.claims,
            "seconds": round(self.seconds, 1),
            # The whole run's process: a sender run executes in one process.
            "peak memory (MB)": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }


class Sender:
    """Drains due jobs for one sender run (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        settings: Settings,
        cipher: Cipher,
        token_key: bytes,
        worker_id: str,
        log: logging.Logger | None = None,
        max_seconds: float | None = None,
        local_hostname: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.settings = settings
        self.cipher = cipher
        self.token_key = token_key
        self.worker_id = worker_id
        self.log = log or logging.getLogger(__name__)
        self.max_seconds = settings.sender_run_max_seconds if max_seconds is None else max_seconds
        self.local_hostname = local_hostname
        self.rng = rng or random.Random()
        self.policy = RetryPolicy(
            max_attempts=settings.send_max_attempts,
            base_seconds=settings.send_retry_base_seconds,
        )
        self.tls = tls_context(settings.smtp_ca_file or None)
        self.summary = RunSummary()
        self._passwords: dict[str, str] = {}
        self._results: list[Result] = []
        self._held: set[int] = set()  # job ids claimed and not yet recorded
        self._last_progress = time.monotonic()
        self._unsent = 0  # jobs claimed and not yet through their SMTP session
        self._candidates = 0  # due jobs the last claim saw
        self._blocked_until: datetime | None = None  # the global cap is full until then

    def run(self) -> RunSummary:
        asyncio.run(self._run())
        return self.summary

    async def _run(self) -> None:
        started = time.monotonic()
        deadline = self.clock.now() + timedelta(seconds=self.max_seconds)
        concurrency = self.settings.worker_concurrency
        sessions = asyncio.Semaphore(concurrency)
        tasks: set[asyncio.Task[None]] = set()
        last_record = last_lease = next_claim = time.monotonic()
        await asyncio.to_thread(queue.prune_counters, self.engine, self.clock.now())
        try:
            while self.clock.now() < deadline:
                room = AHEAD * concurrency - self._unsent
                if room >= concurrency and time.monotonic() >= next_claim:
                    groups = await self._claim(min(room, self.settings.jobs_per_scheduler_run))
                    tasks |= {asyncio.create_task(self._send(g, sessions)) for g in groups}
                    if not groups and not tasks and self._held:
                        # Write the outcomes first: a retry among them may come due soon.
                        await self._record()
                        continue
                    if not groups:
                        if not tasks and not await self._wait_for_due(deadline):
                            break
                        if tasks and (self._blocked_until or not self._candidates):
                            # Nothing due, or the global cap is full: let the sends in flight
                            # go on before taking the claim lock again.
                            next_claim = time.monotonic() + self._pause_before_claim()
                if tasks:
                    done, tasks = await asyncio.wait(
                        tasks, timeout=0.05, return_when=asyncio.FIRST_COMPLETED
                    )
                    for task in done:
                        task.result()  # a bug in sending fails the run loudly
                else:
                    await asyncio.sleep(0.05)
                now = time.monotonic()
                if len(self._results) >= RECORD_BATCH or now - last_record >= RECORD_EVERY_S:
                    await self._record()
                    last_record = now
                if (
                    now - last_lease
                    >= self.clock.real_seconds(self.settings.send_lease_seconds) / 4
                ):
                    await self._extend_leases()
                    last_lease = now
        finally:
            # Finish what was claimed, still renewing its leases: sessions may be queued.
            renew = max(0.05, self.clock.real_seconds(self.settings.send_lease_seconds) / 4)
            while tasks:
                _, tasks = await asyncio.wait(tasks, timeout=renew)
                await self._extend_leases()
            await self._record()
            self.summary.seconds = time.monotonic() - started

    async def _claim(self, limit: int) -> list[list[ClaimedJob]]:
        """Claim a batch; returns it grouped by mailbox (a group shares one SMTP session)."""
        claim = await asyncio.to_thread(
            queue.claim,
            self.engine,
            self.settings,
            self.clock.now,
            self.worker_id,
            limit,
            self.token_key,
        )
        s = self.summary
        s.claims += 1
        s.claimed += len(claim.jobs)
        s.reclaimed += claim.reclaimed
        s.deferred += claim.deferred
        s.refused += claim.refused
        self._blocked_until = claim.blocked_until
        self._candidates = claim.candidates
        self._held.update(job.candidate.job_id for job in claim.jobs)
        self._unsent += len(claim.jobs)
        groups: dict[int, list[ClaimedJob]] = defaultdict(list)
        for job in claim.jobs:
            groups[job.candidate.mailbox_id].append(job)
        return list(groups.values())

    def _pause_before_claim(self) -> float:
        if self._blocked_until is None:
            return RECORD_EVERY_S
        left = (self._blocked_until - self.clock.now()).total_seconds()
        return max(RECORD_EVERY_S, self.clock.real_seconds(left))

    async def _wait_for_due(self, deadline: datetime) -> bool:
        """Nothing was claimed: wait for the next due job if it comes before `deadline` (the
        run's end, clock time); False to stop.

        The wait is at most one dispatch interval at a time, so jobs enqueued meanwhile that are
        due earlier (a new mailbox's plan, another run's retry) are not left waiting.
        """
        if self._candidates and self._blocked_until is None:
            return True  # candidates were deferred or refused: look again at once
        until = self._blocked_until or await asyncio.to_thread(queue.next_due, self.engine)
        now = self.clock.now()
        if until is None or until >= deadline:
            return False
        if until <= now:
            # Due already but not claimable: another transaction (planning) holds those rows.
            await asyncio.sleep(BUSY_ROWS_WAIT_S)
            return True
        poll = timedelta(milliseconds=self.settings.scheduler_interval_ms)
        await asyncio.sleep(self.clock.real_seconds(min(until - now, poll).total_seconds()))
        return True

    async def _send(self, jobs: list[ClaimedJob], sessions: asyncio.Semaphore) -> None:
        messages = [_outgoing(job) for job in jobs]
        try:
            account = self._account(jobs[0])
        except SecretKeyError as exc:
            deliveries = [Delivery(m.job_id, Outcome.PAUSE, None, "", str(exc)) for m in messages]
        else:
            async with sessions:
                deliveries = await send_group(
                    account,
                    messages,
                    date=self.clock.now(),
                    timeout=self.clock.real_seconds(self.settings.smtp_timeout_seconds),
                    tls=self.tls,
                    local_hostname=self.local_hostname,
                )
        self._unsent -= len(jobs)
        at = self.clock.now()
        for job, message, d in zip(jobs, messages, deliveries, strict=True):
            self._results.append(
                Result(job, d.outcome, d.code, d.reply, d.error, at, message.subject, message.body)
            )

    def _account(self, job: ClaimedJob) -> Account:
        host, port, security, username, password_enc = job.smtp
        if password_enc not in self._passwords:
            self._passwords[password_enc] = self.cipher.decrypt(password_enc)
        return Account(
            mailbox_id=job.candidate.mailbox_id,
            host=host,
            port=port,
            security=security,
            username=username,
            password=self._passwords[password_enc],
        )

    async def _record(self) -> None:
        while self._results:
            batch, self._results = self._results[:RECORD_BATCH], self._results[RECORD_BATCH:]
            recorded = await self._record_batch(batch)
            self.summary.outcomes.update(recorded.outcomes)
            for box in recorded.paused - self.summary.paused_mailboxes:
                # Rare and needing an operator: one line per paused mailbox, in the run's log.
                r = next(r for r in batch if r.job.candidate.mailbox_id == box)
                self.log.warning(f"paused {r.job.sender}, its jobs held: {r.error}")
            self.summary.paused_mailboxes |= recorded.paused
            self._held.difference_update(r.job.candidate.job_id for r in batch)
        # Progress at most once a minute: trickling mail must not become a log line per email.
        if time.monotonic() - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = time.monotonic()
            self.log.info(f"progress: {self.summary.metadata()}")

    async def _record_batch(self, batch: list[Result]) -> queue.Recorded:
        """Write one batch, retrying a failed transaction: losing it would mean re-sends."""
        attempt = 1
        while True:
            try:
                return await asyncio.to_thread(
                    queue.record, self.engine, batch, self.worker_id, self.policy, self.rng
                )
            except OperationalError as exc:
                if attempt == RECORD_ATTEMPTS:
                    raise
                self.log.warning(f"recording outcomes failed, retrying: {exc}")
                await asyncio.sleep(2**attempt)
                attempt += 1

    async def _extend_leases(self) -> None:
        if not self._held:
            return
        until = self.clock.now() + timedelta(seconds=self.settings.send_lease_seconds)
        await asyncio.to_thread(
            queue.extend_leases, self.engine, self.worker_id, set(self._held), until
        )


def _outgoing(job: ClaimedJob) -> Outgoing:
    subject, body = job.subject, job.body
    if subject is None or body is None:
        subject, body = compose(job.content_seed, job.sender, job.recipient)
    return Outgoing(
        job_id=job.candidate.job_id,
        sender=job.sender,
        recipient=job.recipient,
        message_id=job.message_id,
        subject=subject,
        body=body,
        in_reply_to=job.in_reply_to,
        references=job.references,
    )
