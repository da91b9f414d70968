"""One sender run: claim due jobs, send them concurrently, record outcomes as they arrive.

The run keeps about four batches of SMTP sessions' worth of jobs claimed ahead (never more:
a claimed job is counted in the minute it was claimed, so it must go out within seconds), sends
them with at most `WARMUP_WORKER_CONCURRENCY` sessions at once (one session per mailbox group),
and writes each outcome as soon as it is known: an accepted message the moment its server said
250, mid-session, batched only with what arrived during the previous write (`upkeep`).
Database work runs in a thread so sending never waits for it.

Three tasks run side by side, supervised together, each named in the run's log if it fails:
the claims (this module), and two side tasks of `upkeep`: lease renewal, every quarter lease,
and outcome recording. A claim may wait seconds for the claim lock when claims are slow; the
side tasks never take it, so the jobs the run holds keep their leases and their outcomes are
written meanwhile. A failing side task fails the run. Whatever ends the run, it finishes what
it claimed first: every session ends (its lease still renewed) and every outcome is recorded.

A job taken over from a run that died holding it may have been delivered already: before it
is sent again its Message-ID is looked for over IMAP in the recipient's mailbox
(`WARMUP_RECLAIM_IMAP_CHECK`, `reclaim`; docs/RELIABILITY.md, crash safety).

A run lives `WARMUP_SENDER_RUN_MAX_SECONDS` of clock time (like every duration setting: at
`WARMUP_CLOCK_SPEED` S it lasts 1/S as long in real time). While the next due job comes within
that lifetime the run waits for it instead of ending and leaving it to a new run; it ends when
nothing is due before its end, finishing what it claimed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy.engine import Engine

from warmup_dagster import queue
from warmup_dagster.clock import Clock
from warmup_dagster.core.delivery import AUTH_CODES, Outcome, RetryPolicy
from warmup_dagster.crypto import Cipher, SecretKeyError
from warmup_dagster.oauth.tokens import TokenRefused, TokenStore, TokenUnavailable
from warmup_dagster.queue import Claim, ClaimedJob, Result
from warmup_dagster.sending.group import compose_group, unable, with_note
from warmup_dagster.sending.reclaim import Looked, ReclaimCheck
from warmup_dagster.sending.retry import retrying
from warmup_dagster.sending.smtp import Account, Delivery, Outgoing, send_group, tls_context
from warmup_dagster.sending.stopping import stop_on_signals
from warmup_dagster.sending.summary import RunSummary
from warmup_dagster.sending.upkeep import Upkeep, pause
from warmup_dagster.settings import Settings

__all__ = ["RunSummary", "Sender"]

# How long to wait when the due jobs are locked by another transaction.
BUSY_ROWS_WAIT_S = 1.0
# Claimed-but-unsent jobs a run keeps ahead, in multiples of its concurrency.
AHEAD = 4
# The claim loop's beat (real seconds) while it has no room to claim; a finished send wakes it.
TICK_S = 0.05
# How long (real seconds) the claim loop lets sends go on when nothing was claimable.
IDLE_CLAIM_PAUSE_S = 0.5


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
        self.tokens = TokenStore(engine, clock, settings, cipher)
        self._check = None
        if settings.reclaim_imap_check:
            imap_tls = tls_context(settings.imap_ca_file or settings.smtp_ca_file or None)
            self._check = ReclaimCheck(
                engine, clock, settings, cipher, self.tokens, imap_tls, self.log
            )
        self.summary = RunSummary()
        self._passwords: dict[str, str] = {}
        self._sends: set[asyncio.Task[None]] = set()
        self._unsent = 0  # jobs claimed and not yet through their SMTP session
        self._candidates = 0  # due jobs the last claim saw
        self._blocked_until: datetime | None = None  # the global cap is full until then
        self._claim_started: datetime | None = None  # the clock before the last claim began
        self._real_end = 0.0  # the run's end in real time (`time.monotonic`), set at its start

    def run(self) -> RunSummary:
        asyncio.run(self._run())
        return self.summary

    async def _run(self) -> None:
        started = time.monotonic()
        deadline = self.clock.now() + timedelta(seconds=self.max_seconds)
        # A clock that stands still (a test's FixedClock) must not keep a run alive forever: the
        # lifetime in real time at the clock's speed bounds it too (for the real and the scaled
        # clock the two ends are the same moment).
        self._real_end = started + self.clock.real_seconds(self.max_seconds)
        # Made in the run's event loop: they belong to it.
        self._sessions = asyncio.Semaphore(self.settings.worker_concurrency)
        self._sent_one = asyncio.Event()
        self._stop_claiming = asyncio.Event()
        self._upkeep = Upkeep(
            self.engine,
            self.clock,
            self.settings.send_lease_seconds,
            self.worker_id,
            self.policy,
            self.rng,
            self.log,
            self.summary,
        )
        await retrying(
            "pruning counters",
            lambda: queue.prune_counters(self.engine, self.clock.now()),
            self.clock,
            self.log,
        )
        claims = asyncio.create_task(self._claims(deadline), name="claims")
        sides = [
            asyncio.create_task(self._upkeep.keep_renewing(), name="lease renewal"),
            asyncio.create_task(self._upkeep.keep_recording(), name="outcome recording"),
        ]
        # SIGTERM or SIGINT until the end: stop claiming, finish the rest (`stopping`).
        with stop_on_signals(asyncio.get_running_loop(), self._stop):
            try:
                # The claims end when the run is done; a side task ends only by failing.
                await asyncio.wait([claims, *sides], return_when=asyncio.FIRST_COMPLETED)
            finally:
                failed = await self._finish(claims, sides)
                self.summary.seconds = time.monotonic() - started
                if warning := self.summary.late_warning():
                    self.log.warning(warning)  # once per run: each late row is in the send log
        if failed:
            raise failed[0].exception()

    def _stop(self, reason: str) -> None:
        """Asked to stop (a signal, `stopping`): claim nothing more, finish what is claimed."""
        if not self._stop_claiming.is_set():
            self.summary.stopped_by = reason
            self.log.warning(
                f"sender {self.worker_id}: {reason}, claiming no more; finishing the "
                f"{self._unsent} jobs claimed and not sent yet"
            )
        self._stop_claiming.set()

    async def _finish(
        self, claims: asyncio.Task[None], sides: list[asyncio.Task[None]]
    ) -> list[asyncio.Task[None]]:
        """Stop claiming, let every claimed job's session end while the side tasks renew and
        record, stop them and record the rest; returns the tasks that failed, each named in
        the log.

        Nothing is cancelled: a claim in progress completes and its jobs are sent, a write in
        progress commits and is counted.
        """
        self._stop_claiming.set()
        await asyncio.wait([claims])
        if self._sends:
            await asyncio.wait(self._sends)
        self._upkeep.stop()
        await asyncio.wait(sides)
        # Every failure is read here, before the last record (which may fail the same way):
        # asyncio logs an exception nobody read whenever its task is collected, in whatever
        # code runs then.
        tasks = [claims, *sides, *self._sends]
        failed = [t for t in tasks if not t.cancelled() and t.exception() is not None]
        for name in dict.fromkeys(t.get_name() for t in failed):
            same = [t for t in failed if t.get_name() == name]
            self.log.error(
                f"sender {self.worker_id}: its {name} failed"
                + (f" ({len(same)} tasks)" if len(same) > 1 else "")
                + f": {same[0].exception()!r}"
            )
        await self._upkeep.record()
        return failed

    async def _claims(self, deadline: datetime) -> None:
        """Claim while there is room and work, until nothing is due before `deadline`."""
        concurrency = self.settings.worker_concurrency
        next_claim = time.monotonic()
        while (
            self.clock.now() < deadline
            and time.monotonic() < self._real_end
            and not self._stop_claiming.is_set()
        ):
            if self._reap():
                return  # a bug in sending fails the run loudly, once what is claimed is done
            self._sent_one.clear()
            room = AHEAD * concurrency - self._unsent
            if room >= concurrency and time.monotonic() >= next_claim:
                claimed = await self._claim(min(room, self.settings.jobs_per_scheduler_run))
                if not claimed and not self._sends:
                    if self._upkeep.holding:
                        # Write the outcomes first: a retry among them may come due soon.
                        await self._upkeep.record()
                        continue
                    if not await self._wait_for_due(deadline):
                        break
                elif not claimed and (self._blocked_until or not self._candidates):
                    # Nothing due, or the global cap is full: let the sends in flight go on
                    # before taking the claim lock again.
                    next_claim = time.monotonic() + self._pause_before_claim()
            await pause(self._sent_one, TICK_S)

    def _reap(self) -> bool:
        """Forget the sends that ended well; True if one failed (a bug: `_finish` reports it)."""
        done = {task for task in self._sends if task.done()}
        failed = {task for task in done if task.cancelled() or task.exception() is not None}
        self._sends -= done - failed
        return bool(failed)

    async def _claim(self, limit: int) -> bool:
        """Claim a batch and start its sends; returns whether anything was claimed."""
        # A claim that failed rolled back: trying again claims nothing twice.
        self._claim_started = self.clock.now()  # the claim reads its own now at or after this
        claim = await retrying(
            "claiming jobs",
            partial(
                queue.claim,
                self.engine,
                self.settings,
                self.clock.now,
                self.worker_id,
                limit,
                self.token_key,
            ),
            self.clock,
            self.log,
        )
        # Which of the claimed mailboxes sign in with OAuth2: one query for those not known yet.
        boxes = {job.candidate.mailbox_id for job in claim.jobs}
        await retrying(
            "reading sign-in methods", lambda: self.tokens.prefetch(boxes), self.clock, self.log
        )
        self._start(claim)
        return bool(claim.jobs)

    def _start(self, claim: Claim) -> None:
        """Count a claim and start its sends, by mailbox (a group shares one SMTP session)."""
        s = self.summary
        s.claims += 1
        s.claimed += len(claim.jobs)
        s.reclaimed += claim.reclaimed
        s.deferred += claim.deferred
        s.refused += claim.refused
        self._blocked_until = claim.blocked_until
        self._candidates = claim.candidates
        self._upkeep.claimed(claim.jobs)
        self._unsent += len(claim.jobs)
        groups: dict[int, list[ClaimedJob]] = defaultdict(list)
        for job in claim.jobs:
            groups[job.candidate.mailbox_id].append(job)
        for group in groups.values():
            self._sends.add(asyncio.create_task(self._send(group), name="sending"))

    def _pause_before_claim(self) -> float:
        if self._blocked_until is None:
            return IDLE_CLAIM_PAUSE_S
        left = (self._blocked_until - self.clock.now()).total_seconds()
        return max(IDLE_CLAIM_PAUSE_S, self.clock.real_seconds(left))

    async def _wait_for_due(self, deadline: datetime) -> bool:
        """Nothing was claimed: wait for the next due job if it comes before `deadline` (the
        run's end, clock time); False to stop.

        The wait is at most one dispatch interval at a time, so jobs enqueued meanwhile that are
        due earlier (a new mailbox's plan, another run's retry) are not left waiting.
        """
        if self._candidates and self._blocked_until is None:
            return True  # candidates were deferred or refused: look again at once
        until = self._blocked_until or await retrying(
            "reading the next due job", partial(queue.next_due, self.engine), self.clock, self.log
        )
        now = self.clock.now()
        if until is None or until >= deadline:
            return False
        if until <= now:
            if self._claim_started is None or until > self._claim_started:
                # It came due after the last claim read its now: claim again at once. (Taken
                # for locked rows, it waited BUSY_ROWS_WAIT_S of real time, two clock minutes
                # at 120x, while the run polled every few milliseconds.)
                return True
            # Due already when the claim looked, but not claimable: another transaction
            # (planning) holds those rows.
            return not await pause(self._stop_claiming, BUSY_ROWS_WAIT_S)
        poll = timedelta(milliseconds=self.settings.scheduler_interval_ms)
        wait = self.clock.real_seconds(min(until - now, poll).total_seconds())
        if time.monotonic() + wait >= self._real_end:
            return False
        return not await pause(self._stop_claiming, wait)

    async def _send(self, jobs: list[ClaimedJob]) -> None:
        """Send one mailbox's group and hand each outcome to the upkeep as soon as it is known.

        A job taken over from a dead run is first looked for in its recipient's mailbox
        (`reclaim`); found, it is recorded SENT and not sent again.
        """
        handed: set[int] = set()  # job ids whose result went to the upkeep already
        by_id = {job.candidate.job_id: job for job in jobs}
        outgoing: dict[int, Outgoing] = {}
        looked = Looked()

        def hand(deliveries: list[Delivery]) -> None:
            at = self.clock.now()
            results = []
            for d in deliveries:
                if d.job_id in handed:
                    continue
                handed.add(d.job_id)
                job, m = by_id[d.job_id], outgoing[d.job_id]
                error = with_note(d.error, looked.notes.get(d.job_id))
                results.append(
                    Result(job, d.outcome, d.code, d.reply, error, at, m.subject, m.body)
                )
            self._upkeep.finished(results)

        if self._check is not None and (taken := [j for j in jobs if j.possibly_delivered]):
            # A run died holding it (now or before a deferral), perhaps after the server took
            # the message: look first.
            looked = await asyncio.to_thread(self._check.check, taken)
            if looked.found:
                jobs = self._found(jobs, looked, outgoing, hand)
                if not jobs:
                    return

        try:
            account, fresh = await self._account(jobs[0])
        except (SecretKeyError, TokenRefused, TokenUnavailable) as exc:
            _, messages = compose_group(jobs, self.clock.now())
            outgoing.update((m.job_id, m) for m in messages)
            deliveries = unable(exc, messages)
        else:
            async with self._sessions:
                # Composed when the session starts, for the moment the Date header gives.
                date, messages = compose_group(jobs, self.clock.now())
                outgoing.update((m.job_id, m) for m in messages)
                # Each accepted message is written while the session goes on: a run killed
                # mid-session keeps the SENT of what went out before.
                deliveries = await self._deliver(
                    account, fresh, messages, date, lambda d: hand([d])
                )
        self._unsent -= len(jobs)
        hand(deliveries)
        self._sent_one.set()

    def _found(
        self,
        jobs: list[ClaimedJob],
        looked: Looked,
        outgoing: dict[int, Outgoing],
        hand: Callable[[list[Delivery]], None],
    ) -> list[ClaimedJob]:
        """Record the jobs whose message was found delivered as SENT, without sending; returns
        the group's other jobs, to send."""
        found = [j for j in jobs if j.candidate.job_id in looked.found]
        _, messages = compose_group(found, self.clock.now())
        outgoing.update((m.job_id, m) for m in messages)
        hand([Delivery(m.job_id, Outcome.SENT, None, "", looked.found[m.job_id]) for m in messages])
        self.summary.found_delivered += len(found)
        self._unsent -= len(found)
        self._sent_one.set()
        return [j for j in jobs if j.candidate.job_id not in looked.found]

    async def _deliver(
        self,
        account: Account,
        fresh: bool,
        messages: list[Outgoing],
        date: datetime,
        delivered: Callable[[Delivery], None],
    ) -> list[Delivery]:
        """One SMTP session for the group; an OAuth2 token the server refused although it was
        not expired yet (revoked early) is renewed once and the session tried again.
        `delivered` gets each accepted message's delivery at once (`smtp.send_group`)."""
        session = partial(
            send_group,
            messages=messages,
            date=date,
            timeout=self.clock.real_seconds(self.settings.smtp_timeout_seconds),
            tls=self.tls,
            local_hostname=self.local_hostname,
            delivered=delivered,
        )
        deliveries = await session(account)
        refused = all(d.outcome is Outcome.PAUSE and d.code in AUTH_CODES for d in deliveries)
        if not (account.xoauth2 and not fresh and refused):
            return deliveries
        try:
            login = await asyncio.to_thread(self.tokens.renew, account.mailbox_id, account.password)
        except (TokenRefused, TokenUnavailable) as exc:
            return unable(exc, messages)
        return await session(replace(account, password=login.token))

    async def _account(self, job: ClaimedJob) -> tuple[Account, bool]:
        """The group's SMTP account: its password, or its OAuth2 access token (XOAUTH2), and
        whether that token was just refreshed."""
        host, port, security, username, password_enc = job.smtp
        box_id = job.candidate.mailbox_id
        login = None
        if not self.tokens.uses_password(box_id):
            login = await asyncio.to_thread(self.tokens.login, box_id)
        if login is None and password_enc not in self._passwords:
            self._passwords[password_enc] = self.cipher.decrypt(password_enc)
        account = Account(
            mailbox_id=box_id,
            host=host,
            port=port,
            security=security,
            username=username,
            password=self._passwords[password_enc] if login is None else login.token,
            xoauth2=login is not None,
        )
        return account, login is not None and login.fresh
