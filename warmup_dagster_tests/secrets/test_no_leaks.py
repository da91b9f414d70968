"""Planted passwords appear nowhere but encrypted: not in logs, Dagster's event logs, run
config or metadata, stored errors and server replies, the CLI's output or the metrics.

Four mailboxes are imported through the CLI with known passwords and go through a real day:
a planning run, a sender run and an engagement run through Dagster, against real servers
(an SMTP server delivering into Dovecot, an SMTP server that echoes the login back in its
replies, Dovecot over IMAPS). One mailbox's SMTP password is wrong at the echoing server, one
mailbox's IMAP password is wrong at Dovecot. Then every place a secret could end up is read
and searched for each password in every form it travels in. Both databases.
"""

from __future__ import annotations

import base64
import logging
import quopri
import traceback
import urllib.parse
import urllib.request
from datetime import timedelta

import dagster as dg
import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster.assets.send_plan import send_plan
from warmup_dagster.cli import main
from warmup_dagster.core.slots import PLAN_END_MARGIN
from warmup_dagster.db.models import EngagementMailbox, Mailbox, MailboxState, SendLog
from warmup_dagster.jobs import RANGE_END_TAG, RANGE_START_TAG, engage_job, send_job
from warmup_dagster.resources import WarmupDatabase, WarmupSecrets
from warmup_dagster.secrets.redact import MASK
from warmup_dagster.testing.certificates import self_signed_cert
from warmup_dagster.testing.imap_server import DeliveringSmtp, DovecotMissing, DovecotServer
from warmup_dagster.testing.smtp_server import FaultySmtpServer
from warmup_dagster_tests.conftest import MONDAY_5AM, TEST_SECRET
from warmup_dagster_tests.mailboxes.csvdata import csv_text, row
from warmup_dagster_tests.secrets.snapshot import database_rows
from warmup_dagster_tests.test_metrics import metrics_server  # noqa: F401  (a fixture)

# ASCII with the characters base64, quoted-printable and URL encoding each change.
PASSWORDS = {
    "smtp": {k: f"Pl4nted=smtp+{k}/pw" for k in "abcd"},
    "imap": {k: f"Pl4nted=imap+{k}/pw" for k in "abcd"},
}
WRONG_IMAP_AT_DOVECOT = "b"  # Dovecot knows another password for b: its login is refused
WRONG_SMTP_AT_ECHO = "d"  # the echoing server knows another password for d: 535, echoed
ECHOING = "cd"  # c and d send through the echoing server, a and b through the delivering one
# Every slot of the day is due (planned up to PLAN_END_MARGIN before the 22:00 end) and the
# window still takes claims (until END_MARGIN, 3 minutes, before it): at 21:00 a mailbox whose
# two slots fell after it sent nothing, and d's refusal did not happen (2 runs in 13).
SEND_AT = MONDAY_5AM.replace(hour=22) - PLAN_END_MARGIN + timedelta(minutes=1)
ENGAGE_AT = SEND_AT + timedelta(minutes=30)
# aiosmtpd's own log: the test servers' side of the conversation, not the project's.
SERVER_LOGGERS = ("mail.log",)


def email(k: str) -> str:
    return f"{k}.owner@{k}-domain.example"


def forms(password: str, username: str) -> dict[str, str]:
    """Every form a password travels in, worked out here by hand (not by `secrets.redact`)."""
    raw = password.encode()
    return {
        "plain": password,
        "base64": base64.b64encode(raw).decode(),  # AUTH LOGIN sends the password so
        "quoted-printable": quopri.encodestring(raw).decode().strip(),
        "url-encoded": urllib.parse.quote(password, safe=""),
        "url-encoded+": urllib.parse.quote_plus(password),
        "AUTH PLAIN": base64.b64encode(b"\0" + username.encode() + b"\0" + raw).decode(),
    }


PLANTED = {
    f"{side} password of {k}, {form}": text
    for side in PASSWORDS
    for k, password in PASSWORDS[side].items()
    for form, text in forms(password, email(k)).items()
}


def leaks(where: str, text: str) -> list[str]:
    return [f"{name} in {where}" for name, form in PLANTED.items() if form in text]


class Captured(logging.Handler):
    """Every record any logger emits, as formatted text with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(SERVER_LOGGERS):
            self.texts.append(self.format(record))


@pytest.fixture
def captured_logs():
    handler, root = Captured(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def servers(tmp_path):
    cert = self_signed_cert(tmp_path)
    try:
        dovecot = DovecotServer(cert=cert[0], key=cert[1])
        dovecot.start()
    except DovecotMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    for k in "abcd":
        known = PASSWORDS["imap"][k] + ("-not" if k == WRONG_IMAP_AT_DOVECOT else "")
        dovecot.add_user(email(k), known)
    users = {email(k): PASSWORDS["smtp"][k] for k in "abcd"}
    echo_users = {**users, email(WRONG_SMTP_AT_ECHO): "another-password"}
    delivering = DeliveringSmtp(dovecot, users=users, tls="starttls", cert=cert[0], key=cert[1])
    echoing = FaultySmtpServer(
        users=echo_users, tls="ssl", cert=cert[0], key=cert[1], echo_credentials=True
    )
    with delivering, echoing:
        yield cert, dovecot, delivering, echoing
    dovecot.stop()


def _pool_csv(dovecot, delivering, echoing) -> str:
    rows = []
    for k in "abcd":
        smtp = echoing if k in ECHOING else delivering
        rows.append(
            row(
                email(k),
                f"owner-{k}",
                smtp_host="localhost",
                smtp_port=smtp.port,
                smtp_security="ssl" if k in ECHOING else "starttls",
                smtp_username=email(k),
                smtp_password=PASSWORDS["smtp"][k],
                imap_host="localhost",
                imap_port=dovecot.ssl_port,
                imap_security="ssl",
                imap_username=email(k),
                imap_password=PASSWORDS["imap"][k],
                timezone="UTC",
                ramp_start=2,
                reply_rate=1,
            )
        )
    return csv_text(rows)


def _environment(db_url, tmp_path, monkeypatch, cert):
    """The settings of the day, the CLI (its outputs kept) and a way to set the clock."""
    for name, value in {
        "WARMUP_DATABASE_URL": db_url,
        "WARMUP_SECRET_KEY": TEST_SECRET,
        "WARMUP_SMTP_CA_FILE": str(cert[0]),
        "WARMUP_SMTP_TIMEOUT_SECONDS": "10",
        "WARMUP_IMAP_TIMEOUT_SECONDS": "10",
        "WARMUP_DAILY_VARIANCE": "0",
        "WARMUP_SENDER_RUN_MAX_SECONDS": "20",
        "WARMUP_ENGAGE_LOOK_DELAY_MIN": "1",
        "WARMUP_ENGAGE_LOOK_DELAY_MAX": "2",
        "WARMUP_CLOCK_SPEED": "1",
        "DAGSTER_HOME": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)
    outputs: dict[str, str] = {}
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(main, list(args))
        outputs[" ".join(args)] = result.output
        return result.output

    def at(when) -> None:
        monkeypatch.setenv("WARMUP_CLOCK_START", when.isoformat())

    return cli, outputs, at


def _resources(db_url: str) -> dict:
    return {
        "warmup_db": WarmupDatabase(database_url=db_url),
        "warmup_secrets": WarmupSecrets(secret_key=dg.EnvVar("WARMUP_SECRET_KEY")),
    }


def _plan(resources: dict, instance):
    """The planning run: every mailbox's day, as a range run."""
    keys = [email(k) for k in "abcd"]
    instance.add_dynamic_partitions("mailboxes", keys)
    return dg.materialize(
        [send_plan],
        resources=resources,
        instance=instance,
        tags={RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]},
    )


@pytest.mark.slow(8)
def test_planted_passwords_appear_nowhere(
    db_url,
    engine,
    instance,
    tmp_path,
    monkeypatch,
    servers,
    captured_logs,
    metrics_server,  # noqa: F811
):
    cert, dovecot, delivering, echoing = servers
    cli, outputs, at = _environment(db_url, tmp_path, monkeypatch, cert)

    # The pool, through the CLI, with a rejected import (a bad row carrying a password) first.
    at(MONDAY_5AM)
    pool = tmp_path / "pool.csv"
    pool.write_text(_pool_csv(dovecot, delivering, echoing))
    bad = tmp_path / "bad.csv"
    bad.write_text(csv_text([row(email("a"), smtp_password=PASSWORDS["smtp"]["a"], smtp_port=0)]))
    assert "line 2, smtp_port" in cli("mailboxes", "import", str(bad))
    assert "created: 4" in cli("mailboxes", "import", str(pool))
    cli("config")

    resources = _resources(db_url)
    planning = _plan(resources, instance)
    at(SEND_AT)
    sending = send_job.execute_in_process(resources=resources, instance=instance)
    at(ENGAGE_AT)
    engaging = engage_job.execute_in_process(resources=resources, instance=instance)
    runs = {"planning": planning, "sender": sending, "engagement": engaging}
    assert all(r.success for r in runs.values())
    cli("mailboxes", "list")
    with urllib.request.urlopen(metrics_server, timeout=30) as response:
        scrape = response.read().decode()

    # The day happened as described, so the search below looks at something real.
    with Session(engine) as session:
        boxes = {b.email: b for b in session.scalars(select(Mailbox))}
        log = list(session.scalars(select(SendLog)))
        paused_engagement = {
            box_id: reason
            for box_id, reason in session.execute(
                select(EngagementMailbox.mailbox_id, EngagementMailbox.paused_reason)
            )
            if reason
        }
    refused = boxes[email(WRONG_SMTP_AT_ECHO)]
    assert refused.state is MailboxState.PAUSED and "535" in refused.state_reason
    assert MASK in refused.state_reason  # the echoed login, scrubbed
    echoed_replies = [
        e.smtp_reply for e in log if e.mailbox_id == boxes[email("c")].id and e.smtp_reply
    ]
    assert echoed_replies and all(MASK in reply for reply in echoed_replies)
    assert {boxes[email(k)].id for k in "ab"} <= {e.mailbox_id for e in log if e.smtp_code == 250}
    assert "IMAP login refused" in paused_engagement[boxes[email(WRONG_IMAP_AT_DOVECOT)].id]
    # the delivering server's mail was found and filed over IMAPS by the engagement run
    assert sum(len(dovecot.messages(email(k), "Warmup")) for k in "acd") >= 1
    assert captured_logs.texts and "warmup_" in scrape
    assert refused.email in outputs["mailboxes list"] and "535" in outputs["mailboxes list"]

    found = []
    for name, text in outputs.items():
        found += leaks(f"the output of `warmup {name}`", text)
    found += leaks("Python logging", "\n".join(captured_logs.texts))
    found += leaks("the metrics", scrape)
    for kind, result in runs.items():
        run = instance.get_run_by_id(result.run_id)
        found += leaks(f"the {kind} run's config and tags", repr((run.run_config, run.tags)))
        events = "\n".join(dg.serialize_value(e) for e in instance.all_logs(result.run_id))
        assert events
        found += leaks(f"the {kind} run's event log and metadata", events)
    for table, rows in database_rows(engine).items():
        found += leaks(f"table {table}", repr(rows))
    assert found == []


REFUSAL = "send_log refuses writes (test)"


def _refuse_send_log_writes(engine, backend: str) -> None:
    """A real database refusal of every row the sender logs: its outcome write fails with an
    error that is no outage (not retried), carrying the statement and its parameters (the
    servers' replies) as SQLAlchemy words it, and the run fails."""
    with engine.begin() as conn:
        if backend == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_send_log BEFORE INSERT ON send_log "
                f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_send_log() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_send_log BEFORE INSERT ON send_log "
                "FOR EACH ROW EXECUTE FUNCTION refuse_send_log()"
            )


def test_a_failing_run_leaks_no_password(
    db_url, backend, engine, instance, tmp_path, monkeypatch, servers, captured_logs
):
    """A sender run that fails inside its op, after its sessions: c's 250 replies echo its
    login, d's login is refused (535, echoed) at the echoing server, and then the database
    refuses the outcome write. The exception it raises (with its chain and stack), the failure
    events in the instance's event log (with their error's stack), every other event, the
    logs and the stored rows hold no planted password in any form."""
    cert, dovecot, delivering, echoing = servers
    cli, outputs, at = _environment(db_url, tmp_path, monkeypatch, cert)
    at(MONDAY_5AM)
    pool = tmp_path / "pool.csv"
    pool.write_text(_pool_csv(dovecot, delivering, echoing))
    assert "created: 4" in cli("mailboxes", "import", str(pool))
    resources = _resources(db_url)
    assert _plan(resources, instance).success
    _refuse_send_log_writes(engine, backend)

    at(SEND_AT)
    with pytest.raises(Exception) as raised:  # whatever it is, its text is searched
        send_job.execute_in_process(resources=resources, instance=instance)
    exception = "".join(traceback.format_exception(raised.value))  # its causes and stacks too
    [run] = instance.get_runs(filters=dg.RunsFilter(job_name=send_job.name))
    assert run.status is dg.DagsterRunStatus.FAILURE
    records = instance.all_logs(run.run_id)
    failures = [
        r.dagster_event.step_failure_data.error.to_string()
        for r in records
        if r.dagster_event is not None and r.dagster_event.is_step_failure
    ]
    run_failures = [
        r for r in records if r.dagster_event is not None and r.dagster_event.is_run_failure
    ]
    cli("mailboxes", "list")

    # The run failed as described: inside its op, on the refused write, after the servers'
    # replies (which echo the logins) were in hand: the statement's parameters are in the
    # exception and in the failure event, scrubbed.
    assert echoing.transactions >= 1 and echoing.logins_refused >= 1
    assert len(failures) == 1 and run_failures
    for text in (exception, failures[0]):
        assert REFUSAL in text and "INSERT INTO send_log" in text
        assert 'File "' in text  # the stack is part of what was searched
        assert MASK in text  # the echoing server's replies, scrubbed before the write

    found = leaks("the exception the run raised", exception)
    found += leaks("the step failure's error and stack", "\n".join(failures))
    found += leaks("the run's event log", "\n".join(dg.serialize_value(r) for r in records))
    found += leaks("the run's config and tags", repr((run.run_config, run.tags)))
    found += leaks("Python logging", "\n".join(captured_logs.texts))
    for name, text in outputs.items():
        found += leaks(f"the output of `warmup {name}`", text)
    for table, rows in database_rows(engine).items():
        found += leaks(f"table {table}", repr(rows))
    assert found == []
