"""Checking domains: one domain's five checks, and many domains at once with a bound.

A domain's checks run one after another (a few dozen lookups); domains run concurrently in a
thread pool of `WARMUP_DNS_CONCURRENCY`, sharing one resolver and its cache. DNS waits, not
CPU: 10,000 domains at 32 at once and a few tenths of a second each take minutes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed

from warmup_dagster.clock import Clock
from warmup_dagster.domains import config
from warmup_dagster.domains.blocklists import check_blocklists
from warmup_dagster.domains.model import Report, Target
from warmup_dagster.domains.records import check_dkim, check_dmarc, check_mx
from warmup_dagster.domains.resolver import Dns
from warmup_dagster.domains.spf_policy import check_spf
from warmup_dagster.settings import Settings


class Checker:
    """Checks domains with the deployment's resolver, selectors and blocklist zones."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.dns = Dns.from_settings(settings, clock)
        self.selectors = config.selectors(settings.dkim_selectors)
        self.zones = config.zones(settings.dnsbl_zones)
        self.concurrency = settings.dns_concurrency

    def check(self, target: Target, selectors: tuple[str, ...] = ()) -> Report:
        """Every check of one domain; `selectors` overrides the configured ones."""
        domain = target.domain.rstrip(".").lower()
        chosen = selectors or self.selectors.get(domain, ())
        return Report(
            domain,
            (
                check_mx(self.dns, domain),
                check_spf(self.dns, domain, target.smtp_hosts),
                check_dkim(self.dns, domain, chosen),
                check_dmarc(self.dns, domain),
                check_blocklists(self.dns, domain, target.smtp_hosts, self.zones),
            ),
        )

    def check_all(self, targets: Iterable[Target]) -> Iterator[Report]:
        """Reports as the domains finish, at most `WARMUP_DNS_CONCURRENCY` at once."""
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="domain-check") as pool:
            futures = [pool.submit(self.check, t) for t in targets]
            for future in as_completed(futures):
                yield future.result()
