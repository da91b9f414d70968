"""Migrations go up and down on both databases, and match the models exactly."""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from warmup_dagster.db import migrate
from warmup_dagster.db.engine import make_engine
from warmup_dagster.db.models import Base, JobStatus
from warmup_dagster_tests.factories import add_job, add_mailbox, add_user

TABLES = {
    "plans",
    "users",
    "mailboxes",
    "warmup_jobs",
    "send_log",
    "clock_anchors",
    "daily_quotas",
    "send_counters",
    "send_totals",
    "engagements",
    "engagement_mailboxes",
    "imap_refusals",
    "domain_checks",
    "secret_key_check",
    "mailbox_health",
    "mailbox_oauth",
    "run_beats",
}


def _mailbox_at_head(engine, at, cipher) -> SimpleNamespace:
    """A user and mailbox written at head, as the fields `add_job` reads: a test that then
    steps down writes its rows into the older schema, which the ORM's mailbox no longer
    matches (it inserts every column, `display_name` included)."""
    with Session(engine) as session, session.begin():
        box = add_mailbox(session, add_user(session, "owner", at), "a@one.example", at, cipher)
        return SimpleNamespace(id=box.id, user_id=box.user_id, domain=box.domain, email=box.email)


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_then_downgrade_then_upgrade(empty_db_url):
    assert _tables(empty_db_url) == set()
    migrate.upgrade(empty_db_url)
    assert _tables(empty_db_url) == TABLES
    assert migrate.current_revision(empty_db_url) == migrate.head_revision()

    migrate.downgrade(empty_db_url, "base")
    assert _tables(empty_db_url) == set()
    assert migrate.current_revision(empty_db_url) is None

    migrate.upgrade(empty_db_url)
    assert _tables(empty_db_url) == TABLES


def test_each_revision_steps_up_and_down(empty_db_url):
    """Every migration is applied and reverted on its own, in order."""
    revisions = []
    while migrate.current_revision(empty_db_url) != migrate.head_revision():
        migrate.upgrade(empty_db_url, "+1")
        revisions.append(migrate.current_revision(empty_db_url))
    assert revisions == sorted(revisions) and len(revisions) >= 2
    for expected in [*reversed(revisions[:-1]), None]:
        migrate.downgrade(empty_db_url, "-1")
        assert migrate.current_revision(empty_db_url) == expected
    assert _tables(empty_db_url) == set()


def test_upgrade_is_idempotent_and_seeds_plans_once(empty_db_url):
    migrate.upgrade(empty_db_url)
    migrate.upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    with engine.connect() as conn:
        names = conn.scalars(text("SELECT name FROM plans ORDER BY name")).all()
    engine.dispose()
    assert names == ["default", "enterprise", "pro"]


def test_migrated_schema_matches_the_models(db_url):
    """Autogenerate finds nothing to do: the migrations and the models describe one schema."""
    engine = make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    engine.dispose()
    assert diff == []


def test_downgrade_below_0004_gives_unattempted_jobs_a_placeholder_id(db_url, cipher):
    """Jobs planned since 0004 have no Message-ID; the older schema requires one."""
    engine = make_engine(db_url)
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    with Session(engine) as session, session.begin():
        box = add_mailbox(session, add_user(session, "owner", at), "a@one.example", at, cipher)
        planned = add_job(session, box, box, at, JobStatus.PENDING, message_id=None, token=None)
        sent = add_job(session, box, box, at, JobStatus.SENT)
        ids = {planned.id: f"<unattempted-{planned.id}@invalid>", sent.id: sent.message_id}
    migrate.downgrade(db_url, "0003")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, message_id FROM warmup_jobs")).all()
    assert dict(rows) == ids
    migrate.upgrade(db_url)
    assert migrate.current_revision(db_url) == migrate.head_revision()
    engine.dispose()


def test_0006_marks_no_existing_entry_late_and_steps_down(db_url, cipher):
    """Entries written before 0006 are not late; going down drops the mark, keeping them."""
    engine = make_engine(db_url)
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    box = _mailbox_at_head(engine, at, cipher)
    migrate.downgrade(db_url, "0005")
    with Session(engine) as session, session.begin():
        job = add_job(session, box, box, at, JobStatus.SENT)
        session.execute(
            text(
                "INSERT INTO send_log (job_id, mailbox_id, user_id, kind, recipient_email, "
                "message_id, status, attempt, created_at) VALUES "
                f"({job.id}, {box.id}, {box.user_id}, 'SEND', 'b@two.example', 'm', 'SENT', 1, "
                "'2026-03-02 09:00:00+00')"
            )
        )
    migrate.upgrade(db_url, "0006")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status, late FROM send_log")).all() == [("SENT", False)]
    migrate.downgrade(db_url, "0005")
    columns = {c["name"] for c in inspect(engine).get_columns("send_log")}
    assert "late" not in columns and "local_date" in columns
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM send_log")) == 1
    migrate.upgrade(db_url)
    engine.dispose()


def test_0008_adds_up_the_sends_already_logged_and_steps_down(db_url, cipher):
    """The sent totals start equal to the log's sends that count (late rows and other
    statuses left out); going down drops the table and keeps the log."""
    engine = make_engine(db_url)
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    box = _mailbox_at_head(engine, at, cipher)
    migrate.downgrade(db_url, "0007")
    assert "send_totals" not in _tables(db_url)
    with Session(engine) as session, session.begin():
        job = add_job(session, box, box, at, JobStatus.SENT)
        for kind, status, late in [
            ("SEND", "SENT", False), ("SEND", "SENT", False), ("SEND", "SENT", True),
            ("SEND", "FAILED", False), ("REPLY", "SENT", False),
        ]:  # fmt: skip
            session.execute(
                text(
                    "INSERT INTO send_log (job_id, mailbox_id, user_id, kind, recipient_email, "
                    "message_id, status, attempt, late, created_at) VALUES (:job, :box, :user, "
                    ":kind, 'b@two.example', 'm', :status, 1, :late, :at)"
                ),
                dict(job=job.id, box=box.id, user=box.user_id, kind=kind, status=status,
                     late=late, at=at),
            )  # fmt: skip
    migrate.upgrade(db_url, "0008")
    with engine.connect() as conn:
        totals = conn.execute(text("SELECT metric, label, value FROM send_totals")).all()
    assert sorted(totals) == [("SENT", "reply", 1.0), ("SENT", "send", 2.0)]
    migrate.downgrade(db_url, "0007")
    assert "send_totals" not in _tables(db_url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM send_log")) == 5
    migrate.upgrade(db_url)
    engine.dispose()


def test_0009_takes_replied_jobs_and_steps_down_to_sent(db_url, cipher):
    """At head a job may be REPLIED (and the old constraint refused it); going down makes it
    SENT again and drops the engagement tables, keeping the jobs."""
    engine = make_engine(db_url)
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    with Session(engine) as session, session.begin():
        box = add_mailbox(session, add_user(session, "owner", at), "a@one.example", at, cipher)
        add_job(session, box, box, at, JobStatus.REPLIED)
    migrate.downgrade(db_url, "0008")
    assert {"engagements", "engagement_mailboxes"}.isdisjoint(_tables(db_url))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM warmup_jobs")).scalars().all() == ["SENT"]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE warmup_jobs SET status = 'REPLIED'"))
    migrate.upgrade(db_url)
    assert _tables(db_url) >= TABLES
    engine.dispose()


def test_0012_gives_engagements_their_jobs_local_date_and_steps_down(db_url, cipher):
    """Going up, engagements taken in before the column take their job's local date (the
    send-log row's); going down drops the column, the health table and the indexes."""
    engine = make_engine(db_url)
    at = datetime(2026, 3, 2, 23, tzinfo=UTC)
    box = _mailbox_at_head(engine, at, cipher)
    migrate.downgrade(db_url, "0011")
    assert "mailbox_health" not in _tables(db_url)
    with Session(engine) as session, session.begin():
        job = add_job(session, box, box, at, JobStatus.SENT, local_date=at.date().replace(day=3))
        session.execute(
            text(
                "INSERT INTO engagements (job_id, message_id, recipient_mailbox_id, "
                "sender_mailbox_id, turn, sent_at, due_at, done, placement, seen, flagged, "
                "filed, sent_copy, attempts, created_at, updated_at) VALUES (:job, '<m@x>', "
                ":box, :box, 1, :at, :at, false, 'PENDING', false, false, false, 'PENDING', 0, "
                ":at, :at)"
            ),
            {"job": job.id, "box": box.id, "at": at},
        )
    migrate.upgrade(db_url)
    with engine.connect() as conn:
        [day] = conn.execute(text("SELECT local_date FROM engagements")).scalars().all()
    assert str(day) == "2026-03-03"
    indexes = {i["name"] for i in inspect(engine).get_indexes("send_log")}
    assert "ix_send_log_refusals" in indexes
    migrate.downgrade(db_url, "0011")
    columns = {c["name"] for c in inspect(engine).get_columns("engagements")}
    assert "local_date" not in columns and "mailbox_health" not in _tables(db_url)
    assert "ix_send_log_refusals" not in {
        i["name"] for i in inspect(engine).get_indexes("send_log")
    }
    migrate.upgrade(db_url)
    engine.dispose()
