"""Failing the runs whose process died (`warmup_dagster.liveness`)."""

import dagster as dg

from warmup_dagster.liveness import BEATS_PER_LIMIT, describe, fail_dead_runs, limit_seconds
from warmup_dagster.resources import WarmupDatabase
from warmup_dagster.sensors.timing import real_interval_seconds
from warmup_dagster.settings import load_settings

# Read at load time: a sensor's interval is part of its definition. A tick per beat.
_SETTINGS = load_settings()
INTERVAL_S = real_interval_seconds(
    limit_seconds(_SETTINGS) / BEATS_PER_LIMIT, _SETTINGS.clock_speed
)


@dg.sensor(minimum_interval_seconds=INTERVAL_S, default_status=dg.DefaultSensorStatus.RUNNING)
def dead_runs_sensor(
    context: dg.SensorEvaluationContext, warmup_db: WarmupDatabase
) -> dg.SkipReason:
    """Fails every STARTING or STARTED run whose beats stopped `WARMUP_RUN_DEAD_SECONDS` ago
    (at least 30 real seconds), so the run queue and the dispatch sensor stop counting it;
    launches nothing.

    Each tick names the runs it failed. Dagster's run monitoring cannot see the process of a
    run started by the default run launcher: without this sensor a run that died with its
    daemon's machine stays STARTED until its max runtime, or for good.
    """
    dead = fail_dead_runs(context.instance, warmup_db.engine, warmup_db.clock, warmup_db.settings)
    for d in dead:
        context.log.warning(f"failed {d.run.job_name} run {d.run.run_id}: {d.reason}")
    return dg.SkipReason(describe(dead))
