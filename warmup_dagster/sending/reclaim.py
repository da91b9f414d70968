"""Looking before sending again: is a reclaimed job's message in its recipient's mailbox?

A job is reclaimed when the run that held it stopped renewing its lease: it died (killed, out
of memory, its machine lost), perhaps after its server accepted the message and before the run
wrote so. Sending it again would then give the recipient a second copy with the same
Message-ID. The recipients of warmup mail are the pool's own mailboxes, so the sender can look:
over IMAP (`engagement.connection`, the engagement passes' login and search), in the
recipient's INBOX, its spam folder (SPECIAL-USE `\\Junk`, else the usual names) and the Warmup
folder (`WARMUP_ENGAGE_FOLDER`, where an engagement pass may have filed it already), every
folder opened read-only.

Found: the job is recorded SENT without sending. Not found, no pool mailbox to look in, or the
look failed (the recipient's IMAP down, its login refused): the job is sent again, and the note
of why goes with its outcome into the send log and the run's log. A look that fails never
holds a job back: a second copy is the lesser harm than mail that never goes.

`WARMUP_RECLAIM_IMAP_CHECK` turns the look off (then every reclaimed job is sent again).
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field
from typing import Any

from imapclient.exceptions import LoginError
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from warmup_dagster.clock import Clock
from warmup_dagster.core.engagement import SPAM_NAMES, find_folder
from warmup_dagster.crypto import Cipher, SecretKeyError
from warmup_dagster.db.models import Mailbox, WarmupJob
from warmup_dagster.engagement.connection import (
    SESSION_ERRORS,
    Unusable,
    connected,
    find_ids,
    folders,
    imap_account,
    session_failure,
    text_of,
)
from warmup_dagster.oauth.tokens import TokenRefused, TokenStore, TokenUnavailable
from warmup_dagster.queue import ClaimedJob
from warmup_dagster.sending.messages import Account
from warmup_dagster.sending.outcomes import scrubbed
from warmup_dagster.settings import Settings

INBOX = "INBOX"


@dataclass
class Looked:
    """What looking for reclaimed jobs' messages found.

    Attributes:
        found: Job id -> the sentence recording where its message was found (not sent again).
        notes: Job id -> why it is sent again (not found, nothing to look in, look failed).
    """

    found: dict[int, str] = field(default_factory=dict)
    notes: dict[int, str] = field(default_factory=dict)


class ReclaimCheck:
    """Looks for reclaimed jobs' messages in their recipients' mailboxes (module docstring)."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        settings: Settings,
        cipher: Cipher,
        tokens: TokenStore,
        tls: ssl.SSLContext,
        log: logging.Logger,
    ) -> None:
        self.engine, self.clock, self.settings = engine, clock, settings
        self.cipher, self.tokens, self.tls, self.log = cipher, tokens, tls, log

    def check(self, jobs: list[ClaimedJob]) -> Looked:
        """Look for each job's message (synchronous: run it in a thread); never raises for
        IMAP, network, sign-in or database trouble (each is a look that failed)."""
        looked = Looked()
        try:
            boxes = self._recipients([job.candidate.job_id for job in jobs])
        except OperationalError as exc:
            # The database is busy or failing over: sending again beats holding the jobs.
            for job in jobs:
                looked.notes[job.candidate.job_id] = (
                    f"reclaimed; its recipient's mailbox could not be read ({exc.orig}): sent again"
                )
            boxes = {}
        by_box: dict[int, list[ClaimedJob]] = {}
        for job in jobs:
            box = boxes.get(job.candidate.job_id)
            if box is not None:
                by_box.setdefault(box.id, []).append(job)
            elif job.candidate.job_id not in looked.notes:
                looked.notes[job.candidate.job_id] = (
                    f"reclaimed; {job.recipient} is no pool mailbox, nothing to look in over "
                    "IMAP: sent again"
                )
        for box_jobs in by_box.values():
            self._look(boxes[box_jobs[0].candidate.job_id], box_jobs, looked)
        for job in jobs:
            job_id = job.candidate.job_id
            what = looked.found.get(job_id) or looked.notes[job_id]
            self.log.info(f"job {job_id} {job.message_id} to {job.recipient}: {what}")
        return looked

    def _recipients(self, job_ids: list[int]) -> dict[int, Any]:
        """Job id -> its recipient mailbox's IMAP settings, for the jobs sent to the pool."""
        box = Mailbox.__table__.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    WarmupJob.id.label("job_id"),
                    box.id,
                    box.email,
                    box.imap_host,
                    box.imap_port,
                    box.imap_security,
                    box.imap_username,
                    box.imap_password_enc,
                )
                .join(Mailbox, Mailbox.id == WarmupJob.recipient_mailbox_id)
                .where(WarmupJob.id.in_(job_ids))
            )
            return {r.job_id: r for r in rows}

    def _look(self, box: Any, jobs: list[ClaimedJob], looked: Looked) -> None:
        ids = {job.message_id for job in jobs}
        account: Account | None = None
        try:
            account = self._account(box)
            where = self._find(account, ids)
        except (SecretKeyError, TokenRefused, TokenUnavailable, Unusable) as exc:
            failure = f"{box.email} can't sign in: {exc}"
        except LoginError as exc:
            failure = f"IMAP login refused: {text_of(exc)}"
        except (ssl.SSLError, *SESSION_ERRORS) as exc:
            assert account is not None  # only the session raises these
            failure = session_failure(account, exc)
        else:
            for job in jobs:
                folder = where.get(job.message_id)
                if folder is None:
                    looked.notes[job.candidate.job_id] = (
                        f"reclaimed; looked over IMAP in {box.email}'s mailbox first, "
                        "not found: sent again"
                    )
                else:
                    looked.found[job.candidate.job_id] = (
                        f"reclaimed; found over IMAP in {box.email}'s {folder}: its abandoned "
                        "attempt had delivered it, not sent again"
                    )
            return
        if account is not None:
            failure = scrubbed(failure, account)
        for job in jobs:
            looked.notes[job.candidate.job_id] = (
                f"reclaimed; the IMAP look in {box.email}'s mailbox failed ({failure}): sent again"
            )

    def _account(self, box: Any) -> Account:
        return imap_account(box, self.cipher, self.tokens.login(box.id))

    def _find(self, account: Account, ids: set[str]) -> dict[str, str]:
        """Message-ID -> the folder it was found in, looking in INBOX, spam, then Warmup."""
        timeout = self.clock.real_seconds(self.settings.imap_timeout_seconds)
        where: dict[str, str] = {}
        with connected(account, self.tls, timeout) as client:
            listed = folders(client)
            names = {name.lower(): name for _, name in listed}
            spam = find_folder(listed, b"\\Junk", SPAM_NAMES)
            warmup = names.get(self.settings.engage_folder.lower())
            for folder in dict.fromkeys(f for f in (INBOX, spam, warmup) if f is not None):
                left = ids - set(where)
                if not left:
                    break
                client.select_folder(folder, readonly=True)
                where.update(dict.fromkeys(find_ids(client, left), folder))
        return where
