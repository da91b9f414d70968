"""Domain checks on the clock and on import: every domain once a UTC day, new ones at once."""

import hashlib

import dagster as dg

from warmup_dagster.domains import store
from warmup_dagster.jobs import domain_job
from warmup_dagster.resources import WarmupDatabase
from warmup_dagster.sensors.timing import real_interval_seconds

# How often, in clock time, the sensor looks for a new day or newly imported domains.
CHECK_EVERY_S = 60


def _run_config(unchecked_only: bool) -> dict:
    return {"ops": {"domain_health": {"config": {"unchecked_only": unchecked_only}}}}


@dg.sensor(
    job=domain_job,
    minimum_interval_seconds=real_interval_seconds(CHECK_EVERY_S),
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def domain_health_sensor(
    context: dg.SensorEvaluationContext, warmup_db: WarmupDatabase
) -> dg.SensorResult | dg.SkipReason:
    """Checks every sending domain when a new UTC day begins on the clock, and the domains of
    newly imported mailboxes as soon as they are in the pool.

    The cursor is the day of the last full check (run key `domains-<date>`). Between full
    checks, domains with no results launch a run over just them, keyed by a digest of their
    names (`domains-new-<digest>`): a tick evaluated twice, or while that run works, launches
    nothing again. `WARMUP_DOMAIN_CHECKS=false` makes every tick skip.
    """
    if not warmup_db.settings.domain_checks:
        return dg.SkipReason("WARMUP_DOMAIN_CHECKS is false")
    today = warmup_db.clock.now().date().isoformat()
    new = store.unchecked(warmup_db.engine)
    if context.cursor != today:
        if not new and not store.targets(warmup_db.engine):
            return dg.SkipReason("no mailboxes yet: import some with `warmup mailboxes import`")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"domains-{today}", run_config=_run_config(False))],
            cursor=today,
        )
    if not new:
        return dg.SkipReason(f"every domain checked on {today}; no new domain since")
    digest = hashlib.sha256("\n".join(new).encode()).hexdigest()[:16]
    context.log.info(f"{len(new):,} new domains: {', '.join(new[:10])}")
    return dg.RunRequest(run_key=f"domains-new-{digest}", run_config=_run_config(True))
