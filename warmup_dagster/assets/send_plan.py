"""The `send_plan` asset: each mailbox partition writes that mailbox's send jobs for its day."""

from typing import Any

import dagster as dg
from pydantic import Field

from warmup_dagster.partitions import mailbox_partitions
from warmup_dagster.planning.model import DayPlan
from warmup_dagster.planning.planner import plan_mailboxes
from warmup_dagster.resources import WarmupDatabase

# Mailboxes per planning run: big enough that run start-up is noise, small enough that a run's
# bookkeeping (one materialization event per partition) finishes in minutes.
PLAN_BATCH = 25_000
# Runs of at most this many partitions give each partition its own figures. Dagster's public way
# (`add_asset_metadata(partition_key=...)`) loads every partition key of the definition on each
# call (about 0.2 s with 100,000 mailboxes), so bigger runs give every partition the run's totals;
# each mailbox-day's own figures are in the `daily_quotas` table either way.
PER_PARTITION_METADATA = 25


class PlanConfig(dg.Config):
    replan: bool = Field(
        default=True,
        description=(
            "Plan days that already have a plan again (replacing their unsent, never-attempted "
            "jobs with what is still owed). The daily schedule sets false: it only fills gaps."
        ),
    )


def _metadata(plans: list[DayPlan]) -> dict[str, Any]:
    """Metadata of one mailbox partition: figures of its latest planned day, plus every day."""
    if not plans:
        return {"jobs_written": 0, "note": "nothing to plan: every day in the horizon has a plan"}
    last = max(plans, key=lambda p: p.local_date)
    metadata: dict[str, Any] = {
        "local_date": last.local_date.isoformat(),
        "quota": last.quota.value,
        "ramp": last.quota.ramp,
        "planned": last.planned,
        "already_sent": last.sent,
        "kept": last.kept,
        "shortfall": last.shortfall,
        "first_slot": min(last.slots).isoformat() if last.slots else "",
        "last_slot": max(last.slots).isoformat() if last.slots else "",
        "reason": last.reason or "",
        "days_planned": len(plans),
        "jobs_written": sum(p.planned for p in plans),
    }
    if len(plans) > 1:
        metadata["days"] = dg.MetadataValue.md(
            "| day | quota | planned | already sent | shortfall | reason |\n"
            "|---|---|---|---|---|---|\n"
            + "\n".join(
                f"| {p.local_date} | {p.quota.value} | {p.planned} | {p.sent} | {p.shortfall} "
                f"| {p.reason} |"
                for p in sorted(plans, key=lambda p: p.local_date)
            )
        )
    return metadata


@dg.asset(
    partitions_def=mailbox_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=PLAN_BATCH),
    group_name="planning",
    kinds={"sql"},
)
def send_plan(
    context: dg.AssetExecutionContext,
    config: PlanConfig,
    warmup_db: WarmupDatabase,
) -> dg.MaterializeResult:
    """Today's (and, once near, tomorrow's) send jobs of each mailbox, in its local send window.

    A partition is a mailbox. Materializing it computes the day's quota (ramp, weekends,
    pause, throttle, the owner's plan), picks recipients from the pool (other owners, other
    domains, fair inbound, no recent repeats), spreads slots over the window within every rate
    cap, and writes the jobs. Rerunning a partition is safe: it replaces only jobs that were
    never attempted and plans only what is still owed. Shortfalls are reported with numbers.

    A run of up to 25 partitions gives each its own figures (quota, planned, shortfall, slots,
    reason); every partition also carries its run's totals (`run_*`). Each mailbox-day's
    figures are kept in the `daily_quotas` table.
    """
    keys = list(context.partition_keys)
    plans = plan_mailboxes(
        warmup_db.engine,
        keys,
        warmup_db.settings,
        warmup_db.clock,
        replan=config.replan,
    )
    if len(keys) <= PER_PARTITION_METADATA:
        by_email: dict[str, list[DayPlan]] = {key: [] for key in keys}
        for plan in plans:
            by_email[plan.email].append(plan)
        for key, day_plans in by_email.items():
            context.add_asset_metadata(_metadata(day_plans), partition_key=key)
    quota = sum(p.quota.value for p in plans)
    planned = sum(p.planned for p in plans)
    shortfall = sum(p.shortfall for p in plans)
    context.log.info(
        f"planned {planned:,} sends for {len(keys):,} mailboxes ({len(plans):,} mailbox-days); "
        f"quota {quota:,}; shortfall {shortfall:,}"
    )
    if shortfall:
        reasons: dict[str, int] = {}
        for p in plans:
            if p.shortfall:
                reasons[p.reason] = reasons.get(p.reason, 0) + p.shortfall
        worst = sorted(reasons.items(), key=lambda kv: -kv[1])[:5]
        context.log.warning(
            f"shortfall of {shortfall:,} of {quota:,} sends: "
            + "; ".join(f"{n:,} ({reason})" for reason, n in worst)
        )
    return dg.MaterializeResult(
        metadata={
            "run_mailboxes": len(keys),
            "run_mailbox_days": len(plans),
            "run_quota": quota,
            "run_planned": planned,
            "run_shortfall": shortfall,
        }
    )
