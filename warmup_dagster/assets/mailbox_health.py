"""The `mailbox_health` asset: every mailbox's health from its placements, bounces and
refused logins over the recent window."""

import dagster as dg

from warmup_dagster.health import store
from warmup_dagster.resources import WarmupDatabase

# Mailboxes in the metadata's table of those not healthy (the rest: `warmup mailboxes list`).
TABLE_MAILBOXES = 100


def markdown(shown: list[store.Health], more: int) -> str:
    """The table of mailboxes not healthy, worst first, with their figures and reasons."""
    if not shown:
        return "Every mailbox is healthy."
    lines = [
        "| mailbox | state | since | inbox | spam | not found | bounces | auth failures | why |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for h in shown:
        f = h.figures
        lines.append(
            f"| {h.email} | {h.state.value} | {h.since:%Y-%m-%d %H:%M} | {f.inbox} | {f.spam} "
            f"| {f.not_found} | {f.bounces} | {f.auth_failures} | {h.reason} |"
        )
    if more > 0:
        lines.append(f"\n{more:,} more: `warmup mailboxes list`")
    return "\n".join(lines)


@dg.asset(group_name="pool", kinds={"sql"})
def mailbox_health(
    context: dg.AssetExecutionContext, warmup_db: WarmupDatabase
) -> dg.MaterializeResult:
    """Each mailbox's health over the last `WARMUP_HEALTH_WINDOW_DAYS`: HEALTHY, WATCH,
    THROTTLED or PAUSED, from the spam rate of the mail it sent (where the receiving side
    found it), its bounces and its refused SMTP logins against the `WARMUP_HEALTH_*`
    thresholds.

    One grouped query over the window, the verdicts kept in `mailbox_health`, which planning
    reads: a THROTTLED mailbox is planned `WARMUP_HEALTH_THROTTLE` of its quota, a PAUSED one
    nothing, until a later materialization finds it better. The metadata counts mailboxes by
    state and tables the ones not healthy, with why.
    """
    engine, settings = warmup_db.engine, warmup_db.settings
    judged = store.refresh(engine, settings, warmup_db.clock.now())
    figures = store.counts(engine)
    shown = store.not_healthy(engine, TABLE_MAILBOXES)
    more = sum(figures[f"mailboxes_{s}"] for s in ("watch", "throttled", "paused")) - len(shown)
    for h in shown[:20]:
        if h.state.value in ("THROTTLED", "PAUSED"):
            context.log.warning(f"{h.email}: {h.state.value.lower()}: {h.reason}")
    context.log.info(f"{judged:,} mailboxes with mail in the window judged")
    return dg.MaterializeResult(
        metadata={
            **figures,
            "mailboxes_judged": judged,
            "window_days": settings.health_window_days,
            "not_healthy": dg.MetadataValue.md(markdown(shown, more)),
        }
    )
