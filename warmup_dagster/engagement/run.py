"""One engagement run: lease due mailboxes, one IMAP session each in a bounded thread pool,
record what each session did and queue the replies.

A run takes in new deliveries (`intake`), then leases up to `WARMUP_ENGAGE_MAILBOXES_PER_RUN`
due mailboxes (`mailboxes.lease`) and works them with at most `WARMUP_ENGAGE_CONCURRENCY`
sessions at once, leasing more while time is left, until none is due or the run's lease time
is spent. Each mailbox's pass is recorded in its own short transaction right after its session
(`record.record_pass`): a failing mailbox fails alone, its lease given back, and is tried
again by a later pass.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from warmup_dagster.clock import Clock
from warmup_dagster.core.engagement import wants_flag
from warmup_dagster.crypto import Cipher, SecretKeyError
from warmup_dagster.db.models import Engagement, Mailbox, Placement, SentCopy
from warmup_dagster.engagement import intake, mailboxes, record
from warmup_dagster.engagement.connection import imap_account
from warmup_dagster.engagement.imap import Copy, Item, PassOutcome, prune_day, run_pass
from warmup_dagster.oauth.tokens import TokenRefused, TokenStore, TokenUnavailable
from warmup_dagster.sending.messages import Account
from warmup_dagster.sending.smtp import tls_context
from warmup_dagster.settings import Settings

# Messages handled per mailbox and pass at most; more wait for the next pass.
PER_PASS = 2_000
# How often a mailbox's Warmup folder is pruned (clock time).
PRUNE_EVERY = timedelta(days=1)


@dataclass
class EngageSummary:
    """What an engagement run did: its metadata in the Dagster UI."""

    mailboxes: int = 0
    taken_in: int = 0
    placements: Counter[str] = field(default_factory=Counter)
    flagged: int = 0
    filed: int = 0
    replies: int = 0
    copies_filed: int = 0
    pruned: int = 0
    failed_mailboxes: int = 0
    paused_mailboxes: int = 0
    seconds: float = 0.0

    def metadata(self) -> dict[str, int | float]:
        return {
            "mailboxes": self.mailboxes,
            "taken in": self.taken_in,
            "inbox": self.placements[Placement.INBOX.name],
            "spam (rescued)": self.placements[Placement.SPAM.name],
            "not found": self.placements[Placement.NOT_FOUND.name],
            "flagged": self.flagged,
            "filed": self.filed,
            "replies queued": self.replies,
            "sent copies filed": self.copies_filed,
            "pruned": self.pruned,
            "mailboxes failed": self.failed_mailboxes,
            "mailboxes paused": self.paused_mailboxes,
            "seconds": round(self.seconds, 1),
        }


class Engager:
    """Runs engagement passes for one Dagster run (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        settings: Settings,
        cipher: Cipher,
        token_key: bytes,
        worker_id: str,
        log: logging.Logger | None = None,
    ) -> None:
        self.engine, self.clock, self.settings = engine, clock, settings
        self.cipher, self.token_key, self.worker_id = cipher, token_key, worker_id
        self.log = log or logging.getLogger(__name__)
        self.tls = tls_context(settings.imap_ca_file or settings.smtp_ca_file or None)
        self.tokens = TokenStore(engine, clock, settings, cipher)
        self.summary = EngageSummary()

    def run(self) -> EngageSummary:
        started = time.monotonic()
        s = self.settings
        self.summary.taken_in = intake.take_in(self.engine, s, self.clock.now())
        # The run ends before its leases could run out.
        real_end = started + self.clock.real_seconds(s.engage_lease_seconds / 2)
        with ThreadPoolExecutor(s.engage_concurrency, thread_name_prefix="imap") as pool:
            running: set[Future[None]] = set()
            leased: deque[int] = deque()
            while True:
                room = s.engage_mailboxes_per_run - self.summary.mailboxes
                # Leased a session's worth at a time, not one per finished session: each
                # lease looks for the due mailboxes (a grouped query) under the lease lock.
                if not leased and room > 0 and time.monotonic() < real_end:
                    ids = mailboxes.lease(
                        self.engine,
                        self.clock.now(),
                        min(room, s.engage_concurrency),
                        self.worker_id,
                        s.engage_lease_seconds,
                        timedelta(minutes=s.engage_recheck_minutes),
                    )
                    self.summary.mailboxes += len(ids)
                    leased.extend(ids)
                    if not ids and not running:
                        break
                while leased and len(running) < s.engage_concurrency:
                    running.add(pool.submit(self._pass, leased.popleft()))
                if not running:
                    break
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()  # a bug fails the run loudly
        self.summary.seconds = time.monotonic() - started
        return self.summary

    def _pass(self, box_id: int) -> None:
        s, now = self.settings, self.clock.now()
        with self.engine.connect() as conn:
            box = conn.execute(select(Mailbox.__table__).where(Mailbox.id == box_id)).one()
            due = conn.execute(
                select(Engagement.__table__)
                .where(
                    Engagement.recipient_mailbox_id == box_id,
                    Engagement.done.is_(False),
                    Engagement.due_at <= now,
                )
                .order_by(Engagement.due_at)
                .limit(PER_PASS)
            ).all()
            own = conn.execute(
                select(Engagement.id, Engagement.message_id)
                .where(
                    Engagement.sender_mailbox_id == box_id,
                    Engagement.sent_copy == SentCopy.PENDING,
                    Engagement.due_at <= now,
                )
                .order_by(Engagement.due_at)
                .limit(PER_PASS)
            ).all()
            last_pruned = mailboxes.pruned_at(conn, box_id)
        items = [
            Item(e.id, e.message_id, e.placement, wants_flag(e.message_id, s.engage_flag_rate))
            for e in due
        ]
        copies = [Copy(i, m) for i, m in own]
        prune = last_pruned is None or now - last_pruned >= PRUNE_EVERY
        try:
            account, fresh = self._account(box)
        except (SecretKeyError, TokenRefused) as exc:
            why = (
                str(exc) if isinstance(exc, TokenRefused) else f"IMAP password not readable: {exc}"
            )
            record.record_failure(self.engine, box_id, self.worker_id, now, paused=why)
            self.summary.paused_mailboxes += 1
            return
        except TokenUnavailable as exc:
            # The provider is down for now: the pass fails and its messages are rechecked.
            outcome = PassOutcome(error=str(exc))
        else:

            def session(account: Account) -> PassOutcome:
                return run_pass(
                    account,
                    items,
                    copies,
                    token_key=self.token_key,
                    folder=s.engage_folder,
                    tls=self.tls,
                    timeout=self.clock.real_seconds(s.imap_timeout_seconds),
                    place=lambda placements: record.record_placements(
                        self.engine, placements, self.clock.now()
                    ),
                    prune_before=prune_day(now, s.engage_retention_days) if prune else None,
                )

            outcome = session(account)
            if outcome.login_refused and account.xoauth2 and not fresh:
                # A token the cache still held, refused (revoked early): renewed, tried once.
                outcome = self._renewed(account, session)
        if outcome.paused:
            self.log.warning(f"engagement of {box.email} paused: {outcome.paused}")
            self.summary.paused_mailboxes += 1
        elif outcome.error:
            self.log.warning(f"engagement pass of {box.email} failed: {outcome.error}")
            self.summary.failed_mailboxes += 1
        written = record.record_pass(
            self.engine,
            self.clock.now(),
            self.settings,
            self.token_key,
            box,
            due,
            outcome,
            self.worker_id,
        )
        self.summary.placements.update(written.placements)
        self.summary.flagged += written.flagged
        self.summary.filed += written.filed
        self.summary.replies += written.replies
        self.summary.copies_filed += written.copies_filed
        self.summary.pruned += outcome.pruned or 0

    def _account(self, box: Any) -> tuple[Account, bool]:
        """The mailbox's IMAP account: its password, or its OAuth2 access token (XOAUTH2),
        and whether that token was just refreshed.

        Raises:
            SecretKeyError, TokenRefused, TokenUnavailable: it can't sign in (now).
        """
        login = self.tokens.login(box.id)
        return imap_account(box, self.cipher, login), login is not None and login.fresh

    def _renewed(self, account: Account, session: Callable[[Account], PassOutcome]) -> PassOutcome:
        try:
            login = self.tokens.renew(account.mailbox_id, account.password)
        except TokenRefused as exc:
            return PassOutcome(paused=str(exc))
        except TokenUnavailable as exc:
            return PassOutcome(error=str(exc))
        return session(replace(account, password=login.token))
