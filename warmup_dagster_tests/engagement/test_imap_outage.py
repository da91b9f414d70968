"""Dovecot stopped in the middle of an engagement pass and started again, on both databases:
the run fails its mailboxes cleanly (errors recorded, leases given back, nothing paused, each
mailbox tried once), and the next run once the messages are due again finishes everything,
once.

The pool and the checks are the kill test's (`test_killed_engagement`). The look over IMAP
before a reclaimed job is sent again, with the recipient's IMAP unreachable, is
`sending/test_reclaim.py` (the look fails and the job is sent).
"""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster.clock import FixedClock
from warmup_dagster.db.models import Engagement, EngagementMailbox
from warmup_dagster.engagement.run import Engager
from warmup_dagster.settings import load_settings
from warmup_dagster_tests.engagement.test_killed_engagement import (
    NINE,
    STEP_WITHIN_S,
    assert_engaged_once,
    delivered_pool,
    steps,
    values,
)
from warmup_dagster_tests.sending.test_sender import KEY


def test_dovecot_stopped_mid_pass_fails_the_run_cleanly_and_the_next_finishes_once(
    engine, cipher, cert, dovecot
):
    mail = delivered_pool(engine, cipher, dovecot)
    settings = load_settings(values(cert))
    clock = FixedClock(NINE + timedelta(minutes=10))
    ran: dict[str, object] = {}

    def engage() -> None:
        try:
            ran["summary"] = Engager(engine, clock, settings, cipher, KEY, "first").run()
        except BaseException as exc:  # reported by the assertion below
            ran["error"] = exc

    thread = threading.Thread(target=engage)
    thread.start()
    pause = threading.Event()
    try:
        for _ in range(int(STEP_WITHIN_S / 0.005)):
            if steps(engine) > 0 or not thread.is_alive():
                break
            pause.wait(0.005)
        assert thread.is_alive(), "the run ended before Dovecot was stopped"
        dovecot.halt()  # mid-session: the first mailbox's pass has recorded a placement
        thread.join(60)
    finally:
        if dovecot.folder is not None:
            dovecot.resume()
    assert not thread.is_alive()
    assert "error" not in ran, ran.get("error")

    # Failed cleanly: the mailboxes the outage met failed, none paused (a refused connection
    # is not a refused login), every lease given back, each unfinished message due again at the
    # recheck with the error.
    summary = ran["summary"]
    assert summary.failed_mailboxes >= 1 and summary.paused_mailboxes == 0
    recheck = clock.now() + timedelta(minutes=settings.engage_recheck_minutes)
    with Session(engine) as session:
        passes = list(session.scalars(select(EngagementMailbox)))
        left = [e for e in session.scalars(select(Engagement)) if not e.done]
    assert passes and all(p.leased_until is None and p.paused_reason is None for p in passes)
    # Each mailbox taken once: one failed session per mailbox, not one after another until the
    # run's WARMUP_ENGAGE_MAILBOXES_PER_RUN were used up (499 of them before the recheck wait).
    assert summary.mailboxes == len(passes)
    assert sum(p.last_error is not None for p in passes) == summary.failed_mailboxes
    assert left and all(e.error and e.due_at == recheck for e in left)

    # Dovecot is back: once they are due again, the next run finishes everything, once.
    clock.advance(minutes=settings.engage_recheck_minutes)
    again = Engager(engine, clock, settings, cipher, KEY, "second").run()
    assert again.failed_mailboxes == again.paused_mailboxes == 0
    assert_engaged_once(engine, dovecot, mail)
