"""The `domain_checks` table: each sending domain's latest results. This module writes it.

A domain's row holds its checks as JSON, its status, the reason the gate would hold it
(failing SPF or DMARC) and whether a blocklist lists it, since when: the first check that
found it listed, kept while later checks still find it, cleared when none does.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, insert, select
from sqlalchemy.engine import Connection, Engine

from warmup_dagster.db.dialect import among
from warmup_dagster.db.engine import writing
from warmup_dagster.db.models import DomainCheck, DomainStatus, Mailbox
from warmup_dagster.domains.model import Check, Report, Status, Target

# Domains written per transaction while a run goes on: results stay visible as they come.
BATCH = 500


def targets(engine: Engine, domains: Collection[str] | None = None) -> list[Target]:
    """The pool's domains (or those of `domains` in it), each with its mailboxes' SMTP hosts."""
    hosts: dict[str, set[str]] = defaultdict(set)
    query = select(Mailbox.domain, Mailbox.smtp_host).distinct()
    with engine.connect() as conn:
        if domains is None:
            rows = conn.execute(query).all()
        else:
            wanted = [d.strip().lower() for d in domains]
            rows = [
                r
                for cond in among(conn, Mailbox.domain, wanted)
                for r in conn.execute(query.where(cond))
            ]
    for domain, host in rows:
        hosts[domain].add(host)
    return [Target(d, tuple(sorted(h))) for d, h in sorted(hosts.items())]


def unchecked(engine: Engine) -> list[str]:
    """The pool's domains that have no results yet (newly imported)."""
    with engine.connect() as conn:
        return list(
            conn.scalars(
                select(Mailbox.domain)
                .distinct()
                .outerjoin(DomainCheck, DomainCheck.domain == Mailbox.domain)
                .where(DomainCheck.domain.is_(None))
                .order_by(Mailbox.domain)
            )
        )


def _listed_since(conn: Connection, domains: list[str]) -> dict[str, datetime | None]:
    found: dict[str, datetime | None] = {}
    for cond in among(conn, DomainCheck.domain, domains):
        found.update(
            conn.execute(select(DomainCheck.domain, DomainCheck.listed_since).where(cond)).all()
        )
    return found


def _row(report: Report, now: datetime, since: datetime | None) -> dict[str, Any]:
    listed = bool(report.listings)
    return {
        "domain": report.domain,
        "status": DomainStatus[report.status.value],
        "checks": [c.as_json() for c in report.checks],
        "gate_reason": report.gate_reason,
        "listed": listed,
        "listed_since": (since or now) if listed else None,
        "checked_at": now,
    }


def save(engine: Engine, reports: Iterable[Report], now: datetime) -> int:
    """Store `reports` as each domain's latest results, `BATCH` domains a transaction.

    Returns the number of domains stored.
    """
    stored = 0
    batch: list[Report] = []

    def flush() -> None:
        domains = [r.domain for r in batch]
        with writing(engine) as conn:
            since = _listed_since(conn, domains)
            for cond in among(conn, DomainCheck.domain, domains):
                conn.execute(delete(DomainCheck).where(cond))
            conn.execute(insert(DomainCheck), [_row(r, now, since.get(r.domain)) for r in batch])
        batch.clear()

    for report in reports:
        batch.append(report)
        stored += 1
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    return stored


def forget_gone(engine: Engine) -> int:
    """Remove the results of domains no mailbox is on any more; returns how many."""
    pool = select(Mailbox.domain).distinct()
    with writing(engine) as conn:
        return conn.execute(delete(DomainCheck).where(DomainCheck.domain.not_in(pool))).rowcount


def reports(engine: Engine, domains: Collection[str] | None = None) -> list[tuple[Report, Any]]:
    """Stored reports with their rows (checked_at, listed_since), by domain."""
    query = select(DomainCheck).order_by(DomainCheck.domain)
    with engine.connect() as conn:
        if domains is None:
            rows = conn.execute(query).all()
        else:
            rows = [
                r
                for cond in among(conn, DomainCheck.domain, list(domains))
                for r in conn.execute(query.where(cond))
            ]
    return [
        (Report(row.domain, tuple(Check.from_json(c) for c in row.checks)), row) for row in rows
    ]


def not_passing(engine: Engine, limit: int) -> list[Report]:
    """Up to `limit` stored domains that fail or warn, failing ones first."""
    failing_first = case((DomainCheck.status == DomainStatus.FAIL, 0), else_=1)
    query = (
        select(DomainCheck.domain, DomainCheck.checks)
        .where(DomainCheck.status != DomainStatus.PASS)
        .order_by(failing_first, DomainCheck.domain)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [
            Report(domain, tuple(Check.from_json(c) for c in checks))
            for domain, checks in conn.execute(query)
        ]


def counts(engine: Engine) -> dict[str, int]:
    """Domains by status, and those listed and those the gate would hold."""
    with engine.connect() as conn:
        by_status = Counter(
            dict(
                conn.execute(
                    select(DomainCheck.status, func.count()).group_by(DomainCheck.status)
                ).all()
            )
        )
        listed = conn.scalar(select(func.count()).where(DomainCheck.listed)) or 0
        failing = conn.scalar(select(func.count()).where(DomainCheck.gate_reason.is_not(None))) or 0
    figures = {
        f"domains_{s.value.lower()}": by_status.get(DomainStatus[s.value], 0)
        for s in (Status.PASS, Status.WARN, Status.FAIL)
    }
    return {
        **figures,
        "domains": sum(by_status.values()),
        "domains_listed": listed,
        "domains_failing_spf_or_dmarc": failing,
    }
