"""The only place that builds the project's `Definitions`."""

import dagster as dg

from warmup_dagster.assets.pool import mailbox_pool
from warmup_dagster.resources import WarmupDatabase

defs = dg.Definitions(
    assets=[mailbox_pool],
    resources={"warmup_db": WarmupDatabase()},
)
