"""`WARMUP_DAILY_VARIANCE` through planning, on SQLite and PostgreSQL."""

import io
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from warmup_dagster.db.models import Mailbox, WarmupJob
from warmup_dagster.mailboxes.importer import import_mailboxes
from warmup_dagster_tests.mailboxes.csvdata import csv_text
from warmup_dagster_tests.planning.conftest import pool_rows

LIMIT = 10


@pytest.fixture
def ramped_up(engine, cipher, clock):
    """48 mailboxes of 12 owners in 5 timezones whose ramp reached the daily limit long ago."""
    rows = pool_rows(owners=12, per_owner=4, daily_limit=LIMIT, ramp_start=1, ramp_step=1)
    import_mailboxes(engine, io.StringIO(csv_text(rows)), cipher=cipher, clock=clock)
    with Session(engine) as s, s.begin():
        s.execute(update(Mailbox).values(warmup_start_date=clock.now().date() - timedelta(days=30)))
    return [r["email"] for r in rows]


def _jobs_per_mailbox(engine, day) -> Counter:
    with Session(engine) as s:
        ids = s.scalars(select(WarmupJob.mailbox_id).where(WarmupJob.local_date == day)).all()
    return Counter(ids)


def test_without_variance_every_mailbox_is_planned_exactly_its_limit(
    engine, ramped_up, plan, clock
):
    monday = clock.now().date()  # 05:00 UTC: Monday's window is ahead in every zone of the pool
    plans = [
        p for p in plan(ramped_up, env={"WARMUP_DAILY_VARIANCE": "0"}) if p.local_date == monday
    ]
    assert len(plans) == 48
    assert all(p.quota.ramp == p.quota.value == LIMIT for p in plans)
    assert sum(p.planned for p in plans) == 480
    per_mailbox = _jobs_per_mailbox(engine, monday)
    assert len(per_mailbox) == 48 and set(per_mailbox.values()) == {LIMIT}


@pytest.mark.parametrize("variance", [None, "0.1", "0.4"])
def test_with_variance_quotas_vary_within_the_bound(engine, ramped_up, plan, clock, variance):
    share = 0.1 if variance is None else float(variance)  # unset: the default, a tenth
    env = {} if variance is None else {"WARMUP_DAILY_VARIANCE": variance}
    monday = clock.now().date()
    plans = [p for p in plan(ramped_up, env=env) if p.local_date == monday]
    quotas = [p.quota.value for p in plans]
    assert len(quotas) == 48 and all(p.quota.ramp == LIMIT for p in plans)
    # ramp x (1 + share x u) with u in [-1, 1), rounded, and never above the daily limit
    assert all(LIMIT * (1 - share) - 0.5 <= q <= LIMIT for q in quotas), quotas
    assert min(quotas) < LIMIT  # it does vary
    assert _jobs_per_mailbox(engine, monday) == {p.mailbox_id: p.quota.value for p in plans}
    replanned = plan(ramped_up, env=env, seed=7)
    again = {p.mailbox_id: p.quota.value for p in replanned if p.local_date == monday}
    assert again == {p.mailbox_id: p.quota.value for p in plans}  # the same figure when replanned
