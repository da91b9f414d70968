"""One mailbox's IMAP session of an engagement pass (imapclient, synchronous, in a thread).

`run_pass` logs in (with the password, or XOAUTH2 with an OAuth2 access token; TLS verified
as the mailbox's `Security` says; plaintext only to loopback), finds the folders
(SPECIAL-USE `\\Junk` and `\\Sent`, else the usual names), then:

1. in the spam folder, finds each due message by its Message-ID (`SEARCH HEADER Message-ID`,
   the header checked exactly and the id checked to be a warmup id); the ones found are
   recorded as SPAM (`place`, before anything moves) and moved to the inbox: "not spam";
2. in the inbox, finds each again by Message-ID: the public way to follow a message across a
   move (imapclient returns no COPYUID from MOVE or COPY), so the flags below reach the
   message where it is now; the rest found are recorded as INBOX;
3. marks them `\\Seen`, flags some `\\Flagged`, and moves them into the Warmup folder (created
   when missing); messages not found anywhere are looked for in the Warmup folder too (an
   earlier pass filed them and failed before it could record so);
4. moves the owner's own copies of mail it sent, found by Message-ID in its Sent folder, into
   the Warmup folder as well (a copy not in Sent is looked for in the Warmup folder: an
   earlier pass filed it and died before it could record so);
5. now and then deletes mail in the Warmup folder older than the retention.

MOVE where the server offers it, else COPY, `\\Deleted` and (UID) EXPUNGE. The session never
raises for IMAP or network trouble: a refused login or an untrusted certificate pauses the
mailbox's engagement (`PassOutcome.paused`), anything else ends the pass with `error` and what
was not recorded is done again by the next pass.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from warmup_dagster.core.content import is_warmup_message_id
from warmup_dagster.core.engagement import SENT_NAMES, SPAM_NAMES, find_folder
from warmup_dagster.db.models import Placement, SentCopy
from warmup_dagster.engagement.connection import (
    SESSION_ERRORS,
    Unusable,
    connected,
    find_ids,
    folders,
    session_failure,
    text_of,
)
from warmup_dagster.sending.messages import Account
from warmup_dagster.sending.outcomes import scrubbed

INBOX = "INBOX"


@dataclass(frozen=True)
class Item:
    """A message this mailbox received, to handle: find, rescue, mark, file."""

    engagement_id: int
    message_id: str
    placement: Placement  # PENDING until a pass records where it landed
    flag: bool  # to be flagged (`core.engagement.wants_flag`)


@dataclass(frozen=True)
class Copy:
    """A message this mailbox sent, whose copy in its Sent folder is to be filed."""

    engagement_id: int
    message_id: str


@dataclass(frozen=True)
class Handled:
    """What a pass did to one `Item` it found."""

    placement: Placement
    flagged: bool
    filed: bool


@dataclass
class PassOutcome:
    """What one mailbox's pass did.

    Attributes:
        handled: Engagement id -> what was done, for each item found and handled.
        copies: Engagement id -> FILED or ABSENT, for each copy looked for.
        pruned: Messages deleted from the Warmup folder; None when it was not pruned.
        error: Why the pass ended early (retried next pass); None when it did not.
        paused: Why the mailbox's engagement is to pause (login refused, certificate
            untrusted, unusable settings); None when it is not.
        login_refused: The pause is the server refusing the login (an OAuth2 token that may
            be renewed and tried once more).
    """

    handled: dict[int, Handled] = field(default_factory=dict)
    copies: dict[int, SentCopy] = field(default_factory=dict)
    pruned: int | None = None
    error: str | None = None
    paused: str | None = None
    login_refused: bool = False


def run_pass(
    account: Account,
    items: Sequence[Item],
    copies: Sequence[Copy],
    *,
    token_key: bytes,
    folder: str,
    tls: ssl.SSLContext,
    timeout: float,
    place: Callable[[dict[int, Placement]], None],
    prune_before: date | None = None,
) -> PassOutcome:
    """One IMAP session over one mailbox (see the module docstring).

    Args:
        account: The mailbox's IMAP settings.
        items: Messages it received, due to be handled.
        copies: Messages it sent, whose Sent copies are due to be filed.
        token_key: Checks that each id looked for is a warmup id (`core.content`).
        folder: The Warmup folder's name (`WARMUP_ENGAGE_FOLDER`).
        tls: Client TLS context (certificate and host name verified).
        timeout: Seconds allowed for connecting and for each reply (real time).
        place: Called with engagement id -> placement as soon as they are known, before the
            pass moves anything: a pass that fails later keeps where each message landed.
        prune_before: Delete Warmup mail sent before this day (`SENTBEFORE`); None: no pruning.

    Returns:
        What the pass did; never raises for IMAP or network trouble.
    """
    outcome = PassOutcome()
    where = f"{account.host}:{account.port}"
    try:
        with connected(account, tls, timeout) as client:
            _Session(client, token_key, folder, place, outcome).run(items, copies, prune_before)
    except Unusable as exc:
        outcome.paused = str(exc)
    except LoginError as exc:
        outcome.paused = f"IMAP login refused by {where}: {text_of(exc)}"
        outcome.login_refused = True
    except ssl.SSLCertVerificationError as exc:
        outcome.paused = f"certificate of {where} not trusted: {exc.verify_message or exc}"
    except SESSION_ERRORS as exc:
        outcome.error = session_failure(account, exc)
    # Stored and logged: a server quoting the login back must not put the password there.
    if outcome.paused:
        outcome.paused = scrubbed(outcome.paused, account)
    if outcome.error:
        outcome.error = scrubbed(outcome.error, account)
    return outcome


class _Session:
    """The steps of one logged-in pass, sharing the client and what was found."""

    def __init__(
        self,
        client: IMAPClient,
        token_key: bytes,
        folder: str,
        place: Callable[[dict[int, Placement]], None],
        outcome: PassOutcome,
    ) -> None:
        self.client, self.token_key, self.folder = client, token_key, folder
        self.place, self.outcome = place, outcome
        self.can_move = client.has_capability("MOVE")
        self.uidplus = client.has_capability("UIDPLUS")

    def run(self, items: Sequence[Item], copies: Sequence[Copy], prune_before: date | None) -> None:
        listed = folders(self.client)
        spam = find_folder(listed, b"\\Junk", SPAM_NAMES)
        sent = find_folder(listed, b"\\Sent", SENT_NAMES)
        names = {name.lower() for _, name in listed}
        warmup_exists = self.folder.lower() in names
        items = [i for i in items if is_warmup_message_id(self.token_key, i.message_id)]
        placements = {i.engagement_id: i.placement for i in items}

        if spam is not None and spam.lower() != INBOX.lower() and items:
            in_spam = self._look(spam, Placement.SPAM, items, placements)
            if in_spam:
                self._move(sorted(u for uids in in_spam.values() for u in uids), INBOX)

        if items:
            in_inbox = self._look(INBOX, Placement.INBOX, items, placements)
            found = [i for i in items if i.message_id in in_inbox]
            if found:
                if not warmup_exists:
                    self._create(self.folder)
                    warmup_exists = True
                self._mark(found, in_inbox)
                self._move(sorted(u for i in found for u in in_inbox[i.message_id]), self.folder)
                for i in found:
                    self.outcome.handled[i.engagement_id] = Handled(
                        placements[i.engagement_id], i.flag, True
                    )
            rest = [i for i in items if i.message_id not in in_inbox]
            if rest and warmup_exists:
                # Filed by an earlier pass that failed before recording it.
                self.client.select_folder(self.folder)
                in_warmup = self._find(rest)
                again = [i for i in rest if i.message_id in in_warmup]
                if again:
                    self._mark(again, in_warmup)
                for i in again:
                    placement = placements[i.engagement_id]
                    if placement is Placement.PENDING:
                        placement = Placement.INBOX
                        self.place({i.engagement_id: placement})
                    self.outcome.handled[i.engagement_id] = Handled(placement, i.flag, True)

        for c in copies:
            if not is_warmup_message_id(self.token_key, c.message_id):
                # Never looked for (as for received mail, `record`): ABSENT, so the copy is
                # not due again at every lease, holding its mailbox due for good.
                self.outcome.copies[c.engagement_id] = SentCopy.ABSENT
        copies = [c for c in copies if c.engagement_id not in self.outcome.copies]
        if copies:
            self._file_copies(copies, sent, warmup_exists)
            warmup_exists = warmup_exists or bool(
                [s for s in self.outcome.copies.values() if s is SentCopy.FILED]
            )
        if prune_before is not None and warmup_exists:
            self.client.select_folder(self.folder)
            old = self.client.search(["SENTBEFORE", prune_before])
            if old:
                self._delete(old)
            self.outcome.pruned = len(old)
        elif prune_before is not None:
            self.outcome.pruned = 0

    def _look(
        self,
        folder: str,
        placement: Placement,
        items: Sequence[Item],
        placements: dict[int, Placement],
    ) -> dict[str, list[int]]:
        """Find `items` in `folder` (selected), record `placement` for the ones found that had
        none (at once, before anything moves), and return Message-ID -> UIDs found."""
        self.client.select_folder(folder)
        found = self._find(items)
        new = {
            i.engagement_id: placement
            for i in items
            if i.message_id in found and placements[i.engagement_id] is Placement.PENDING
        }
        if new:
            self.place(new)
            placements.update(new)
        return found

    def _file_copies(self, copies: list[Copy], sent: str | None, warmup_exists: bool) -> None:
        if sent is None:
            for c in copies:
                self.outcome.copies[c.engagement_id] = SentCopy.ABSENT
            return
        self.client.select_folder(sent)
        found = self._find(copies)
        uids = sorted(u for c in copies for u in found.get(c.message_id, ()))
        if uids:
            if not warmup_exists:
                self._create(self.folder)
                warmup_exists = True
            self._move(uids, self.folder)
        rest = [c for c in copies if c.message_id not in found]
        if rest and warmup_exists:
            # Filed by an earlier pass that died or failed before recording it.
            self.client.select_folder(self.folder)
            found |= self._find(rest)
        for c in copies:
            filed = c.message_id in found
            self.outcome.copies[c.engagement_id] = SentCopy.FILED if filed else SentCopy.ABSENT

    def _find(self, wanted: Sequence[Item] | Sequence[Copy]) -> dict[str, list[int]]:
        """Message-ID -> UIDs of `wanted` in the selected folder (`find_ids`)."""
        return find_ids(self.client, [w.message_id for w in wanted])

    def _mark(self, items: Sequence[Item], uids_of: dict[str, list[int]]) -> None:
        every = sorted(u for i in items for u in uids_of[i.message_id])
        self.client.add_flags(every, [b"\\Seen"], silent=True)
        flagged = sorted(u for i in items if i.flag for u in uids_of[i.message_id])
        if flagged:
            self.client.add_flags(flagged, [b"\\Flagged"], silent=True)

    def _move(self, uids: list[int], destination: str) -> None:
        if not uids:
            return
        if self.can_move:
            self.client.move(uids, destination)
            return
        self.client.copy(uids, destination)
        self._delete(uids)

    def _delete(self, uids: list[int]) -> None:
        self.client.add_flags(uids, [b"\\Deleted"], silent=True)
        if self.uidplus:
            self.client.uid_expunge(uids)
        else:
            self.client.expunge()

    def _create(self, name: str) -> None:
        try:
            self.client.create_folder(name)
        except IMAPClientError:
            # Created meanwhile by another client: fine if it is there now.
            if not self.client.folder_exists(name):
                raise
        with contextlib.suppress(IMAPClientError):
            self.client.subscribe_folder(name)


def prune_day(now: datetime, retention_days: float) -> date:
    """The day before which Warmup mail is deleted."""
    return (now - timedelta(days=retention_days)).date()
