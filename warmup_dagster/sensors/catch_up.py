"""The catch-up sensor: mailboxes that fell behind get what they still owe re-planned."""

import hashlib

import dagster as dg

from warmup_dagster.jobs import catch_up_job
from warmup_dagster.planning.owing import owing, owing_summary
from warmup_dagster.resources import WarmupDatabase
from warmup_dagster.sensors.dispatch import ACTIVE
from warmup_dagster.sensors.timing import real_interval_seconds
from warmup_dagster.settings import load_settings

# Read at load time: a sensor's interval is part of its definition. The setting is clock time.
_SETTINGS = load_settings()
INTERVAL_S = real_interval_seconds(_SETTINGS.catch_up_interval_seconds, _SETTINGS.clock_speed)
# Mailboxes per catch-up run; more wait for the next tick.
MAX_MAILBOXES = 10_000


@dg.sensor(
    job=catch_up_job,
    minimum_interval_seconds=INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def catch_up_sensor(
    context: dg.SensorEvaluationContext, warmup_db: WarmupDatabase
) -> dg.RunRequest | dg.SkipReason:
    """Launches one `catch_up` run over the mailboxes that owe more than their last plan's
    shortfall today (failed sends, sends held while the mailbox was paused) or were resumed
    after their day was planned while paused, with their window still open
    (`planning.owing`).

    Ticks every `WARMUP_CATCH_UP_INTERVAL_SECONDS` of clock time; `WARMUP_CATCH_UP=false`
    turns it off. Never twice: while a catch-up run is queued or running it launches nothing,
    and the run key is a digest of what is owed (each mailbox-day's failed, overdue, queued
    and counted jobs), so a tick evaluated twice, or a shortfall a run could not place,
    launches nothing again; a new failure changes the digest.
    """
    if not warmup_db.settings.catch_up:
        return dg.SkipReason("WARMUP_CATCH_UP is false: catch-up is off")
    busy = context.instance.get_runs_count(
        dg.RunsFilter(job_name=catch_up_job.name, statuses=ACTIVE)
    )
    if busy:
        return dg.SkipReason("a catch-up run is queued or running")
    with warmup_db.engine.connect() as conn:
        found = owing(conn, warmup_db.settings, warmup_db.clock.now())[:MAX_MAILBOXES]
    if not found:
        return dg.SkipReason("no mailbox owes more than its plan's shortfall")
    digest = hashlib.sha256(
        "\n".join(
            f"{o.mailbox_id}:{o.local_date}:{o.failed}:{o.overdue}:{o.queued}:{o.counted}"
            for o in found
        ).encode()
    ).hexdigest()[:20]
    context.log.info(owing_summary(found))
    return dg.RunRequest(
        run_key=f"catchup-{digest}",
        run_config={
            "ops": {"catch_up_mailboxes": {"config": {"mailboxes": [o.email for o in found]}}}
        },
        tags={"warmup/mailboxes": str(len(found))},
    )
