"""A local day sent by the real Sender on a fixed clock, with its planned quotas.

Monday 2 March 2026, windows 06-22 UTC. Four mailboxes of two owners on the test SMTP server:

- box0@u0: quota 3; sends to fine@, code550@ (refused for good: failed, SMTP 550) and ok@;
- box1@u0: quota 2; sends both;
- box0@u1: quota 4, none planned (a shortfall of 4: "no room");
- box1@u1: no plan that day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from warmup_dagster.clock import FixedClock
from warmup_dagster.db.models import DailyQuota
from warmup_dagster.sending.worker import Sender
from warmup_dagster.settings import Settings
from warmup_dagster_tests.sending.test_sender import KEY, jobs, mailboxes, settings_for

DAY = datetime(2026, 3, 2, tzinfo=UTC)
BOXES = ("box0@u0.example", "box1@u0.example", "box0@u1.example", "box1@u1.example")


@dataclass
class SentDay:
    settings: Settings
    clock: FixedClock
    ids: dict[str, int]  # mailbox id by address


def send_a_day(engine, cipher, server, cert) -> SentDay:
    settings = settings_for(cert, scheduler_interval_ms="1000")
    ids = dict(zip(BOXES, mailboxes(engine, cipher, server, n_users=2, per_user=2), strict=True))
    nine = DAY.replace(hour=9)
    # slots 3 minutes apart from 09:00
    jobs(engine, [ids[BOXES[0]]], ["fine@x.example", "code550@x.example", "ok@x.example"], nine)
    jobs(engine, [ids[BOXES[1]]], ["a@x.example", "b@x.example"], nine)
    with Session(engine) as session, session.begin():
        for email, quota, planned, reason in (
            (BOXES[0], 3, 3, None),
            (BOXES[1], 2, 2, None),
            (BOXES[2], 4, 0, "no room"),
        ):
            session.add(
                DailyQuota(
                    mailbox_id=ids[email],
                    local_date=DAY.date(),
                    quota=quota,
                    ramp=quota,
                    kept=0,
                    planned=planned,
                    shortfall=quota - planned,
                    reason=reason,
                    planned_at=DAY,
                )
            )
    clock = FixedClock(nine)
    for minute in (0, 3, 6):
        clock._now = nine.replace(minute=minute)
        Sender(engine, clock, settings, cipher, KEY, "w1", max_seconds=20).run()
    clock._now = DAY.replace(hour=23)  # every window of the day closed an hour ago
    return SentDay(settings, clock, ids)
