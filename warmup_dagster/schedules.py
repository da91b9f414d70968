"""The daily planning schedule."""

import dagster as dg

from warmup_dagster.jobs import plan_job, plan_range_requests
from warmup_dagster.partitions import mailbox_partitions

# Planning looks 24 hours ahead, so one run a day plans every local day before its window
# opens, in every timezone; 00:00 UTC is arbitrary but fixed (UTC has no DST).
DAILY_PLAN_CRON = "0 0 * * *"


@dg.schedule(
    job=plan_job,
    cron_schedule=DAILY_PLAN_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_plan_schedule(
    context: dg.ScheduleEvaluationContext,
) -> list[dg.RunRequest] | dg.SkipReason:
    """Plans every mailbox's coming day, in range runs of a few thousand mailboxes each.

    Each run plans, for its mailboxes, every local day whose send window opens in the next 24
    hours and has no plan yet (days planned already, for example by a rerun, are left alone).
    """
    keys = context.instance.get_dynamic_partitions(mailbox_partitions.name)
    if not keys:
        return dg.SkipReason("no mailboxes yet: import some with `warmup mailboxes import`")
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return plan_range_requests(keys, f"daily-{day}", replan=False)
