"""Enqueueing: planned sends and replies through one writer, on both databases."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster.db.models import JobKind, JobStatus, WarmupJob
from warmup_dagster.queue.enqueue import JobWriter, NewJob, enqueue, replace_unattempted
from warmup_dagster_tests.factories import add_mailbox, add_user

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DUE = NOW + timedelta(hours=1)


@pytest.fixture
def boxes(engine, cipher):
    with Session(engine) as session, session.begin():
        user = add_user(session, "owner", NOW)
        a = add_mailbox(session, user, "a@one.example", NOW, cipher)
        b = add_mailbox(session, user, "b@two.example", NOW, cipher)
        return user.id, a.id, b.id


def reply_to(user, box, **changes):
    job = NewJob(
        JobKind.REPLY, box, user, DUE.date(), 'odd,"name"@two.example', DUE,
        message_id="<r1@one.example>", token="tok", subject="Re: lunch, \"today\"",
        body='Yes,\nsee you "there".\r\n', in_reply_to="<m1@two.example>",
        references="<m0@two.example> <m1@two.example>",
    )  # fmt: skip
    return replace(job, **changes)


def stored(engine):
    with Session(engine) as session:
        return list(session.scalars(select(WarmupJob).order_by(WarmupJob.id)))


def test_sends_and_a_reply_go_through_one_writer(engine, boxes):
    user, a, b = boxes
    reply = reply_to(user, a, parent_job_id=None)
    with engine.begin() as conn, JobWriter(conn, NOW) as writer:
        writer.add_sends(a, user, DUE.date(), [(b, "b@two.example", DUE, 7)])
        writer.add(reply)
        writer.add_sends(b, user, DUE.date(), [(a, "a@one.example", DUE, 2**62)])
    jobs = stored(engine)  # in no particular id order: sends and replies go in separate COPYs
    assert len(jobs) == 3
    [send_a] = [j for j in jobs if j.kind is JobKind.SEND and j.mailbox_id == a]
    [send_b] = [j for j in jobs if j.kind is JobKind.SEND and j.mailbox_id == b]
    [answer] = [j for j in jobs if j.kind is JobKind.REPLY]
    for job in (send_a, answer, send_b):
        assert (job.status, job.attempts, job.created_at) == (JobStatus.PENDING, 0, NOW)
        assert job.scheduled_at == job.due_at == DUE
    assert (send_a.kind, send_a.recipient_mailbox_id, send_a.content_seed) == (JobKind.SEND, b, 7)
    assert send_a.message_id is send_a.subject is send_a.body is send_a.references is None
    assert send_b.content_seed == 2**62
    assert answer.kind is JobKind.REPLY and answer.recipient_email == reply.recipient_email
    for name in ("message_id", "token", "subject", "body", "in_reply_to", "references"):
        assert getattr(answer, name) == getattr(reply, name), name
    assert answer.recipient_mailbox_id is None and answer.parent_job_id is None


@pytest.mark.parametrize("field", ["message_id", "subject", "body", "in_reply_to", "references"])
def test_a_reply_without_its_thread_is_refused_naming_the_field(engine, boxes, field):
    user, a, _ = boxes
    with engine.begin() as conn, pytest.raises(ValueError, match=f"needs its {field}"):
        enqueue(conn, NOW, [reply_to(user, a, **{field: None})])
    assert stored(engine) == []


def test_a_naive_due_time_is_refused(engine, boxes):
    user, a, _ = boxes
    with engine.begin() as conn, pytest.raises(ValueError, match="due_at must carry a timezone"):
        enqueue(conn, NOW, [reply_to(user, a, due_at=DUE.replace(tzinfo=None))])


def test_replanning_replaces_only_unattempted_sends(engine, boxes):
    user, a, b = boxes
    with engine.begin() as conn:
        enqueue(conn, NOW, [reply_to(user, a)])
        with JobWriter(conn, NOW) as writer:
            writer.add_sends(a, user, DUE.date(), [(b, "b@two.example", DUE, s) for s in (1, 2)])
    with Session(engine) as session, session.begin():
        tried = session.scalars(select(WarmupJob).where(WarmupJob.content_seed == 2)).one()
        tried.attempts = 1  # held back by a paused mailbox: pending again, but attempted
    with engine.begin() as conn:
        assert replace_unattempted(conn, {DUE.date(): [a]}) == 1
    assert sorted((j.kind.name, j.content_seed) for j in stored(engine)) == [
        ("REPLY", 0),
        ("SEND", 2),
    ]
