"""Jobs, and the run requests that cover many mailbox partitions in few runs."""

import math
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from warmup_dagster.assets.domain_health import domain_health
from warmup_dagster.assets.fill_rate import fill_rate
from warmup_dagster.assets.mailbox_health import mailbox_health
from warmup_dagster.assets.send_plan import PLAN_BATCH, send_plan
from warmup_dagster.ops import (
    catch_up_mailboxes,
    engage_mailboxes,
    prune_past_retention,
    send_due_mail,
)
from warmup_dagster.settings import Settings, load_settings

# Run tag by which dagster.yaml's run queue limits sender and planner runs.
ROLE_TAG = "warmup/role"

# Dagster's tag for the real seconds a run may take: run monitoring (dagster.yaml) terminates a
# run still going after them, and fails one whose process is gone.
MAX_RUNTIME_TAG = "dagster/max_runtime"
# Dagster's tag for the times a failed run is launched again (`run_retries` in dagster.yaml).
MAX_RETRIES_TAG = "dagster/max_retries"
# Real seconds a sender run gets beyond its lifetime and a lease: its process's start and end.
MAX_RUNTIME_MARGIN_S = 300

# Dagster's tags for one run over a range of partitions (in the definition's key order).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

# Dagster's console logger prints every event at DEBUG by default, and a planning run has one
# ASSET_MATERIALIZATION event per partition: up to 25,000 "Materialized value" lines on the run
# worker's console. At INFO it shows the run's own log lines, warnings and errors; the events
# themselves are still stored (they are the partitions' materializations in the UI). It is part
# of every planning run request's run config: a job's default config would not reach these runs,
# since Dagster applies a partitioned asset job's default config only to single-partition runs
# launched without run config.
QUIET_CONSOLE: Mapping[str, Any] = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}

plan_job = dg.define_asset_job(
    "plan_mailboxes",
    selection=[send_plan],
    # A failed planning run is launched again (`run_retries` in dagster.yaml): a pass's run
    # key is used once, and a re-plan of days already planned changes nothing.
    tags={ROLE_TAG: "planner", MAX_RETRIES_TAG: "2"},
    description="Plan send jobs for a range of mailbox partitions (one run, many mailboxes).",
)


fill_rate_job = dg.define_asset_job(
    "report_fill_rate",
    selection=[fill_rate],
    description="Compute one local date's fill rate and run its checks.",
)


# In process: one asset, its checks in a thread pool of the run's own process.
domain_job = dg.define_asset_job(
    "check_domains",
    selection=[domain_health],
    executor_def=dg.in_process_executor,
    description="Check the sending domains' MX, SPF, DKIM, DMARC and blocklist listings.",
)


health_job = dg.define_asset_job(
    "judge_health",
    selection=[mailbox_health],
    executor_def=dg.in_process_executor,
    description="Judge every mailbox's health from its placements, bounces and auth failures.",
)


def plan_range_requests(
    keys: Sequence[str], run_key_prefix: str, *, replan: bool, batch: int = PLAN_BATCH
) -> list[dg.RunRequest]:
    """One run request per `batch` consecutive partition keys, never one per mailbox.

    `keys` must be consecutive in the partitions definition (all keys, or the newest ones).
    """
    return [
        dg.RunRequest(
            run_key=f"{run_key_prefix}-{start // batch}",
            tags={
                RANGE_START_TAG: keys[start],
                RANGE_END_TAG: keys[min(start + batch, len(keys)) - 1],
            },
            run_config={**QUIET_CONSOLE, "ops": {"send_plan": {"config": {"replan": replan}}}},
        )
        for start in range(0, len(keys), batch)
    ]


def sender_max_runtime(settings: Settings) -> int:
    """The real seconds a sender run may last before run monitoring ends it.

    Its lifetime (`WARMUP_SENDER_RUN_MAX_SECONDS`, clock time) and a lease more: past its
    lifetime a run only finishes what it claimed, and a job held longer than a lease beyond it
    has been taken over by another run anyway. Then a margin for the process to start and end.
    """
    clock_seconds = settings.sender_run_max_seconds + settings.send_lease_seconds
    return math.ceil(clock_seconds / settings.clock_speed) + MAX_RUNTIME_MARGIN_S


# In process: a sender run is one process (no step subprocess), started faster and smaller.
# Read at load time, as the dispatch sensor's interval is: a job's tags are its definition.
@dg.job(
    name="send_mail",
    tags={ROLE_TAG: "sender", MAX_RUNTIME_TAG: str(sender_max_runtime(load_settings()))},
    executor_def=dg.in_process_executor,
)
def send_job() -> None:
    """Send due mail: one sender run, launched by the dispatch sensor."""
    send_due_mail()


@dg.job(name="catch_up", tags={ROLE_TAG: "planner"}, executor_def=dg.in_process_executor)
def catch_up_job() -> None:
    """Re-plan what a list of mailboxes still owes today (launched by `catch_up_sensor`)."""
    catch_up_mailboxes()


@dg.job(name="prune_history", tags={ROLE_TAG: "retention"}, executor_def=dg.in_process_executor)
def prune_job() -> None:
    """Delete the history past retention (launched once a clock day by `retention_sensor`)."""
    prune_past_retention()


@dg.job(name="engage", tags={ROLE_TAG: "engager"}, executor_def=dg.in_process_executor)
def engage_job() -> None:
    """Engage received warmup mail over IMAP: one engagement run (`engagement_sensor`)."""
    engage_mailboxes()
