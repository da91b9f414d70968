"""Leases: how long a claimed job stays its run's before another claim may take it over."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.engine import Engine

from warmup_dagster.db.engine import chunks, writing
from warmup_dagster.db.models import WarmupJob
from warmup_dagster.queue.states import IN_FLIGHT


def extend_leases(engine: Engine, worker_id: str, job_ids: Iterable[int], until: datetime) -> None:
    """Keep the jobs this worker still holds from being reclaimed while it works on them.

    An ordinary write transaction, never the claim lock: a renewal must not wait behind claims.
    """
    with writing(engine) as conn:
        for part in chunks(sorted(job_ids)):
            conn.execute(
                update(WarmupJob)
                .where(
                    WarmupJob.id.in_(part),
                    WarmupJob.worker_id == worker_id,
                    WarmupJob.status == IN_FLIGHT,
                )
                .values(lease_expires_at=until)
            )
