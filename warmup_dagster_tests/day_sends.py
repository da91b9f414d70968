"""A local date's quotas and the sends that count against them: what the daemon tests wait for
and check."""

from __future__ import annotations

from collections import Counter
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from warmup_dagster.db.models import DailyQuota, SendLog
from warmup_dagster.queue.counting import counted


def day_sends(engine: Engine, day: date) -> tuple[dict[int, int], Counter]:
    """Each mailbox's quota for `day` and its sends that count, by mailbox id."""
    with engine.connect() as conn:
        quotas = dict(
            conn.execute(
                select(DailyQuota.mailbox_id, DailyQuota.quota).where(DailyQuota.local_date == day)
            ).all()
        )
        sent = Counter(
            dict(
                conn.execute(
                    select(SendLog.mailbox_id, func.count())
                    .where(*counted(), SendLog.local_date == day)
                    .group_by(SendLog.mailbox_id)
                ).all()
            )
        )
    return quotas, sent


def at_quota(engine: Engine, day: date, mailboxes: int) -> bool:
    """Whether all `mailboxes` have a quota for `day` and sent exactly it."""
    quotas, sent = day_sends(engine, day)
    return len(quotas) == mailboxes and all(sent[box] == q for box, q in quotas.items())
