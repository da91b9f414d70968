"""The data model's guarantees, on SQLite and PostgreSQL alike."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from warmup_dagster.db.models import JobStatus, Mailbox, SendLog, WarmupJob
from warmup_dagster.queue.counting import count_sends, count_sends_by
from warmup_dagster_tests.factories import add_job, add_mailbox, add_user, log_send


@pytest.fixture
def pool(engine, clock, cipher):
    """Two users: ann with two mailboxes, bob with one; ids by name."""
    now = clock.now()
    with Session(engine) as s, s.begin():
        ann, bob = add_user(s, "ann", now), add_user(s, "bob", now)
        a1 = add_mailbox(s, ann, "a1@ann.example", now, cipher)
        a2 = add_mailbox(s, ann, "a2@ann.example", now, cipher)
        b1 = add_mailbox(s, bob, "b1@bob.example", now, cipher)
        ids = {"ann": ann.id, "bob": bob.id, "a1": a1.id, "a2": a2.id, "b1": b1.id}
    return ids


def _job_row(pool, status_text: str) -> str:
    return (
        "INSERT INTO warmup_jobs (kind, mailbox_id, user_id, recipient_email, local_date, "
        "scheduled_at, due_at, status, attempts, message_id, subject, body, token, created_at, "
        f"updated_at) VALUES ('SEND', {pool['a1']}, {pool['ann']}, 'b1@bob.example', "
        "'2026-03-02', '2026-03-02 07:00:00+00', '2026-03-02 07:00:00+00', "
        f"'{status_text}', 0, '<x-{status_text}@ann.example>', 's', 'b', 't', "
        "'2026-03-02 07:00:00+00', '2026-03-02 07:00:00+00')"
    )


@pytest.mark.parametrize("bad", ["sent", "Sent", "pending", "DONE", ""])
def test_database_refuses_a_status_outside_the_enum(engine, pool, bad):
    """The system this project replaces wrote `SENT` and counted `sent`.

    The database takes only the canonical spelling.
    """
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(_job_row(pool, bad)))
    with engine.begin() as conn:  # the canonical value goes in through the same statement
        conn.execute(text(_job_row(pool, "SENT")))
        assert conn.scalar(text("SELECT count(*) FROM warmup_jobs")) == 1


def test_python_side_refuses_lower_case_status(engine):
    """Even a query can't compare against a misspelled status: it fails instead of matching 0."""
    with pytest.raises(ValueError):
        JobStatus("sent")
    with Session(engine) as s, pytest.raises(StatementError):
        s.execute(select(WarmupJob).where(WarmupJob.status == "sent"))


def test_sent_jobs_are_counted_the_way_they_are_written(engine, pool, clock):
    """The replaced system's bug replayed: sends written through the model are what is counted."""
    now = clock.now()
    with Session(engine) as s, s.begin():
        a1, b1 = s.get(Mailbox, pool["a1"]), s.get(Mailbox, pool["b1"])
        for minute in range(3):
            job = add_job(s, a1, b1, now + timedelta(minutes=minute), JobStatus.SENT)
            log_send(s, job, now + timedelta(minutes=minute))
        failed = add_job(s, a1, b1, now, JobStatus.FAILED)
        log_send(s, failed, now, JobStatus.FAILED)
    with Session(engine) as s:
        day = (now, now + timedelta(days=1))
        assert count_sends(s, *day, mailbox_id=pool["a1"]) == 3
        assert count_sends(s, *day, user_id=pool["ann"]) == 3
        assert count_sends(s, *day, user_id=pool["bob"]) == 0
        assert count_sends(s, *day) == 3


def test_a_late_send_is_on_record_and_counted_nowhere(engine, pool, clock):
    """The outcome of an attempt that had lost its job (see `warmup_dagster.queue`)."""
    now = clock.now()
    with Session(engine) as s, s.begin():
        a1, b1 = s.get(Mailbox, pool["a1"]), s.get(Mailbox, pool["b1"])
        job = add_job(s, a1, b1, now, JobStatus.SENT)
        log_send(s, job, now)
        log_send(s, job, now).late = True  # the duplicate: its run reported after a reclaim
    with Session(engine) as s:
        day = (now, now + timedelta(days=1))
        assert count_sends(s, *day) == 1
        assert count_sends_by(s, "mailbox", *day, local_date=now.date()) == {pool["a1"]: 1}
        assert s.scalar(select(func.count()).select_from(SendLog)) == 2


def test_counting_by_local_date_tells_apart_days_that_overlap_in_time(engine, pool, clock):
    """One instant is Monday in Berlin and still Sunday in New York: sends count for the
    local date of their job, whatever the time range."""
    now = clock.now()
    monday, sunday = now.date(), now.date() - timedelta(days=1)
    with Session(engine) as s, s.begin():
        a1, b1 = s.get(Mailbox, pool["a1"]), s.get(Mailbox, pool["b1"])
        for day, n in ((monday, 2), (sunday, 3)):
            for _ in range(n):
                log_send(s, add_job(s, a1, b1, now, JobStatus.SENT, local_date=day), now)
    wide = (now - timedelta(days=1), now + timedelta(days=1))
    with Session(engine) as s:
        assert count_sends_by(s, "user", *wide) == {pool["ann"]: 5}
        assert count_sends_by(s, "user", *wide, local_date=monday) == {pool["ann"]: 2}
        assert count_sends_by(s, "mailbox", *wide, local_date=sunday) == {pool["a1"]: 3}


def test_counting_respects_the_half_open_range_and_groups(engine, pool, clock):
    now = clock.now()
    with Session(engine) as s, s.begin():
        boxes = {k: s.get(Mailbox, pool[k]) for k in ("a1", "a2", "b1")}
        for sender, to, offset in [
            ("a1", "b1", 0),
            ("a1", "b1", 59),
            ("a2", "b1", 30),
            ("b1", "a1", 10),
            ("b1", "a2", 60),  # exactly at `until`: not counted
            ("a1", "b1", -1),  # before `since`: not counted
        ]:
            at = now + timedelta(minutes=offset)
            log_send(s, add_job(s, boxes[sender], boxes[to], at, JobStatus.SENT), at)
    since, until = now, now + timedelta(hours=1)
    with Session(engine) as s:
        assert count_sends_by(s, "mailbox", since, until) == {
            pool["a1"]: 2,
            pool["a2"]: 1,
            pool["b1"]: 1,
        }
        assert count_sends_by(s, "user", since, until) == {pool["ann"]: 3, pool["bob"]: 1}
        assert count_sends_by(s, "user", since, until, ids=[pool["bob"]]) == {pool["bob"]: 1}
        assert count_sends(s, since, until, mailbox_id=pool["a1"]) == 2


def test_message_ids_are_unique(engine, pool, clock):
    now = clock.now()
    with pytest.raises(IntegrityError), Session(engine) as s, s.begin():
        a1, b1 = s.get(Mailbox, pool["a1"]), s.get(Mailbox, pool["b1"])
        first = add_job(s, a1, b1, now, JobStatus.PENDING)
        second = add_job(s, a1, b1, now, JobStatus.PENDING)
        second.message_id = first.message_id
        s.flush()


def test_times_come_back_as_aware_utc(engine, pool, clock):
    from zoneinfo import ZoneInfo

    at = clock.now().astimezone(ZoneInfo("Asia/Kolkata"))
    with Session(engine) as s, s.begin():
        a1, b1 = s.get(Mailbox, pool["a1"]), s.get(Mailbox, pool["b1"])
        job_id = add_job(s, a1, b1, at, JobStatus.PENDING).id
    with Session(engine) as s:
        job = s.get(WarmupJob, job_id)
        assert job.scheduled_at == clock.now()
        assert job.scheduled_at.utcoffset() == timedelta(0)
