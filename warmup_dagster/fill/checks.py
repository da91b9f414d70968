"""The fill rate's checks: each judges one local day against its `WARMUP_*` threshold.

Plain verdicts from a `fill.day.Day` (and the counter audit's mismatches), no Dagster: the
asset turns them into asset check results, with what failed named in the metadata.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from warmup_dagster.fill.day import Day
from warmup_dagster.queue.audit import Mismatch

# How many failing mailboxes, rule breaks, mismatches or jobs a verdict names.
NAMED = 20

QUOTA_MET = "quota_met"
RULES_HELD = "rules_held"
PLAN_FEASIBLE = "plan_feasible"
COUNTERS_AGREE = "counters_agree"
NO_STUCK_JOBS = "no_stuck_jobs"

DESCRIPTIONS = {
    QUOTA_MET: "At least WARMUP_QUOTA_MET_SHARE of the mailboxes with a quota sent at least "
    "WARMUP_FILL_THRESHOLD of it (a warning while the day's windows are still open).",
    RULES_HELD: "The day's send log breaks no rule (caps per minute and hour, global and per "
    "owner; the plans' daily limits; send windows; mailbox spacing) more than "
    "WARMUP_AUDIT_MAX_VIOLATIONS times, audited from the log and the settings alone.",
    PLAN_FEASIBLE: "Planning fit the day's quota under the caps: its shortfall is at most "
    "WARMUP_PLAN_MAX_SHORTFALL of the quota.",
    COUNTERS_AGREE: "The send counters agree with the send log in the hours of the day's "
    "claims (at most WARMUP_COUNTER_MAX_MISMATCHES disagree).",
    NO_STUCK_JOBS: "No job of the day is in flight for longer than WARMUP_STUCK_AFTER_LEASES x "
    "WARMUP_SEND_LEASE_SECONDS.",
}


@dataclass(frozen=True)
class Verdict:
    """One check's result on one day; `warn` marks a failure as a warning, not an error."""

    name: str
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)
    warn: bool = False


def _named(items: Sequence[Any]) -> str:
    lines = [str(item) for item in items[:NAMED]]
    if len(items) > NAMED:
        lines.append(f"... and {len(items) - NAMED} more")
    return "\n".join(lines)


def quota_met(day: Day) -> Verdict:
    settings = day.settings
    table = day.mailboxes
    with_quota = table[table["quota"] > 0]
    met = with_quota["sent"] >= settings.fill_threshold * with_quota["quota"]
    share = float(met.mean()) if len(with_quota) else 1.0
    below = with_quota[~met].sort_values("fill", kind="stable")
    passed = share >= settings.quota_met_share
    when = "" if day.closed else " so far (its windows are still open)"
    return Verdict(
        QUOTA_MET,
        passed,
        f"{day.day}: {met.sum()} of {len(with_quota)} mailboxes ({share:.1%}) sent at least"
        f" {settings.fill_threshold:.0%} of their quota{when}; at least"
        f" {settings.quota_met_share:.0%} must",
        {
            "share_met": round(share, 4),
            "mailboxes_below": len(below),
            "below": _named([f"{email}: {r.sent} of {r.quota}" for email, r in below.iterrows()]),
        },
        warn=not day.closed,
    )


def rules_held(day: Day) -> Verdict:
    found = day.violations
    allowed = day.settings.audit_max_violations
    by_rule = Counter(v.rule for v in found)
    return Verdict(
        RULES_HELD,
        len(found) <= allowed,
        f"{day.day}: {len(found)} rule breaks in the send log (at most {allowed} allowed)"
        + "".join(f"; {rule}: {n}" for rule, n in sorted(by_rule.items())),
        {"violations": len(found), **dict(by_rule), "named": _named(found)},
    )


def plan_feasible(day: Day) -> Verdict:
    quotas = day.rows.quotas
    quota, shortfall = int(quotas["quota"].sum()), int(quotas["shortfall"].sum())
    share = shortfall / quota if quota else 0.0
    allowed = day.settings.plan_max_shortfall
    short = quotas[quotas["shortfall"] > 0].sort_values("shortfall", ascending=False)
    emails = day.rows.mailboxes["email"]
    return Verdict(
        PLAN_FEASIBLE,
        share <= allowed,
        f"{day.day}: planning could not fit {shortfall} of the quota of {quota} ({share:.1%});"
        f" at most {allowed:.0%} may be left out",
        {
            "planned_shortfall": shortfall,
            "share": round(share, 4),
            "mailboxes_short": _named(
                [
                    f"{emails.get(box, box)}: {r.shortfall} ({r.reason})"
                    for box, r in short.iterrows()
                ]
            ),
        },
    )


def counters_agree(day: Day, mismatches: list[Mismatch] | None) -> Verdict:
    """`mismatches` is None when the day's counters are pruned already (not checked)."""
    if mismatches is None:
        return Verdict(
            COUNTERS_AGREE,
            True,
            f"{day.day}: not checked, the counters of its hours are pruned already",
            {"checked": False},
        )
    allowed = day.settings.counter_max_mismatches
    return Verdict(
        COUNTERS_AGREE,
        len(mismatches) <= allowed,
        f"{day.day}: {len(mismatches)} counters disagree with the send log (at most {allowed})",
        {"checked": True, "mismatches": len(mismatches), "named": _named(mismatches)},
    )


def no_stuck_jobs(day: Day) -> Verdict:
    stuck = day.stuck().sort_values("picked_at", kind="stable")
    settings = day.settings
    limit = settings.send_lease_seconds * settings.stuck_after_leases
    return Verdict(
        NO_STUCK_JOBS,
        stuck.empty,
        f"{day.day}: {len(stuck)} jobs in flight for more than {limit:.0f} s of clock time",
        {
            "stuck": len(stuck),
            "named": _named(
                [
                    f"job {r.job} of {r.email}, claimed at {r.picked_at:%Y-%m-%d %H:%M:%S} UTC"
                    for r in stuck.itertuples()
                ]
            ),
        },
    )


def evaluate(day: Day, mismatches: list[Mismatch] | None) -> list[Verdict]:
    """Every check's verdict on `day`, in the order of `DESCRIPTIONS`."""
    return [
        quota_met(day),
        rules_held(day),
        plan_feasible(day),
        counters_agree(day, mismatches),
        no_stuck_jobs(day),
    ]
