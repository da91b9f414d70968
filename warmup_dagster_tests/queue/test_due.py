"""What is due: the earliest claimable jobs of active mailboxes, across both claimable statuses,
in due order, on both databases."""

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from warmup_dagster.db.models import JobStatus, MailboxState
from warmup_dagster.queue.due import earliest_due, next_due
from warmup_dagster_tests.factories import add_job, add_mailbox, add_user

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _at(minutes: int) -> datetime:
    return NOW.replace(hour=8) + timedelta(minutes=minutes)


def test_the_earliest_due_jobs_are_taken_across_statuses_in_due_order(engine, cipher):
    with Session(engine) as session, session.begin():
        user = add_user(session, "owner", NOW)
        box = add_mailbox(session, user, "a@one.example", NOW, cipher)
        paused = add_mailbox(session, user, "p@two.example", NOW, cipher, state=MailboxState.PAUSED)
        for minutes, status in [(10, JobStatus.PENDING), (5, JobStatus.RETRY),
                                (20, JobStatus.PENDING), (90, JobStatus.RETRY),
                                (1, JobStatus.SENT)]:  # fmt: skip
            add_job(session, box, paused, _at(minutes), status)
        add_job(session, paused, box, _at(0), JobStatus.PENDING)  # a paused mailbox's

    assert next_due(engine) == _at(5)
    with engine.begin() as conn:
        assert [r.due_at for r in earliest_due(conn, NOW, 2)] == [_at(5), _at(10)]
    with engine.begin() as conn:
        assert [r.due_at for r in earliest_due(conn, NOW, 5)] == [_at(5), _at(10), _at(20)]
