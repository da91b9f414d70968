"""`warmup domains check [DOMAIN]`: the domain checks on a terminal, with what to fix.

Registered on the `warmup` group by `cli.py`; takes its `App` (settings, engine, clock) from
the click context.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from warmup_dagster.domains import store, text
from warmup_dagster.domains.checker import Checker
from warmup_dagster.domains.config import HOLD
from warmup_dagster.domains.model import Report, Status, Target
from warmup_dagster.settings import Settings

if TYPE_CHECKING:
    from warmup_dagster.cli_app import App


@click.group()
def domains() -> None:
    """Check the sending domains: MX, SPF, DKIM, DMARC and DNS blocklists."""


def _note(report: Report, settings: Settings, in_pool: bool) -> str:
    notes = []
    if not in_pool:
        notes.append("no mailbox of the pool is on it: not stored")
    elif report.gate_reason:
        notes.append(
            "held out of planning until fixed (WARMUP_DOMAIN_GATE=hold)"
            if settings.domain_gate == HOLD
            else "flagged; still planned (WARMUP_DOMAIN_GATE=flag)"
        )
    if in_pool and report.listings:
        notes.append(
            f"blocklisted: its mailboxes send {settings.dnsbl_throttle:.0%} of their quota"
        )
    return "; ".join(notes)


@domains.command("check")
@click.argument("domain", required=False)
@click.option(
    "--selector", "selectors", multiple=True, help="DKIM selector to look for (repeatable)."
)
@click.option(
    "--smtp-host",
    "smtp_hosts",
    multiple=True,
    help="SMTP host whose addresses SPF must authorise (repeatable); the mailboxes' by default.",
)
@click.pass_obj
def check(
    app: App, domain: str | None, selectors: tuple[str, ...], smtp_hosts: tuple[str, ...]
) -> None:
    """Check DOMAIN, or every domain of the pool, and store the results planning reads.

    Prints each check with what to fix; exits 1 if any domain fails a check.
    """
    checker = Checker(app.settings, app.clock)
    if domain is not None:
        domain = domain.strip().rstrip(".").lower()
        found = store.targets(app.engine, [domain])
        in_pool = bool(found)
        hosts = tuple(sorted({*(found[0].smtp_hosts if found else ()), *smtp_hosts}))
        reports = [checker.check(Target(domain, hosts), selectors)]
    else:
        targets = store.targets(app.engine)
        if not targets:
            click.echo("no mailboxes yet: import some with `warmup mailboxes import`")
            return
        in_pool = True
        reports = sorted(checker.check_all(targets), key=lambda r: r.domain)
    if in_pool:
        store.save(app.engine, reports, app.clock.now())
        if domain is None:
            store.forget_gone(app.engine)
    for report in reports:
        click.echo("\n".join(text.terminal(report, _note(report, app.settings, in_pool))))
    if len(reports) > 1:
        click.echo(text.summary(reports))
    if any(r.status == Status.FAIL for r in reports):
        sys.exit(1)
