"""Six weeks of history for the retention tests: an old day and a recent one, both sent by
the real Sender, and what must survive a prune on the old day.

- Monday 2 March 2026 (`OLD`): the fill tests' day (`fill.days`): five jobs of box0@u0 and
  box1@u0 finished (four SENT, one FAILED with a 550), their log rows and quotas; plus, kept
  by any prune, a PENDING job of the paused box1@u1 whose first attempt got a 451 (its RETRY
  log row), and a job of box0@u1 in flight with an earlier attempt's log row; and a log row
  whose job is gone.
- Monday 13 April 2026 (`RECENT`, six weeks later): three jobs of box0@u0 and box1@u0 sent
  (one FAILED with a 550), their quotas and counters.
- `NOW`, 23:00 on the recent day: with the default 35 days of retention, dates before
  9 March are past it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster.clock import FixedClock
from warmup_dagster.core.admission import Scope
from warmup_dagster.core.slots import epoch_minute
from warmup_dagster.db.models import (
    DailyQuota,
    JobStatus,
    Mailbox,
    MailboxState,
    SendCounter,
    SendLog,
    WarmupJob,
)
from warmup_dagster.sending.worker import Sender
from warmup_dagster.settings import Settings
from warmup_dagster_tests.factories import add_job, log_send
from warmup_dagster_tests.fill.days import BOXES, send_a_day
from warmup_dagster_tests.sending.test_sender import KEY, jobs

OLD = date(2026, 3, 2)
RECENT = date(2026, 4, 13)
NOW = datetime(2026, 4, 13, 23, 0, tzinfo=UTC)
# A USER_DAY counter of a date no cap or audit reads any more (older than a week).
STALE_COUNTER = (Scope.USER_DAY, 1, date(2026, 3, 20).toordinal())


@dataclass
class History:
    settings: Settings
    clock: FixedClock  # at NOW
    ids: dict[str, int]  # mailbox id by address
    held: list[int]  # the old day's jobs still queued or in flight


def _quota(session: Session, mailbox_id: int, day: date, quota: int) -> None:
    at = datetime(day.year, day.month, day.day, tzinfo=UTC)
    session.add(
        DailyQuota(
            mailbox_id=mailbox_id,
            local_date=day,
            quota=quota,
            ramp=quota,
            kept=0,
            planned=quota,
            shortfall=0,
            planned_at=at,
        )
    )


def make_history(engine, cipher, server, cert) -> History:
    sent = send_a_day(engine, cipher, server, cert)
    ids, settings = sent.ids, sent.settings
    nine = datetime(2026, 4, 13, 9, 0, tzinfo=UTC)
    jobs(engine, [ids[BOXES[0]]], ["fine@x.example", "code550@x.example"], nine)
    jobs(engine, [ids[BOXES[1]]], ["a@x.example"], nine)
    with Session(engine) as session, session.begin():
        _quota(session, ids[BOXES[0]], RECENT, 2)
        _quota(session, ids[BOXES[1]], RECENT, 1)
        _quota(session, ids[BOXES[3]], OLD, 1)
        paused = session.get(Mailbox, ids[BOXES[3]])
        paused.state = MailboxState.PAUSED
    clock = FixedClock(nine)
    for minute in (0, 3, 6):
        clock._now = nine.replace(minute=minute)
        Sender(engine, clock, settings, cipher, KEY, "w2", max_seconds=20).run()
    old_nine = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    with Session(engine) as session, session.begin():
        waiting = session.get(Mailbox, ids[BOXES[3]])
        owed = add_job(
            session,
            waiting,
            waiting,
            old_nine,
            JobStatus.PENDING,
            attempts=1,
            recipient_email="r@x",
        )
        log_send(session, owed, old_nine, JobStatus.RETRY)
        box = session.get(Mailbox, ids[BOXES[2]])
        flying = add_job(
            session,
            box,
            box,
            old_nine,
            JobStatus.PROCESSING,
            attempts=2,
            picked_at=NOW - timedelta(minutes=1),
            lease_expires_at=NOW + timedelta(hours=1),
            worker_id="w3",
        )
        log_send(session, flying, old_nine, JobStatus.RETRY)
        session.add(
            SendLog(
                job_id=None,
                mailbox_id=box.id,
                user_id=box.user_id,
                kind=flying.kind,
                recipient_email="gone@x.example",
                message_id="<gone@x>",
                status=JobStatus.SENT,
                attempt=1,
                local_date=OLD,
                created_at=old_nine,
            )
        )
        # what the claim of the job in flight raised (its day scopes are the old day's)
        minute = epoch_minute(NOW - timedelta(minutes=1))
        for scope, subject, period in (
            (Scope.GLOBAL_MINUTE, 0, minute),
            (Scope.GLOBAL_HOUR, 0, minute // 60),
            (Scope.USER_MINUTE, box.user_id, minute),
            (Scope.USER_HOUR, box.user_id, minute // 60),
            STALE_COUNTER,
        ):
            counter = session.get(SendCounter, (scope, period, subject))
            if counter is None:
                session.add(SendCounter(scope=scope, subject_id=subject, period=period, used=1))
            else:
                counter.used += 1
        held = [owed.id, flying.id]
    clock._now = NOW
    return History(settings, clock, ids, held)


def snapshot(engine) -> dict[str, set]:
    """Every row's key in the tables retention prunes."""
    with Session(engine) as session:
        return {
            "jobs": set(session.scalars(select(WarmupJob.id))),
            "log": set(session.scalars(select(SendLog.id))),
            "quotas": set(session.execute(select(DailyQuota.mailbox_id, DailyQuota.local_date))),
            "counters": set(
                session.execute(
                    select(SendCounter.scope, SendCounter.subject_id, SendCounter.period)
                )
            ),
        }
