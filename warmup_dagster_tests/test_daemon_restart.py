"""The Dagster daemon restarted mid-day, as a crash restarts it: the daemon, its code server and
every run they launched are killed at once (SIGKILL to the process group) while mail flows into
Dovecot, and a new daemon starts on the same instance.

Nothing is lost: every mailbox ends the day at its quota. Nothing is sent twice: each
Message-ID reaches the server once (a job a dead run may have sent is looked for over IMAP
before it is sent again). Nothing is launched twice: every run key is used by one run (a
retry carries its parent's), so the sensors' cursors and run keys held across the restart.
The runs that died are failed by `dead_runs_sensor` once their beats stop, which frees their
places: without it they stayed STARTED until their max runtime and nothing was sent.
"""

from __future__ import annotations

import io
from collections import Counter
from datetime import UTC, datetime

import dagster as dg
import pytest

from warmup_dagster.clock import FixedClock, RealClock
from warmup_dagster.crypto import Cipher
from warmup_dagster.db import migrate
from warmup_dagster.db.engine import make_engine
from warmup_dagster.liveness import LIVING
from warmup_dagster.mailboxes.importer import import_mailboxes
from warmup_dagster.testing.certificates import self_signed_cert
from warmup_dagster.testing.deployment import DagsterDeployment
from warmup_dagster.testing.imap_server import DeliveringSmtp
from warmup_dagster_tests.conftest import TEST_SECRET
from warmup_dagster_tests.day_sends import at_quota, day_sends
from warmup_dagster_tests.engagement.conftest import started_dovecot
from warmup_dagster_tests.mailboxes.csvdata import csv_text, row

# A Monday's window of five hours from 06:00 UTC at 120x: 150 real seconds.
START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
SPEED = 120
MAILBOXES = 6
QUOTA = 8
PASSWORD = "restart-password"
KILL_AFTER = MAILBOXES * QUOTA // 4  # sends that count before the crash
DOWN_S = 5  # real seconds between the crash and the new daemon's start


@pytest.fixture
def app_url(pg_databases, pg_template):
    url = pg_databases.url(pg_databases.create(template=pg_template))
    migrate.upgrade(url)
    return url


@pytest.fixture
def cert(tmp_path_factory):
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


def _env(app_url: str, cert) -> dict[str, str]:
    return {
        "WARMUP_DATABASE_URL": app_url,
        "WARMUP_SECRET_KEY": TEST_SECRET,
        "WARMUP_CLOCK_START": START.isoformat(),
        "WARMUP_CLOCK_SPEED": str(SPEED),
        "WARMUP_SEND_WINDOW_END_HOUR": "11",
        "WARMUP_DAILY_VARIANCE": "0",
        "WARMUP_SCHEDULER_INTERVAL_MS": "1000",
        "WARMUP_CATCH_UP_INTERVAL_SECONDS": "60",
        "WARMUP_SMTP_CA_FILE": str(cert[0]),
        "WARMUP_IMAP_CA_FILE": str(cert[0]),
        # Clock time: 5 real seconds for an SMTP session, 30 for a lease. A job a dead run held is
        # taken over 30 real seconds after its claim at most.
        "WARMUP_SMTP_TIMEOUT_SECONDS": "600",
        "WARMUP_IMAP_TIMEOUT_SECONDS": "300",
        "WARMUP_SEND_LEASE_SECONDS": "3600",
        # A sender run lives 30 real seconds, waiting for its next due job: the crash finds
        # runs in the middle of their lives.
        "WARMUP_SENDER_RUN_MAX_SECONDS": "3600",
        # WARMUP_RUN_DEAD_SECONDS keeps its default, under the floor of 30 real seconds here.
    }


def _import(engine, smtp: DeliveringSmtp, dovecot) -> None:
    rows = []
    for i in range(MAILBOXES):
        email = f"box{i}@owner{i % 3}-d{i}.example"
        dovecot.add_user(email, PASSWORD)
        smtp.users[email] = PASSWORD
        rows.append(
            row(
                email,
                f"owner{i % 3}",
                smtp_host="localhost",
                smtp_port=smtp.port,
                smtp_security="starttls",
                smtp_password=PASSWORD,
                imap_host="localhost",
                imap_port=dovecot.ssl_port,
                imap_security="ssl",
                imap_password=PASSWORD,
                timezone="UTC",
                daily_limit=QUOTA,
                ramp_start=QUOTA,
                reply_rate=0,
            )
        )
    import_mailboxes(
        engine, io.StringIO(csv_text(rows)), cipher=Cipher(TEST_SECRET), clock=FixedClock(START)
    )


def _day(engine) -> tuple[dict[int, int], Counter]:
    return day_sends(engine, START.date())


def _at_quota(engine) -> bool:
    return at_quota(engine, START.date(), MAILBOXES)


def _living(instance: dg.DagsterInstance) -> dict[str, str]:
    """The runs whose processes are alive, or should be: job name by run id."""
    runs = instance.get_runs(dg.RunsFilter(statuses=LIVING))
    return {r.run_id: r.job_name for r in runs}


@pytest.mark.daemon
@pytest.mark.faults
@pytest.mark.slow(200)
def test_a_daemon_killed_with_its_runs_mid_day_loses_nothing_and_launches_nothing_twice(
    tmp_path, pg_databases, app_url, monkeypatch, cert
):
    engine = make_engine(app_url)
    dovecot = started_dovecot(cert)
    storage = pg_databases.url(pg_databases.create())
    monkeypatch.setenv("WARMUP_DAGSTER_POSTGRES_URL", storage)
    home = tmp_path / "dagster_home"
    env = _env(app_url, cert)
    try:
        with DeliveringSmtp(
            dovecot, junk_share=0.3, users={}, tls="starttls", cert=cert[0], key=cert[1]
        ) as smtp:
            _import(engine, smtp, dovecot)
            first = DagsterDeployment(home, storage, env)
            with first:
                instance = first.instance()

                def mid_day() -> bool:
                    sending = "send_mail" in _living(instance).values()
                    return sending and sum(_day(engine)[1].values()) >= KILL_AFTER

                first.wait_for(mid_day, 240, f"{KILL_AFTER} sends and a sender run at work")
                first.kill()
                killed = _living(instance)
                crashed_at = RealClock().now().timestamp()
            RealClock().sleep(DOWN_S)
            second = DagsterDeployment(home, storage, env)
            second.log_path = home / "daemon-after-restart.log"
            with second:
                second.wait_for(lambda: _at_quota(engine), 300, "the day at its quota")
                second.drain(
                    ("dispatch_sensor", "mailbox_partitions_sensor", "catch_up_sensor"), 120
                )
            received = [m.message["Message-ID"] for m in smtp.received]
    finally:
        dovecot.stop()
    quotas, sent = _day(engine)
    engine.dispose()

    assert set(quotas.values()) == {QUOTA}
    assert sent == Counter(quotas)  # every mailbox at its quota, none past it
    assert len(received) == len(set(received)) == MAILBOXES * QUOTA  # nothing sent twice

    runs = instance.get_runs()
    by_id = {r.run_id: r for r in runs}
    # The crash was real: sender runs died at work, and dead_runs_sensor failed each run that
    # died.
    assert "send_mail" in killed.values()
    for run_id, job in killed.items():
        run = by_id[run_id]
        assert run.status == dg.DagsterRunStatus.FAILURE
        (failure,) = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert "dead_runs_sensor" in failure.message, (run_id, failure.message)
        print(  # the figures of docs/RELIABILITY.md (make test-faults shows them)
            f"{job} run {run_id} failed {failure.timestamp - crashed_at:.0f} real s after the "
            f"crash: {failure.message}"
        )
    # The new daemon launched the senders that finished the day.
    after = [
        r
        for r in runs
        if r.job_name == "send_mail"
        and instance.get_run_record_by_id(r.run_id).create_timestamp.timestamp() > crashed_at
    ]
    assert any(r.status == dg.DagsterRunStatus.SUCCESS for r in after)
    # Each run key launched one run; a retry of a failed run carries its parent's key.
    keys = Counter(
        r.tags["dagster/run_key"]
        for r in runs
        if "dagster/run_key" in r.tags and "dagster/parent_run_id" not in r.tags
    )
    assert keys and max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]
    unfinished = [r.run_id for r in runs if not r.is_finished]
    assert not unfinished
    broken = [
        (r.job_name, r.run_id)
        for r in runs
        if r.status == dg.DagsterRunStatus.FAILURE and r.run_id not in killed
    ]
    assert not broken, f"failed runs besides those killed: {broken}"
