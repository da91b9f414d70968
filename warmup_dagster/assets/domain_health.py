"""The `domain_health` asset: every sending domain's MX, SPF, DKIM, DMARC and blocklists."""

from typing import Any

import dagster as dg

from warmup_dagster.domains import store, text
from warmup_dagster.domains.checker import Checker
from warmup_dagster.resources import WarmupDatabase

# Domains in the metadata's table of those that fail or warn (the rest: the CLI).
TABLE_DOMAINS = 100


class DomainHealthConfig(dg.Config):
    """Which domains a run checks: `domains` (empty: the whole pool), or only the pool's
    domains that have no results yet (`unchecked_only`, what an import launches)."""

    domains: list[str] = []
    unchecked_only: bool = False


@dg.asset(group_name="pool", kinds={"sql"})
def domain_health(
    context: dg.AssetExecutionContext, config: DomainHealthConfig, warmup_db: WarmupDatabase
) -> dg.MaterializeResult:
    """Each sending domain's checks: MX, SPF (does it authorise the mailboxes' SMTP hosts),
    DKIM, DMARC and the configured DNS blocklists, pass/warn/fail with what to fix.

    Domains are checked `WARMUP_DNS_CONCURRENCY` at once and their latest results kept in
    `domain_checks`, which planning reads: with `WARMUP_DOMAIN_GATE=hold` a domain failing
    SPF or DMARC gets no quota, and a listed domain sends `WARMUP_DNSBL_THROTTLE` of it. The
    metadata counts every stored domain by status and tables the failing ones.
    """
    engine, settings = warmup_db.engine, warmup_db.settings
    if config.unchecked_only:
        wanted: list[str] | None = store.unchecked(engine)
    else:
        wanted = config.domains or None
    targets = store.targets(engine, wanted)
    checker = Checker(settings, warmup_db.clock)
    reports = []

    def progress() -> Any:
        for n, report in enumerate(checker.check_all(targets), start=1):
            reports.append(report)
            if n % 1000 == 0:
                context.log.info(f"{n:,} of {len(targets):,} domains checked")
            yield report

    checked = store.save(engine, progress(), warmup_db.clock.now())
    gone = store.forget_gone(engine) if wanted is None else 0
    figures = store.counts(engine)
    failing = [r for r in reports if r.gate_reason]
    for report in failing[:20]:
        context.log.warning(f"{report.domain}: {report.gate_reason}")
    context.log.info(f"{checked:,} domains checked, {gone:,} no longer in the pool removed")
    shown = store.not_passing(engine, TABLE_DOMAINS)
    more = figures["domains_warn"] + figures["domains_fail"] - len(shown)
    return dg.MaterializeResult(
        metadata={
            **figures,
            "domains_checked": checked,
            "gate": settings.domain_gate,
            "failing_domains": dg.MetadataValue.md(text.markdown(shown, more)),
        }
    )
