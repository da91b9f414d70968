"""The minute caps hold at arrival: claims made in the arrival margin before a minute count
against that minute's caps too, on both databases."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from warmup_dagster.core.content import token_key
from warmup_dagster.db.models import JobStatus
from warmup_dagster.queue import claim
from warmup_dagster.settings import load_settings
from warmup_dagster_tests.conftest import TEST_SECRET
from warmup_dagster_tests.factories import add_job, add_mailbox, add_user

MINUTE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, inside the 06-22 UTC window


def _jobs(engine, cipher, n: int) -> None:
    """`n` jobs due, each of its own mailbox of one owner: only the owner's caps apply."""
    with Session(engine) as session, session.begin():
        user = add_user(session, "owner", MINUTE, plan="pro")
        for k in range(n):
            box = add_mailbox(session, user, f"box{k}@one.example", MINUTE, cipher)
            add_job(session, box, box, MINUTE - timedelta(hours=1), JobStatus.PENDING)


def _claim(engine, settings, at: datetime) -> int:
    return len(claim(engine, settings, lambda: at, "w1", 50, token_key(TEST_SECRET)).jobs)


@pytest.mark.parametrize(("margin", "next_minute"), [(30, 0), (0, 3)])
def test_claims_in_the_margin_before_a_minute_use_up_its_caps(engine, cipher, margin, next_minute):
    """Three claims at 09:00:50 may arrive after 09:01:00; with a 30 s margin the owner's
    3 a minute are used up for 09:01 too, and 09:02 has them again. With no margin (the old
    rule) 09:01 claims three more, and up to six could arrive in that minute."""
    _jobs(engine, cipher, 9)
    settings = load_settings(
        {"WARMUP_USER_SENDS_PER_MINUTE": "3", "WARMUP_ARRIVAL_MARGIN_SECONDS": str(margin)}
    )
    assert _claim(engine, settings, MINUTE + timedelta(seconds=50)) == 3
    assert _claim(engine, settings, MINUTE + timedelta(minutes=1, seconds=5)) == next_minute
    assert _claim(engine, settings, MINUTE + timedelta(minutes=2, seconds=5)) == 3


def test_claims_before_the_margin_are_their_own_minutes_only(engine, cipher):
    _jobs(engine, cipher, 6)
    settings = load_settings({"WARMUP_USER_SENDS_PER_MINUTE": "3"})
    assert _claim(engine, settings, MINUTE + timedelta(seconds=20)) == 3  # 40 s before 09:01
    assert _claim(engine, settings, MINUTE + timedelta(minutes=1, seconds=5)) == 3


def test_the_global_minute_cap_counts_every_owners_carried_claims(engine, cipher):
    _jobs(engine, cipher, 4)
    with Session(engine) as session, session.begin():
        other = add_user(session, "other", MINUTE, plan="pro")
        box = add_mailbox(session, other, "x@two.example", MINUTE, cipher)
        add_job(session, box, box, MINUTE - timedelta(hours=1), JobStatus.PENDING)
    settings = load_settings(
        {"WARMUP_GLOBAL_SENDS_PER_MINUTE": "4", "WARMUP_USER_SENDS_PER_MINUTE": "4"}
    )
    assert _claim(engine, settings, MINUTE + timedelta(seconds=45)) == 4
    assert _claim(engine, settings, MINUTE + timedelta(minutes=1, seconds=1)) == 0
    assert _claim(engine, settings, MINUTE + timedelta(minutes=2, seconds=1)) == 1
