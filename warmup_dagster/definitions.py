"""The only place that builds the project's `Definitions`."""

import warnings

import dagster as dg

# Every process of the code location (daemon, code server, webserver, each run) imports this
# module first, and Dagster 1.13.27 prints two BetaWarnings in each one, the same two lines in
# the daemon's log for every run. `backfill_policy` on `send_plan` has no stable replacement
# (it is what makes a backfill one run per 25,000 mailboxes); `owners` we never pass: Dagster
# passes it itself when it binds the resources to a sensor's job. So exactly these two are
# silenced, before the imports that trigger the first one; every other warning still shows.
warnings.filterwarnings(
    "ignore",
    message=r"Parameter `backfill_policy` of function `asset` is currently in beta",
    category=dg.BetaWarning,
)
warnings.filterwarnings(
    "ignore",
    message=r"Parameter `owners` of initializer `SensorDefinition.__init__` is currently in beta",
    category=dg.BetaWarning,
)

from warmup_dagster.assets.domain_health import domain_health
from warmup_dagster.assets.fill_rate import fill_rate
from warmup_dagster.assets.mailbox_health import mailbox_health
from warmup_dagster.assets.pool import mailbox_pool
from warmup_dagster.assets.send_plan import send_plan
from warmup_dagster.jobs import (
    catch_up_job,
    domain_job,
    engage_job,
    fill_rate_job,
    health_job,
    plan_job,
    prune_job,
    send_job,
)
from warmup_dagster.resources import WarmupDatabase, WarmupSecrets
from warmup_dagster.sensors.catch_up import catch_up_sensor
from warmup_dagster.sensors.dispatch import dispatch_sensor
from warmup_dagster.sensors.domains import domain_health_sensor
from warmup_dagster.sensors.engagement import engagement_sensor
from warmup_dagster.sensors.fill_rate import fill_rate_sensor
from warmup_dagster.sensors.health import mailbox_health_sensor
from warmup_dagster.sensors.liveness import dead_runs_sensor
from warmup_dagster.sensors.partitions import mailbox_partitions_sensor
from warmup_dagster.sensors.planning import daily_plan_sensor
from warmup_dagster.sensors.retention import retention_sensor

defs = dg.Definitions(
    assets=[mailbox_pool, send_plan, fill_rate, domain_health, mailbox_health],
    jobs=[
        plan_job,
        send_job,
        fill_rate_job,
        catch_up_job,
        prune_job,
        domain_job,
        engage_job,
        health_job,
    ],
    sensors=[
        mailbox_partitions_sensor,
        daily_plan_sensor,
        dispatch_sensor,
        fill_rate_sensor,
        catch_up_sensor,
        retention_sensor,
        domain_health_sensor,
        engagement_sensor,
        mailbox_health_sensor,
        dead_runs_sensor,
    ],
    resources={
        "warmup_db": WarmupDatabase(),
        "warmup_secrets": WarmupSecrets(secret_key=dg.EnvVar("WARMUP_SECRET_KEY")),
    },
)
