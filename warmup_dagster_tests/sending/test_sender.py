"""Sender runs against a real SMTP server (AUTH, STARTTLS with a self-signed certificate) on
both databases: outcomes, retries, pausing, windows, spacing, leases and the caps."""

import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from warmup_dagster import queue
from warmup_dagster.clock import ScaledClock
from warmup_dagster.core.admission import Scope
from warmup_dagster.core.content import compose, is_warmup_message_id, job_message_id, token_key
from warmup_dagster.core.delivery import Outcome, RetryPolicy
from warmup_dagster.db.models import (
    JobStatus,
    Mailbox,
    MailboxState,
    Security,
    SendCounter,
    SendLog,
    WarmupJob,
)
from warmup_dagster.mailboxes.service import list_mailboxes
from warmup_dagster.sending.worker import Sender
from warmup_dagster.settings import load_settings
from warmup_dagster.testing.certificates import self_signed_cert
from warmup_dagster.testing.smtp_server import FaultySmtpServer, closed_port
from warmup_dagster_tests.conftest import TEST_SECRET
from warmup_dagster_tests.factories import add_job, add_mailbox, add_user

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday, inside the 06-22 UTC window

KEY = token_key(TEST_SECRET)


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def server(cert):
    cert_file, key_file = cert
    with FaultySmtpServer(users={}, tls="starttls", cert=cert_file, key=key_file) as smtp:
        yield smtp


def settings_for(cert, speed: float = 1.0, **env: str):
    """Settings for runs whose clock goes at `speed` (every duration is clock time)."""
    values = {
        "WARMUP_SMTP_CA_FILE": str(cert[0]),
        "WARMUP_SMTP_TIMEOUT_SECONDS": str(speed),  # one real second
        "WARMUP_SEND_LEASE_SECONDS": "3600",
        "WARMUP_SEND_RETRY_BASE_SECONDS": "7200",  # retries come due after the run ends
        # How often a run waiting for its next due job looks for new ones.
        "WARMUP_SCHEDULER_INTERVAL_MS": "300000",
    }
    values.update({f"WARMUP_{k.upper()}": v for k, v in env.items()})
    return load_settings(values)


def clock(speed: float = 1.0, start: datetime = START) -> ScaledClock:
    return ScaledClock(start, datetime.now(UTC), speed)


def mailboxes(engine, cipher, server, n_users=1, per_user=1, password="pw", **overrides):
    """Mailboxes on the server (STARTTLS to localhost, AUTH with their own accounts)."""
    boxes = []
    security = overrides.pop("smtp_security", Security.STARTTLS)
    with Session(engine) as session, session.begin():
        for u in range(n_users):
            user = add_user(session, f"owner{u}", START, plan="pro")
            for k in range(per_user):
                email = f"box{k}@u{u}.example"
                box = add_mailbox(
                    session,
                    user,
                    email,
                    START,
                    cipher,
                    smtp_host="localhost",
                    smtp_port=server.port,
                    smtp_security=security,
                    smtp_password_enc=cipher.encrypt(password),
                    **overrides,
                )
                if server.users is not None:
                    server.users[email] = "pw"
                boxes.append(box.id)
    return boxes


def jobs(engine, box_ids, recipients, at=START, **overrides):
    with Session(engine) as session, session.begin():
        out = []
        for box_id in box_ids:
            box = session.get(Mailbox, box_id)
            for r, recipient in enumerate(recipients):
                job = add_job(
                    session,
                    box,
                    box,
                    at + timedelta(minutes=3 * r),
                    JobStatus.PENDING,
                    recipient_email=recipient,
                    recipient_mailbox_id=None,
                    subject=None,
                    body=None,
                    content_seed=1000 + len(out),
                    **overrides,
                )
                out.append(job.id)
        return out


def run(engine, settings, cipher, speed=1.0, worker="w1", real_seconds=20.0, start=START):
    """One sender run of at most `real_seconds` (its lifetime is clock time: scaled here)."""
    sender = Sender(
        engine, clock(speed, start), settings, cipher, KEY, worker, max_seconds=real_seconds * speed
    )
    return sender.run()


def job_rows(engine):
    with Session(engine) as session:
        return {j.id: j for j in session.scalars(select(WarmupJob))}


def log_rows(engine):
    with Session(engine) as session:
        return list(session.scalars(select(SendLog).order_by(SendLog.id)))


def test_due_jobs_are_sent_over_starttls_and_recorded(engine, cipher, server, cert):
    boxes = mailboxes(engine, cipher, server, n_users=3)
    ids = jobs(engine, boxes, ["peer@far.example"])
    summary = run(engine, settings_for(cert), cipher)

    assert summary.metadata()["sent"] == 3 and summary.claimed == 3
    got = {r.message["Message-ID"]: r for r in server.received}
    assert all(r.encrypted for r in got.values())
    for job in job_rows(engine).values():
        assert job.status is JobStatus.SENT and job.smtp_code == 250
        assert job.sent_at is not None and job.lease_expires_at is None
        message = got[job.message_id].message
        # what went out is what is on record, composed from the job's seed
        assert message["Subject"] == job.subject
        assert message.get_content().replace("\r\n", "\n").strip() == job.body.strip()
        # no display name was imported: the one derived from the address ("box0@" -> "Box")
        [sender] = message["From"].addresses
        assert (sender.addr_spec, sender.display_name) == (job_sender(engine, job), "Box")
    assert {r.mail_from for r in got.values()} == {
        job_sender(engine, j) for j in job_rows(engine).values()
    }
    log = log_rows(engine)
    assert sorted(e.job_id for e in log) == sorted(ids)
    assert {e.status for e in log} == {JobStatus.SENT} and {e.attempt for e in log} == {1}
    assert all(e.claimed_at is not None and e.claimed_at <= e.created_at for e in log)


def test_words_date_and_from_are_the_senders_own_local_time_and_name(engine, cipher, server, cert):
    """09:00 UTC is 18:00 in Tokyo: the mail says so, and carries its owner's name."""
    [box] = mailboxes(engine, cipher, server, timezone="Asia/Tokyo", display_name="José García")
    jobs(
        engine,
        [box],
        ["frank.miller@far.example", "ann@far.example"],
        at=START - timedelta(hours=1),
    )
    # The second claim of the mailbox waits its spacing (plus 30 s): clock time runs at 60x.
    settings = settings_for(
        cert, speed=60, same_mailbox_delay_min="0.01", same_mailbox_delay_max="1"
    )
    run(engine, settings, cipher, speed=60)

    got = {r.message["Message-ID"]: r for r in server.received}
    assert len(got) == 2
    for job in job_rows(engine).values():
        received = got[job.message_id]
        message = received.message
        [sender] = message["From"].addresses
        assert (sender.addr_spec, sender.display_name) == ("box0@u0.example", "José García")
        assert received.mail_from == "box0@u0.example"  # the envelope: the bare address
        local = message["Date"].datetime
        assert local.utcoffset() == timedelta(hours=9) and local.hour == 18
        # What went out is what `compose` says for that local time, signed with the name.
        words = compose(
            job.content_seed, "box0@u0.example", job.recipient_email, local, "José García"
        )
        assert (job.subject, job.body) == words
        greeting = job.body.split("\n", 1)[0].lower()
        assert "morning" not in greeting and "afternoon" not in greeting
        assert job.body.splitlines()[-1] in ("Jose", "Jose Garcia")


def job_sender(engine, job):
    with Session(engine) as session:
        return session.get(Mailbox, job.mailbox_id).email


def test_each_outcome(engine, cipher, server, cert):
    [box] = mailboxes(engine, cipher, server)
    server.slow_seconds = 3
    recipients = ["code421@x.example", "code451@x.example", "code550@x.example"]
    recipients += ["drop@x.example", "slow@x.example", "fine@x.example"]
    # one job per recipient, all due now (spacing 0.01 min so one mailbox may send them all)
    ids = jobs(engine, [box], recipients, at=START - timedelta(hours=1))
    settings = settings_for(
        cert, speed=60, same_mailbox_delay_min="0.01", same_mailbox_delay_max="1"
    )
    run(engine, settings, cipher, speed=60)

    by_recipient = {j.recipient_email: j for j in job_rows(engine).values()}
    for address, code in [("code421", 421), ("code451", 451)]:
        job = by_recipient[f"{address}@x.example"]
        assert job.status is JobStatus.RETRY and job.smtp_code == code
    for address in ("drop", "slow"):
        job = by_recipient[f"{address}@x.example"]
        assert job.status is JobStatus.RETRY and job.smtp_code is None and job.error
    assert "timed out" in by_recipient["slow@x.example"].error
    failed = by_recipient["code550@x.example"]
    assert failed.status is JobStatus.FAILED and failed.smtp_code == 550
    assert by_recipient["fine@x.example"].status is JobStatus.SENT
    for job in job_rows(engine).values():
        if job.status is JobStatus.RETRY:  # backoff: due again later, same Message-ID
            assert job.due_at > START and job.attempts == 1
    with Session(engine) as session:
        assert session.get(Mailbox, box).hard_failures == 1  # the 550 counts against health
    statuses = Counter(e.status for e in log_rows(engine))
    assert statuses == {JobStatus.RETRY: 4, JobStatus.FAILED: 1, JobStatus.SENT: 1}
    assert len(ids) == 6
    # Day reservations of the attempts that did not send were given back: one send counted.
    used = Counter()
    with Session(engine) as session:
        for c in session.scalars(select(SendCounter)):
            used[c.scope, c.subject_id] += c.used
        user_id = session.get(Mailbox, box).user_id
    assert used[Scope.MAILBOX_DAY, box] == 1 and used[Scope.USER_DAY, user_id] == 1
    # while every attempt counts against the rate caps
    assert used[Scope.GLOBAL_HOUR, 0] == used[Scope.USER_MINUTE, user_id] == 6


def test_temporary_failures_retry_until_the_last_attempt_then_fail(engine, cipher, server, cert):
    [box] = mailboxes(engine, cipher, server)
    [job_id] = jobs(engine, [box], ["code451@x.example"])
    settings = settings_for(
        cert,
        speed=30,
        send_max_attempts="3",
        send_retry_base_seconds="1",
        same_mailbox_delay_min="0.05",
    )
    run(engine, settings, cipher, speed=30)
    job = job_rows(engine)[job_id]
    assert job.status is JobStatus.FAILED and job.attempts == 3
    log = log_rows(engine)
    assert [e.status for e in log] == [JobStatus.RETRY, JobStatus.RETRY, JobStatus.FAILED]
    assert [e.attempt for e in log] == [1, 2, 3]
    assert {e.message_id for e in log} == {job.message_id}


def test_a_retry_reuses_the_message_id_and_is_delivered(engine, cipher, cert):
    port = closed_port()
    with Session(engine) as session, session.begin():
        user = add_user(session, "owner", START)
        box = add_mailbox(
            session, user, "a@one.example", START, cipher, smtp_port=port, smtp_host="127.0.0.1"
        )
        # as planning writes it: no Message-ID yet, derived from the job at each attempt
        add_job(
            session,
            box,
            box,
            START,
            JobStatus.PENDING,
            recipient_email="b@two.example",
            message_id=None,
            token=None,
            content_seed=12345,
        )
    settings = settings_for(cert)
    run(engine, settings, cipher)  # nobody listens: a network failure, retried later
    [job] = job_rows(engine).values()
    assert job.status is JobStatus.RETRY and job.smtp_code is None
    first_id = job.message_id
    assert (first_id, job.token) == job_message_id(KEY, job.id, 12345, "one.example")
    with FaultySmtpServer(port=port) as smtp:
        run(engine, settings, cipher, start=job.due_at + timedelta(seconds=1))
        [received] = smtp.received
    [job] = job_rows(engine).values()
    assert job.status is JobStatus.SENT and job.attempts == 2
    assert received.message["Message-ID"] == job.message_id == first_id
    assert is_warmup_message_id(KEY, first_id)
    log = log_rows(engine)
    assert [(e.message_id, e.local_date) for e in log] == [(first_id, job.local_date)] * 2


def test_authentication_failure_pauses_that_mailbox_and_holds_its_jobs(
    engine, cipher, server, cert, caplog
):
    bad = mailboxes(engine, cipher, server, n_users=1, per_user=1, password="wrong")
    with Session(engine) as session, session.begin():
        user = add_user(session, "other", START)
        good = add_mailbox(
            session, user, "ok@good.example", START, cipher,
            smtp_host="localhost", smtp_port=server.port, smtp_security=Security.STARTTLS,
        )  # fmt: skip
        server.users["ok@good.example"] = "pw"
        good_id = good.id
    jobs(engine, bad, ["p@x.example", "q@x.example"], at=START - timedelta(minutes=10))
    jobs(engine, [good_id], ["r@x.example"])
    summary = run(engine, settings_for(cert), cipher)

    assert summary.paused_mailboxes == set(bad)
    # the run's log names it once (in Dagster, the sender run's log in the UI)
    assert caplog.text.count("paused box0@u0.example, its jobs held") == 1
    with Session(engine) as session:
        paused = session.get(Mailbox, bad[0])
        assert paused.state is MailboxState.PAUSED and "535" in paused.state_reason
        assert session.get(Mailbox, good_id).state is MailboxState.ACTIVE
    held = [j for j in job_rows(engine).values() if j.mailbox_id == bad[0]]
    assert [j.status for j in held] == [JobStatus.PENDING, JobStatus.PENDING]
    assert [r.rcpt_tos for r in server.received] == [("r@x.example",)]
    [view] = [v for v in list_mailboxes(engine) if v.state is MailboxState.PAUSED]
    assert "535" in view.state_reason
    assert "wrong" not in paused.state_reason


def test_jobs_due_outside_the_window_wait_for_it_and_expire_after_it(engine, cipher, server, cert):
    # 09:00 UTC is 04:00 in New York, before its 06-22 window; 18:00 in Tokyo, after a 06-16 one.
    new_york = mailboxes(engine, cipher, server, timezone="America/New_York")
    [waits] = jobs(engine, new_york, ["a@x.example"])
    with Session(engine) as session, session.begin():
        user = add_user(session, "tokyo-owner", START)
        tokyo = add_mailbox(session, user, "t@tokyo.example", START, cipher, timezone="Asia/Tokyo")
        tokyo_job = add_job(session, tokyo, tokyo, START, JobStatus.PENDING).id
    summary = run(engine, settings_for(cert, send_window_end_hour="16"), cipher)
    assert summary.claimed == 0 and summary.deferred == 1 and summary.refused == 1
    assert not server.received
    jobs_now = job_rows(engine)
    assert jobs_now[waits].status is JobStatus.PENDING
    assert jobs_now[waits].due_at == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # 06:00 New York
    assert jobs_now[waits].scheduled_at == START  # the planned slot stays on record
    # Tokyo's day (2 March) is over: its job expires instead of crowding the 3rd
    assert jobs_now[tokyo_job].status is JobStatus.FAILED
    assert jobs_now[tokyo_job].error == "not sent: expired: its day (2026-03-02) is over"


def test_a_job_that_expires_after_waiting_keeps_why_it_waited(engine, cipher, server, cert):
    [box] = mailboxes(engine, cipher, server)
    evening = START.replace(hour=21, minute=50)  # UTC mailbox: its window ends at 22:00
    first, waits = jobs(
        engine, [box], ["a@x.example", "b@x.example"], at=evening - timedelta(minutes=3)
    )
    summary = run(engine, settings_for(cert), cipher, start=evening)
    assert summary.claimed == 1 and summary.deferred == 1
    waiting = job_rows(engine)[waits].error
    assert waiting.startswith("waiting: ") and "spacing" in waiting
    assert job_rows(engine)[first].status is JobStatus.SENT

    with Session(engine) as session, session.begin():
        # a retry whose backoff ran past its day: it keeps its last attempt's error
        other = add_mailbox(session, add_user(session, "o2", START), "r@u9.example", START, cipher)
        retry = add_job(
            session, other, other, START, JobStatus.RETRY, attempts=1, error="451 try later"
        ).id
    summary = run(engine, settings_for(cert), cipher, start=evening + timedelta(minutes=15))
    assert summary.refused == 2
    job = job_rows(engine)[waits]
    assert job.status is JobStatus.FAILED
    # both: why it is not sent, and why it had been held until its day was over
    assert job.error == f"not sent: expired: its day (2026-03-02) is over; it had been {waiting}"
    assert job_rows(engine)[retry].error == (
        "not sent: expired: its day (2026-03-02) is over; its last attempt: 451 try later"
    )


def test_spacing_between_sends_of_one_mailbox(engine, cipher, server, cert):
    [box] = mailboxes(engine, cipher, server)
    # three jobs all due at once: the mailbox still sends them 2 minutes apart
    ids = jobs(engine, [box], ["a@x.example", "b@x.example", "c@x.example"], at=START)
    with Session(engine) as session, session.begin():
        for job in session.scalars(select(WarmupJob)):
            job.due_at = START - timedelta(minutes=5)
    run(engine, settings_for(cert, speed=120), cipher, speed=120)
    picked = sorted(job_rows(engine)[i].picked_at for i in ids)
    assert len(server.received) == 3
    assert all(b - a >= timedelta(minutes=2) for a, b in pairwise(picked))


def test_an_expired_lease_is_reclaimed_by_another_run(engine, cipher, server, cert):
    [box] = mailboxes(engine, cipher, server)
    [job_id] = jobs(engine, [box], ["a@x.example"])
    with Session(engine) as session, session.begin():
        job = session.get(WarmupJob, job_id)
        job.status, job.worker_id, job.attempts = JobStatus.PROCESSING, "dead-run", 1
        job.picked_at = START - timedelta(minutes=20)
        job.lease_expires_at = START - timedelta(minutes=10)
    summary = run(engine, settings_for(cert), cipher, worker="rescuer")
    job = job_rows(engine)[job_id]
    assert summary.reclaimed == 1
    assert job.status is JobStatus.SENT and job.worker_id == "rescuer" and job.attempts == 2
    assert server.received[0].message["Message-ID"] == job.message_id


def test_none_security_is_refused_for_a_remote_host(engine, cipher, cert):
    with Session(engine) as session, session.begin():
        user = add_user(session, "owner", START)
        box = add_mailbox(
            session, user, "a@one.example", START, cipher,
            smtp_host="smtp.one.example", smtp_security=Security.NONE,
        )  # fmt: skip
        add_job(session, box, box, START, JobStatus.PENDING, recipient_email="b@two.example")
    run(engine, settings_for(cert), cipher)
    with Session(engine) as session:
        box = session.scalar(select(Mailbox))
        assert box.state is MailboxState.PAUSED and "loopback" in box.state_reason
        assert session.scalar(select(WarmupJob.status)) is JobStatus.PENDING


def test_two_runs_at_once_send_nothing_twice_and_hold_every_cap(engine, cipher, cert):
    cert_file, key_file = cert
    with FaultySmtpServer(tls="starttls", cert=cert_file, key=key_file) as smtp:
        boxes = mailboxes(engine, cipher, smtp, n_users=6, per_user=5)
        ids = jobs(engine, boxes, ["a@x.example", "b@x.example"], at=START - timedelta(minutes=30))
        settings = settings_for(
            cert,
            speed=120,
            global_sends_per_minute="12",
            global_sends_per_hour="1000",
            user_sends_per_minute="3",
            user_sends_per_hour="1000",
            jobs_per_scheduler_run="7",
        )
        summaries = []

        def work(name):
            summaries.append(run(engine, settings, cipher, speed=120, worker=name, real_seconds=15))

        threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        received = [r.message["Message-ID"] for r in smtp.received]

    assert len(received) == len(set(received)) == len(ids)  # all sent, none twice
    assert all(s.claimed > 0 for s in summaries)  # both runs took part
    log = log_rows(engine)
    assert Counter(e.job_id for e in log if e.status is JobStatus.SENT) == dict.fromkeys(ids, 1)
    per_minute = Counter(e.claimed_at.replace(second=0, microsecond=0) for e in log)
    per_user_minute = Counter(
        (e.user_id, e.claimed_at.replace(second=0, microsecond=0)) for e in log
    )
    assert max(per_minute.values()) <= 12
    assert max(per_user_minute.values()) <= 3
    picked = {}
    for e in sorted(log, key=lambda e: e.claimed_at):
        if e.mailbox_id in picked:
            assert e.claimed_at - picked[e.mailbox_id] >= timedelta(minutes=2)
        picked[e.mailbox_id] = e.claimed_at
    with Session(engine) as session:
        assert session.scalar(
            select(func.count()).where(WarmupJob.status == JobStatus.SENT)
        ) == len(ids)


def test_a_late_outcome_of_a_reclaimed_job_changes_only_the_log(engine, cipher, cert):
    with Session(engine) as session, session.begin():
        user = add_user(session, "owner", START)
        box = add_mailbox(session, user, "a@one.example", START, cipher)
        job_id = add_job(session, box, box, START, JobStatus.PENDING).id
        box_id = box.id
    settings = settings_for(cert, send_lease_seconds="60", smtp_timeout_seconds="5")
    policy, rng = RetryPolicy(), random.Random(1)

    [first] = queue.claim(engine, settings, lambda: START, "A", 10, KEY).jobs
    later = START + timedelta(minutes=5)  # A's lease ran out; B reclaims the job and sends it
    claim_b = queue.claim(engine, settings, lambda: later, "B", 10, KEY)
    assert claim_b.reclaimed == 1
    [second] = claim_b.jobs

    def result(job, outcome, code, at):
        return queue.Result(job, outcome, code, "", None, at, "s", "b")

    queue.record(engine, [result(second, Outcome.SENT, 250, later)], "B", policy, rng)
    late = queue.record(engine, [result(first, Outcome.RETRY, 451, later)], "A", policy, rng)

    assert not late.outcomes  # nothing applied
    assert late.late == {Outcome.RETRY: 1}  # but counted as late
    job = job_rows(engine)[job_id]
    assert job.status is JobStatus.SENT and job.worker_id == "B"
    # B's claim closed A's abandoned attempt; A's late outcome is on record, counted nowhere
    log = log_rows(engine)
    assert [(e.worker_id, e.status, e.late) for e in log] == [
        ("A", JobStatus.RETRY, False),
        ("B", JobStatus.SENT, False),
        ("A", JobStatus.RETRY, True),
    ]
    assert log[0].error.startswith("abandoned") and log[0].claimed_at == START
    assert [e.claimed_at for e in log[1:]] == [later, START]
    with Session(engine) as session:
        [quota_count] = session.scalars(
            select(SendCounter.used).where(
                SendCounter.scope == Scope.MAILBOX_DAY, SendCounter.subject_id == box_id
            )
        )
    assert quota_count == 1  # the late failure gave nothing back


def test_a_job_whose_headers_are_refused_fails_with_the_reason_and_the_run_goes_on(
    engine, cipher, server, cert
):
    """Content that would inject a header (an encoded CR LF in the subject, a trailing CR LF
    in a reply's In-Reply-To) fails its own job, unsent; the run sends the others."""
    boxes = mailboxes(engine, cipher, server, n_users=3)
    injected, reply, fine = jobs(engine, boxes, ["peer@far.example"])
    with Session(engine) as session, session.begin():
        job = session.get(WarmupJob, injected)
        job.subject, job.body = "Notes =?utf-8?q?x=0D=0ABcc:_everyone@evil.example?=", "body"
        job = session.get(WarmupJob, reply)
        job.subject, job.body = "Re: notes", "body"
        job.in_reply_to = "<a@far.example>\r\n"  # at the end: the email package let it by
    summary = run(engine, settings_for(cert), cipher)

    assert summary.metadata()["sent"] == 1 and summary.metadata()["failed"] == 2
    rows = job_rows(engine)
    assert rows[fine].status is JobStatus.SENT
    for job_id, header in [(injected, "Subject"), (reply, "In-Reply-To")]:
        job = rows[job_id]
        assert job.status is JobStatus.FAILED and job.smtp_code is None
        assert f"{header} header refused" in job.error
    assert [r.message["Message-ID"] for r in server.received] == [rows[fine].message_id]
    assert all("evil.example" not in rcpt for r in server.received for rcpt in r.rcpt_tos)
