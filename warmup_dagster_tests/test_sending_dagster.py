"""The dispatch sensor and the send_mail job through Dagster itself, on both databases."""

from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.remote_origin import (  # private: there is no public way to queue a run
    InProcessCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster.db.models import JobStatus, MailboxState, Security, WarmupJob
from warmup_dagster.definitions import defs
from warmup_dagster.jobs import ROLE_TAG, send_job
from warmup_dagster.resources import WarmupDatabase, WarmupSecrets
from warmup_dagster.sensors.dispatch import dispatch_sensor
from warmup_dagster.settings import Settings
from warmup_dagster.testing.smtp_server import FaultySmtpServer
from warmup_dagster_tests.conftest import TEST_SECRET
from warmup_dagster_tests.factories import add_job, add_mailbox, add_user

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday, inside the 06-22 UTC send window
_boxes = count()


@pytest.fixture
def env(monkeypatch):
    """The settings WarmupDatabase reads at setup: a clock at START running at wall speed."""
    monkeypatch.setenv("WARMUP_CLOCK_START", START.isoformat())
    monkeypatch.setenv("WARMUP_CLOCK_SPEED", "1")
    monkeypatch.setenv("WARMUP_JOBS_PER_SCHEDULER_RUN", "10")
    monkeypatch.setenv("WARMUP_WORKER_COUNT", "3")
    return monkeypatch


def add_jobs(engine, cipher, n, *, at=START - timedelta(minutes=5), port=2525, **box_values):
    """`n` mailboxes (one user each, so no owner's cap interferes), each with one job due `at`."""
    with Session(engine) as session, session.begin():
        ids = []
        for _ in range(n):
            i = next(_boxes)
            user = add_user(session, f"owner{i}", START, plan="pro")
            box = add_mailbox(
                session,
                user,
                f"box{i}@u{i}.example",
                START,
                cipher,
                smtp_host="127.0.0.1",
                smtp_port=port,
                smtp_security=Security.NONE,
                **box_values,
            )
            job = add_job(
                session, box, box, at, JobStatus.PENDING, recipient_email=f"peer{i}@far.example"
            )
            ids.append(job.id)
    return ids


def tick(instance, db_url, cursor=None):
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"warmup_db": WarmupDatabase(database_url=db_url)},
    ) as context:
        return dispatch_sensor(context)


def run_keys(result) -> list[str]:
    assert isinstance(result, dg.SensorResult), result
    return [r.run_key for r in result.run_requests]


@dg.op
def plan_nothing() -> None:
    pass


@dg.job(tags={ROLE_TAG: "planner"})
def planner() -> None:
    plan_nothing()


def add_run(instance, status, job=send_job):
    """A run record in `status`, as the run queue and the run workers leave it (nothing runs).

    A QUEUED run needs the origin of its code location, as the daemon's run queue would have.
    """
    origin = RemoteJobOrigin(
        repository_origin=RemoteRepositoryOrigin(
            code_location_origin=InProcessCodeLocationOrigin(
                LoadableTargetOrigin(module_name="warmup_dagster.definitions", attribute="defs")
            ),
            repository_name="__repository__",
        ),
        job_name=job.name,
    )
    return instance.create_run_for_job(
        job_def=job, status=status, tags=job.tags, remote_job_origin=origin
    )


# -- the dispatch sensor ------------------------------------------------------------------------


def test_dispatch_skips_when_nothing_is_due(env, instance, db_url, engine, cipher):
    result = tick(instance, db_url)
    assert isinstance(result, dg.SkipReason) and "no mail is due" in result.skip_message

    add_jobs(engine, cipher, 4, at=START + timedelta(hours=1))  # planned, not due yet
    add_jobs(engine, cipher, 4, state=MailboxState.PAUSED)  # due, but their mailbox is paused
    assert isinstance(tick(instance, db_url, cursor="7"), dg.SkipReason)


def test_dispatch_launches_one_run_per_batch_up_to_the_worker_count(
    env, instance, db_url, engine, cipher
):
    add_jobs(engine, cipher, 15)  # 10 per run: 2 runs
    add_jobs(engine, cipher, 5, at=START + timedelta(minutes=30))  # not due: no third run
    add_jobs(engine, cipher, 5, state=MailboxState.PAUSED)  # paused: no third run either

    first = tick(instance, db_url)
    assert run_keys(first) == ["send-1-0", "send-1-1"]
    assert first.cursor == "1"
    # The same tick evaluated again (say the daemon died before storing the cursor) asks for
    # the same runs, so Dagster launches them once.
    assert run_keys(tick(instance, db_url)) == ["send-1-0", "send-1-1"]
    second = tick(instance, db_url, cursor=first.cursor)
    assert run_keys(second) == ["send-2-0", "send-2-1"] and second.cursor == "2"

    add_jobs(engine, cipher, 40, at=START - timedelta(minutes=1))  # 55 due: 6 batches
    result = tick(instance, db_url, cursor="2")
    assert run_keys(result) == ["send-3-0", "send-3-1", "send-3-2"]  # WARMUP_WORKER_COUNT=3


def test_dispatch_counts_sender_runs_already_queued_or_running(
    env, instance, db_url, engine, cipher
):
    env.setenv("WARMUP_WORKER_COUNT", "2")
    add_jobs(engine, cipher, 50)
    # Runs that are over, and runs of other jobs, don't count.
    add_run(instance, dg.DagsterRunStatus.SUCCESS)
    add_run(instance, dg.DagsterRunStatus.FAILURE)
    add_run(instance, dg.DagsterRunStatus.STARTED, job=planner)
    assert run_keys(tick(instance, db_url)) == ["send-1-0", "send-1-1"]

    # A canceling run may still be finishing its sends; the run queue counts it too.
    add_run(instance, dg.DagsterRunStatus.CANCELING)
    assert run_keys(tick(instance, db_url, cursor="1")) == ["send-2-0"]

    add_run(instance, dg.DagsterRunStatus.QUEUED)
    result = tick(instance, db_url, cursor="2")
    assert isinstance(result, dg.SkipReason)
    assert "2 sender runs queued or running" in result.skip_message
    assert "20 jobs due" in result.skip_message  # of 50: counted only as far as runs can take


def test_dispatch_leaves_a_small_backlog_to_the_run_already_on_it(
    env, instance, db_url, engine, cipher
):
    add_jobs(engine, cipher, 8)  # one batch's worth
    add_run(instance, dg.DagsterRunStatus.STARTED)
    result = tick(instance, db_url)
    assert isinstance(result, dg.SkipReason) and "1 sender runs" in result.skip_message


def test_dispatch_counts_jobs_whose_sender_died(env, instance, db_url, engine, cipher):
    ids = add_jobs(engine, cipher, 3)
    with Session(engine) as session, session.begin():
        for job in session.scalars(select(WarmupJob).where(WarmupJob.id.in_(ids))):
            job.status, job.worker_id, job.picked_at = JobStatus.PROCESSING, "w", START
            job.lease_expires_at = START + timedelta(minutes=10)  # held by a live run
    assert isinstance(tick(instance, db_url), dg.SkipReason)
    with Session(engine) as session, session.begin():
        session.get(WarmupJob, ids[0]).lease_expires_at = START - timedelta(minutes=1)
    assert run_keys(tick(instance, db_url)) == ["send-1-0"]  # its lease ran out: reclaim it


# -- the send_mail job --------------------------------------------------------------------------


@pytest.fixture
def server():
    with FaultySmtpServer() as smtp:  # plaintext on 127.0.0.1, no AUTH
        yield smtp


@pytest.fixture
def send_env(env):
    env.setenv("WARMUP_SMTP_TIMEOUT_SECONDS", "2")
    env.setenv("WARMUP_SCHEDULER_INTERVAL_MS", "1000")
    env.setenv("WARMUP_SENDER_RUN_MAX_SECONDS", "30")  # nothing due within 30 s: the run ends
    env.setenv("WARMUP_JOBS_PER_SCHEDULER_RUN", "500")
    env.setenv("WARMUP_WORKER_CONCURRENCY", "10")
    return env


def send(instance, db_url):
    result = send_job.execute_in_process(
        resources={
            "warmup_db": WarmupDatabase(database_url=db_url),
            "warmup_secrets": WarmupSecrets(secret_key=TEST_SECRET),
        },
        instance=instance,
    )
    assert result.success
    [output] = [e for e in result.events_for_node("send_due_mail") if e.is_successful_output]
    metadata = {k: v.value for k, v in output.step_output_data.metadata.items()}
    return result, metadata


def message_ids(engine, ids):
    with Session(engine) as session:
        return set(session.scalars(select(WarmupJob.message_id).where(WarmupJob.id.in_(ids))))


def test_send_job_delivers_due_mail_without_an_event_per_email(
    send_env, instance, db_url, engine, cipher, server
):
    few = add_jobs(engine, cipher, 3, port=server.port)
    later = add_jobs(engine, cipher, 2, port=server.port, at=START + timedelta(hours=2))
    result, metadata = send(instance, db_url)
    assert {r.message["Message-ID"] for r in server.received} == message_ids(engine, few)
    assert metadata["sent"] == metadata["claimed"] == 3
    assert instance.get_run_by_id(result.run_id).tags[ROLE_TAG] == "sender"
    few_events = len(instance.all_logs(result.run_id))

    server.reset()
    many = add_jobs(engine, cipher, 30, port=server.port, at=START - timedelta(minutes=1))
    result, metadata = send(instance, db_url)
    assert {r.message["Message-ID"] for r in server.received} == message_ids(engine, many)
    assert metadata["sent"] == metadata["claimed"] == 30
    many_events = len(instance.all_logs(result.run_id))
    # Per-email detail is in the send log: ten times the mail, (nearly) the same events.
    assert many_events < 30
    assert many_events - few_events < 10, (few_events, many_events)

    with Session(engine) as session:
        statuses = dict(session.execute(select(WarmupJob.id, WarmupJob.status)).all())
    assert {statuses[i] for i in few + many} == {JobStatus.SENT}
    assert {statuses[i] for i in later} == {JobStatus.PENDING}


@pytest.mark.parametrize("backend", ["sqlite"])  # Dagster's event log; one backend is enough
def test_send_job_writes_no_event_per_email_when_mail_trickles(
    send_env, instance, db_url, engine, cipher, server
):
    # Jobs come due one virtual minute (one real second at speed 60) apart, as planned slots do
    # through the day; the run waits for each one (it comes due within the run's lifetime).
    send_env.setenv("WARMUP_CLOCK_SPEED", "60")
    send_env.setenv("WARMUP_SENDER_RUN_MAX_SECONDS", "600")  # clock time: 10 s here
    send_env.setenv("WARMUP_SMTP_TIMEOUT_SECONDS", "120")
    ids = [
        job
        for k in range(4)
        for job in add_jobs(engine, cipher, 1, port=server.port, at=START + timedelta(minutes=k))
    ]
    result, metadata = send(instance, db_url)
    assert metadata["sent"] == len(ids) == len(server.received)
    messages = [e.user_message for e in instance.all_logs(result.run_id) if not e.is_dagster_event]
    assert len(messages) <= 2, messages


# -- definitions and instance configuration -----------------------------------------------------


def _sender_limit(path: Path) -> int:
    config = yaml.safe_load(path.read_text())
    [limit] = [
        rule["limit"]
        for rule in config["concurrency"]["runs"]["tag_concurrency_limits"]
        if rule["key"] == ROLE_TAG and rule["value"] == "sender"
    ]
    return limit


def test_sender_runs_are_tagged_dispatched_and_limited():
    job = defs.resolve_job_def("send_mail")
    assert job.tags[ROLE_TAG] == "sender"
    sensor = defs.resolve_sensor_def("dispatch_sensor")
    assert sensor.job_name == "send_mail"
    assert sensor.default_status is dg.DefaultSensorStatus.RUNNING
    assert _sender_limit(ROOT / "dagster.yaml") == Settings().worker_count == 5
    assert 1 <= _sender_limit(ROOT / "deploy" / "dagster.embedded.yaml") <= 5
