"""The folders an engagement pass works in, against real Dovecot on both databases: the spam
folder found by its usual name when the server marks none with SPECIAL-USE, and the Warmup
folder pruned of mail older than the retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from warmup_dagster.clock import FixedClock
from warmup_dagster.core.engagement import SPAM_NAMES, find_folder
from warmup_dagster.db.models import Placement
from warmup_dagster.engagement.connection import folders
from warmup_dagster.sending.messages import Outgoing, build_message
from warmup_dagster.testing.imap_server import DovecotServer
from warmup_dagster_tests.engagement.conftest import engage_settings
from warmup_dagster_tests.engagement.test_faults import (
    NINE,
    box_state,
    deliver,
    engage,
    rows,
    two_boxes,
)

RCPT = "rcpt@r.example"


@pytest.mark.parametrize("name", ["Junk", "Spam", "[Gmail]/Spam"])
def test_a_spam_folder_without_special_use_is_found_by_its_usual_name(engine, cipher, cert, name):
    """Dovecot without the SPECIAL-USE Junk folder; the mailbox has a folder of that name made
    by the owner (no flag): it is the spam folder, and mail in it is rescued from it."""
    settings = engage_settings(cert)
    with DovecotServer(junk=False) as dovecot:
        sender, recipient = two_boxes(engine, cipher, dovecot)
        imap = dovecot.client(RCPT)
        try:
            imap.create_folder(name)
            listed = folders(imap)
        finally:
            imap.logout()
        flags = {n: f for f, n in listed}
        assert name in flags and not any(f.lower() == b"\\junk" for f in flags[name])
        assert find_folder(listed, b"\\Junk", SPAM_NAMES) == name

        (in_spam,) = deliver(engine, dovecot, sender, recipient, name)
        (in_inbox,) = deliver(engine, dovecot, sender, recipient, "INBOX")
        assert [m.message_id for m in dovecot.messages(RCPT, name)] == [in_spam]
        summary = engage(engine, FixedClock(NINE + timedelta(minutes=10)), settings, cipher)
        assert summary.failed_mailboxes == 0 and summary.paused_mailboxes == 0
        assert dovecot.messages(RCPT, name) == []
        filed = {m.message_id for m in dovecot.messages(RCPT, "Warmup")}
        assert filed == {in_spam, in_inbox}
    found = rows(engine)
    assert found[in_spam].placement is Placement.SPAM and found[in_spam].filed
    assert found[in_inbox].placement is Placement.INBOX


def _warmup_mail(dovecot: DovecotServer, sent: dict[str, datetime]) -> None:
    """Messages already in the recipient's Warmup folder, each with its Date header."""
    for message_id, at in sent.items():
        raw = build_message(
            Outgoing(0, "sender@s.example", RCPT, message_id, "earlier", "hi"), at
        ).as_bytes()
        dovecot.append(RCPT, "Warmup", raw, flags=("\\Seen",))


def _in_warmup(dovecot: DovecotServer) -> set[str]:
    return {m.message_id for m in dovecot.messages(RCPT, "Warmup")}


def test_the_warmup_folder_is_pruned_of_mail_older_than_the_retention_once_a_day(
    engine, cipher, cert
):
    """With 14 days' retention on 2 March, mail dated before 16 February goes and the rest
    stays; the next pass that day prunes nothing, the first one a day later moves the line."""
    settings = engage_settings(cert)
    assert settings.engage_retention_days == 14
    day = lambda d: datetime(2026, 2, d, 12, 0, tzinfo=UTC)  # noqa: E731
    with DovecotServer() as dovecot:
        sender, recipient = two_boxes(engine, cipher, dovecot)
        imap = dovecot.client(RCPT)
        try:
            imap.create_folder("Warmup")
        finally:
            imap.logout()
        _warmup_mail(
            dovecot,
            {
                "<feb10@s.example>": day(10),
                "<feb15@s.example>": day(15),  # a day past the retention
                "<feb16@s.example>": day(16),  # on its line: kept
                "<mar01@s.example>": datetime(2026, 3, 1, 23, 0, tzinfo=UTC),
            },
        )
        (new,) = deliver(engine, dovecot, sender, recipient)  # work due, so a pass runs
        clock = FixedClock(NINE + timedelta(minutes=10))
        summary = engage(engine, clock, settings, cipher)
        assert summary.pruned == 2
        assert _in_warmup(dovecot) == {"<feb16@s.example>", "<mar01@s.example>", new}
        assert rows(engine)[new].filed
        assert box_state(engine, recipient).pruned_at == clock.now()

        # An hour later: old mail again, but the folder was pruned today.
        _warmup_mail(dovecot, {"<feb11@s.example>": day(11)})
        (second,) = deliver(engine, dovecot, sender, recipient)
        clock.advance(hours=1)
        summary = engage(engine, clock, settings, cipher)
        assert summary.pruned == 0 and rows(engine)[second].filed
        assert "<feb11@s.example>" in _in_warmup(dovecot)

        # A day on (3 March: the line is 17 February).
        (third,) = deliver(engine, dovecot, sender, recipient)
        clock.advance(days=1)
        summary = engage(engine, clock, settings, cipher)
        assert summary.pruned == 2
        assert _in_warmup(dovecot) == {"<mar01@s.example>", new, second, third}
        assert box_state(engine, recipient).pruned_at == clock.now()
