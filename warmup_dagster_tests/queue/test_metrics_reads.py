"""What the metrics read of each mailbox's day: its own local date, in its own timezone."""

from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from warmup_dagster.core.admission import Scope
from warmup_dagster.db.dialect import scanning
from warmup_dagster.db.models import DailyQuota
from warmup_dagster.queue.counters import bump_counters
from warmup_dagster.queue.metrics import mailbox_days
from warmup_dagster_tests.factories import add_mailbox, add_user

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)


def test_each_mailbox_is_read_on_its_current_local_day(engine, cipher):
    """At 20:00 UTC on Monday it is already Tuesday in Kolkata: a Kolkata mailbox counts with
    its Tuesday, the others with their Monday; a mailbox without a timezone has the
    deployment's."""
    with Session(engine) as session, session.begin():
        user = add_user(session, "owner", MONDAY)
        boxes = {
            tz: add_mailbox(session, user, f"{n}@d{n}.example", MONDAY, cipher, timezone=tz).id
            for n, tz in enumerate([None, "Asia/Kolkata", "America/New_York"])
        }
        for box in boxes.values():
            for day, quota in ((MONDAY.date(), 10), (MONDAY.date() + timedelta(days=1), 20)):
                session.add(
                    DailyQuota(
                        mailbox_id=box, local_date=day, quota=quota, ramp=quota, kept=0,
                        planned=quota, shortfall=0, planned_at=MONDAY,
                    )
                )  # fmt: skip
    monday, tuesday = MONDAY.date().toordinal(), MONDAY.date().toordinal() + 1
    with engine.begin() as conn:
        bump_counters(
            conn,
            Counter(
                {
                    (Scope.MAILBOX_DAY, boxes[None], monday): 7,
                    (Scope.MAILBOX_DAY, boxes[None], tuesday): 1,
                    (Scope.MAILBOX_DAY, boxes["Asia/Kolkata"], monday): 9,
                    (Scope.MAILBOX_DAY, boxes["Asia/Kolkata"], tuesday): 2,
                    (Scope.MAILBOX_DAY, boxes["America/New_York"], monday): 3,
                }
            ),
        )
    evening = MONDAY.replace(hour=20)
    with scanning(engine) as conn:
        assert mailbox_days(conn, evening, "UTC") == {(10, 7): 1, (20, 2): 1, (10, 3): 1}
        # the same mailboxes at noon: every one on Monday
        assert mailbox_days(conn, MONDAY.replace(hour=12), "UTC") == {
            (10, 7): 1, (10, 9): 1, (10, 3): 1,
        }  # fmt: skip
        # the deployment's timezone in Kolkata: the mailbox without one is on Tuesday too
        assert mailbox_days(conn, evening, "Asia/Kolkata") == {(20, 1): 1, (20, 2): 1, (10, 3): 1}
