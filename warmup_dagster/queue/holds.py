"""Mailboxes that may not send for now, whatever the job: the claim holds their jobs.

Planning already gives these mailboxes no quota (`health.gate`, `domains.gate`), but jobs
queued before the verdict, and replies, which the receiving side queues at any time, are not
planned. A real person whose mailbox is paused answers nothing either, so the claim holds
every job of such a mailbox, SEND and REPLY alike:

- its health is PAUSED (`mailbox_health`, "health paused: <reasons>");
- its domain is held by the domain gate (`WARMUP_DOMAIN_GATE=hold` and a failing SPF or
  DMARC, "held: domain <domain> fails <checks>").

A held job is deferred by `RECHECK` (clock time) with the reason as its `waiting: ...` error,
and refused as expired once its day is over, like a job waiting for a cap: when the verdict
or the check changes within its day, it goes. The owner's own pause (`mailboxes.state`) keeps
jobs out of the claim altogether (`due.due_jobs`). A blocklisted domain's or a THROTTLED
mailbox's throttle stays planning's: those mailboxes still send, less.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.engine import Connection

from warmup_dagster.db.models import DomainCheck, Mailbox, MailboxHealth
from warmup_dagster.domains import gate as domain_gate
from warmup_dagster.health import gate as health_gate
from warmup_dagster.settings import Settings

# How long a held job waits before the claim looks at its mailbox again (clock time): health
# is judged every WARMUP_HEALTH_INTERVAL_SECONDS (an hour by default) and a domain check or a
# by-hand `warmup domains check` may lift a hold at any time; a quarter of an hour costs a
# claim one look at each held job four times an hour.
RECHECK = timedelta(minutes=15)


def held(conn: Connection, settings: Settings, mailbox_ids: Collection[int]) -> dict[int, str]:
    """Mailbox id -> why it may not send now, for those of `mailbox_ids` that may not.

    One read by primary keys (the mailboxes, their health rows, their domains' checks).
    """
    if not mailbox_ids:
        return {}
    query = (
        select(Mailbox.id, Mailbox.domain, *health_gate.COLUMNS, *domain_gate.COLUMNS)
        .select_from(Mailbox)
        .outerjoin(MailboxHealth, MailboxHealth.mailbox_id == Mailbox.id)
        .outerjoin(DomainCheck, DomainCheck.domain == Mailbox.domain)
        .where(Mailbox.id.in_(sorted(mailbox_ids)))
    )
    found = {}
    for row in conn.execute(query):
        throttle, health_reason = health_gate.limits(row, settings)
        reasons = [health_reason] if throttle <= 0 else []
        domain_held = domain_gate.limits(row, settings).held
        if domain_held:
            reasons.append(domain_held)
        if reasons:
            found[row.id] = "; ".join(reasons)
    return found
