"""The only place that builds the project's `Definitions`."""

import dagster as dg

from warmup_dagster.assets.pool import mailbox_pool
from warmup_dagster.assets.send_plan import send_plan
from warmup_dagster.jobs import plan_job, send_job
from warmup_dagster.resources import WarmupDatabase, WarmupSecrets
from warmup_dagster.sensors.dispatch import dispatch_sensor
from warmup_dagster.sensors.partitions import mailbox_partitions_sensor
from warmup_dagster.sensors.planning import daily_plan_sensor

defs = dg.Definitions(
    assets=[mailbox_pool, send_plan],
    jobs=[plan_job, send_job],
    sensors=[mailbox_partitions_sensor, daily_plan_sensor, dispatch_sensor],
    resources={
        "warmup_db": WarmupDatabase(),
        "warmup_secrets": WarmupSecrets(secret_key=dg.EnvVar("WARMUP_SECRET_KEY")),
    },
)
