"""Reports in words: for a terminal (`warmup domains check`) and for the asset's metadata."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from warmup_dagster.domains.model import Report, Status

KIND_WIDTH = 10


def terminal(report: Report, note: str = "") -> list[str]:
    """A domain's status, then one line per check and, under each that is not right, its fix."""
    lines = [f"{report.domain}  {report.status.value}" + (f"  ({note})" if note else "")]
    for check in report.checks:
        lines.append(f"  {check.status.value:<4}  {check.kind:<{KIND_WIDTH}}  {check.detail}")
        if check.fix and check.status in (Status.FAIL, Status.WARN):
            lines.append(f"  {'':<4}  {'':<{KIND_WIDTH}}  fix: {check.fix}")
    return lines


def summary(reports: Iterable[Report]) -> str:
    """`3 domains: 1 pass, 1 warn, 1 fail`."""
    statuses = Counter(r.status for r in reports)
    shown = ", ".join(
        f"{statuses.get(s, 0)} {s.value.lower()}" for s in (Status.PASS, Status.WARN, Status.FAIL)
    )
    return f"{sum(statuses.values())} domains: {shown}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(reports: list[Report], more: int = 0) -> str:
    """A table of the checks that fail or warn of `reports`, failing domains first; `more`
    domains not shown are counted under it."""
    shown = sorted(
        (r for r in reports if r.status in (Status.FAIL, Status.WARN)),
        key=lambda r: (r.status != Status.FAIL, r.domain),
    )
    lines = ["| domain | status | check | found | what to fix |", "|---|---|---|---|---|"]
    for report in shown:
        for check in report.checks:
            if check.status in (Status.FAIL, Status.WARN):
                lines.append(
                    f"| {report.domain} | {check.status.value} | {check.kind} |"
                    f" {_cell(check.detail)} | {_cell(check.fix)} |"
                )
    if more > 0:
        lines.append(f"\n... and {more:,} more domains: `warmup domains check`")
    if not shown:
        lines.append("| (none) | | | | |")
    return "\n".join(lines)
