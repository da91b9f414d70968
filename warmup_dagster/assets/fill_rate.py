"""The `fill_rate` asset: one daily partition per local date, its figures and its checks."""

from collections.abc import Iterable
from datetime import date
from typing import Any

import dagster as dg

from warmup_dagster import fill
from warmup_dagster.fill.checks import DESCRIPTIONS, Verdict, evaluate
from warmup_dagster.fill.day import Day
from warmup_dagster.fill.placement import DayPlacement
from warmup_dagster.fill.placement import load as load_placement
from warmup_dagster.partitions import fill_days
from warmup_dagster.queue.retention import Release, cutoff
from warmup_dagster.resources import WarmupDatabase
from warmup_dagster.settings import Settings

# Rows of the worst-mailboxes table in the UI.
WORST = 20
_COLUMNS = {
    "email": "string",
    "quota": "int",
    "sent": "int",
    "fill": "float",
    "replied": "int",
    "failed": "int",
    "held": "int",
    "late": "int",
    "reason": "string",
}


def _md_table(header: tuple[str, str], rows: list[tuple[Any, Any]]) -> dg.MetadataValue:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    return dg.MetadataValue.md("\n".join(lines + [f"| {a} | {b} |" for a, b in rows]))


def _worst(day: Day) -> dg.MetadataValue:
    under = day.under_quota().head(WORST).reset_index()
    under["fill"] = under["fill"].round(3)
    under["reason"] = under["reason"].fillna("")
    return dg.MetadataValue.table(
        records=[dg.TableRecord(r) for r in under[list(_COLUMNS)].to_dict("records")],
        schema=dg.TableSchema(columns=[dg.TableColumn(n, t) for n, t in _COLUMNS.items()]),
    )


_PLACEMENT_COLUMNS = {
    "email": "string",
    "placed": "int",
    "inbox_rate": "float",
    "spam_rate": "float",
    "not_found_rate": "float",
}


def _worst_placed(day: Day, placement: DayPlacement) -> dg.MetadataValue:
    emails = day.rows.mailboxes["email"].to_dict()
    return dg.MetadataValue.table(
        records=[dg.TableRecord(r) for r in placement.worst(emails, WORST)],
        schema=dg.TableSchema(
            columns=[dg.TableColumn(n, t) for n, t in _PLACEMENT_COLUMNS.items()]
        ),
    )


def metadata(day: Day, placement: DayPlacement) -> dict[str, Any]:
    """The materialization's metadata: numeric figures (plotted across days) and tables.

    The placement of the date's mail (`fill.placement`: inbox, spam and not-found counts and
    rates, bounces, auth failures, mail not placed yet) sits beside the fill figures.
    """
    return {
        **day.figures,
        **placement.figures,
        "day_closed": day.closed,
        "worst_mailboxes": _worst(day),
        "worst_placement": _worst_placed(day, placement),
        "failures_by_reason": _md_table(("reason", "failed jobs"), list(day.failures.items())),
        "sends_per_hour": _md_table(
            ("hour (UTC)", "sends"), [(f"{h:%Y-%m-%d %H}:00", n) for h, n in day.hourly.items()]
        ),
    }


def _result(verdict: Verdict) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=verdict.name,
        passed=verdict.passed,
        severity=dg.AssetCheckSeverity.WARN if verdict.warn else dg.AssetCheckSeverity.ERROR,
        description=verdict.description,
        metadata=verdict.metadata,
    )


@dg.asset(
    partitions_def=fill_days,
    group_name="reports",
    kinds={"pandas", "sql"},
    check_specs=[
        dg.AssetCheckSpec(name, asset="fill_rate", description=text)
        for name, text in DESCRIPTIONS.items()
    ],
)
def fill_rate(context: dg.AssetExecutionContext, warmup_db: WarmupDatabase) -> dg.MaterializeResult:
    """How well one local date filled: per mailbox and per day, from the send log and plans.

    A partition is a local date (the mailboxes' own days). The figures: emails sent, mean
    fill, mailboxes under quota and by how much, failures by reason, lateness against the
    planned slots (p50, p95), sends per hour, late outcomes; the worst mailboxes in a table;
    where the date's mail landed (inbox, spam and not-found rates, the senders with mail in
    spam or not found in a table).
    Each materialization runs the five checks on the same figures (quota met, rules held,
    plan feasible, counters agree, no stuck jobs), each against its `WARMUP_*` threshold.
    Materializing a past date again recomputes it; backfill a range for history.
    """
    when, now = date.fromisoformat(context.partition_key), warmup_db.clock.now()
    first_kept = cutoff(now, warmup_db.settings.retention_days)
    if first_kept is not None and when < first_kept and recorded_dates(context.instance, [when]):
        raise dg.Failure(
            description=f"{when} is past retention (dates before {first_kept} are pruned,"
            " WARMUP_RETENTION_DAYS): its rows may be gone, and its last materialization is"
            " its record; recomputing it would record what is left over it"
        )
    day = fill.load(warmup_db.engine, warmup_db.settings, when, now)
    verdicts = evaluate(day, fill.mismatches(warmup_db.engine, day))
    placement = load_placement(warmup_db.engine, when)
    figures = day.figures
    context.log.info(
        f"{day.day}: {figures['sent']:,} of a quota of {figures['quota']:,} sent by"
        f" {figures['mailboxes']:,} mailboxes; {figures['mailboxes_under_quota']:,} under quota"
        + ("" if day.closed else " (its windows are still open)")
    )
    for verdict in verdicts:
        if not verdict.passed:
            context.log.warning(f"{verdict.name}: {verdict.description}")
    return dg.MaterializeResult(
        metadata=metadata(day, placement), check_results=[_result(v) for v in verdicts]
    )


def recorded_dates(instance: dg.DagsterInstance, dates: Iterable[date]) -> set[date]:
    """The dates among `dates` whose `fill_rate` partition has a materialization: their
    figures are on record in Dagster, whatever becomes of their rows."""
    return {
        day
        for day in dates
        if instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=fill_rate.key, asset_partitions=[day.isoformat()]),
            limit=1,
        ).records
    }


def retention_release(settings: Settings, instance: dg.DagsterInstance) -> Release | None:
    """Which dates past retention may be pruned: with `WARMUP_RETENTION_REQUIRES_FILL_RATE`
    those with a `fill_rate` record (`recorded_dates`); without it, all (None)."""
    if not settings.retention_requires_fill_rate:
        return None
    return lambda dates: recorded_dates(instance, dates)
