"""Keeps the `mailboxes` partitions equal to the mailboxes in the database."""

import dagster as dg
from sqlalchemy import func, select

from warmup_dagster.db.models import Mailbox
from warmup_dagster.jobs import plan_job, plan_range_requests
from warmup_dagster.partitions import mailbox_partitions
from warmup_dagster.resources import WarmupDatabase

# Keys per add/delete call: large requests are slow to write and to undo.
PARTITION_CHUNK = 10_000
# Real seconds between looks at the mailbox table (Dagster's sensor loop runs at most every
# 5 s). An unchanged table costs one small query; a new mailbox waits at most this long.
CHECK_EVERY_S = 5


@dg.sensor(
    job=plan_job,
    minimum_interval_seconds=CHECK_EVERY_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def mailbox_partitions_sensor(
    context: dg.SensorEvaluationContext, warmup_db: WarmupDatabase
) -> dg.SensorResult | dg.SkipReason:
    """Adds a partition for each new mailbox and removes those of deleted ones.

    Newly added mailboxes are planned right away, in range runs, so a mailbox imported in the
    middle of the day starts warming up that day. The cursor is a fingerprint of the mailbox
    table; an unchanged table costs one small query per tick.

    New keys are added here, in bulk, not as `AddDynamicPartitionsRequest`s: the daemon checks
    a request's keys one query each (10,000 keys took 56 s), `add_dynamic_partitions` writes
    them in one statement (0.4 s). If this tick fails after adding them, the next one finds no
    new keys and plans nothing for them: the next daily pass (or a catch-up) plans them.
    Deletions are rare and stay requests, shown in the tick's result in the UI.
    """
    with warmup_db.engine.connect() as conn:
        count, top, total = conn.execute(
            select(func.count(), func.max(Mailbox.id), func.sum(Mailbox.id))
        ).one()
        fingerprint = f"{count}:{top or 0}:{total or 0}"
        if fingerprint == context.cursor:
            return dg.SkipReason(f"no change: {count:,} mailboxes")
        in_db = [email for (email,) in conn.execute(select(Mailbox.email).order_by(Mailbox.id))]
    existing = set(context.instance.get_dynamic_partitions(mailbox_partitions.name))
    added = [email for email in in_db if email not in existing]
    removed = sorted(existing - set(in_db))
    for i in range(0, len(added), PARTITION_CHUNK):
        context.instance.add_dynamic_partitions(
            mailbox_partitions.name, added[i : i + PARTITION_CHUNK]
        )
    context.log.info(f"{len(added):,} partitions added, {len(removed):,} to remove")
    return dg.SensorResult(
        run_requests=plan_range_requests(added, f"new-{fingerprint}", replan=False),
        cursor=fingerprint,
        dynamic_partitions_requests=[
            mailbox_partitions.build_delete_request(removed[i : i + PARTITION_CHUNK])
            for i in range(0, len(removed), PARTITION_CHUNK)
        ],
    )
