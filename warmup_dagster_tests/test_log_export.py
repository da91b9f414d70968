"""`warmup export-log`: a local date's send log as CSV, on both databases, after real sends."""

import csv
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster.cli import main
from warmup_dagster.db.models import SendLog
from warmup_dagster.log_export import COLUMNS, LATE
from warmup_dagster_tests.conftest import TEST_SECRET
from warmup_dagster_tests.queue.test_ledger import DAY
from warmup_dagster_tests.sending.test_sender import cert, server
from warmup_dagster_tests.test_metrics import a_morning_of_sends

__all__ = ["cert", "server"]  # fixtures


def export(db_url, tmp_path, *args):
    env = {"WARMUP_DATABASE_URL": db_url, "WARMUP_SECRET_KEY": TEST_SECRET}
    return CliRunner().invoke(main, ["export-log", *args], env=env)


def test_a_days_log_with_a_reply_and_failed_attempts(
    engine, db_url, cipher, server, cert, tmp_path
):
    a_morning_of_sends(engine, cipher, server, cert)
    out = tmp_path / "log.csv"
    result = export(db_url, tmp_path, "--date", "2026-03-02", "--out", str(out))
    assert result.exit_code == 0, result.output
    with out.open(newline="") as file:
        reader = csv.reader(file)
        header = next(reader)
        rows = [dict(zip(header, r, strict=True)) for r in reader]
    assert tuple(header) == COLUMNS
    with Session(engine) as session:
        log = list(session.scalars(select(SendLog).order_by(SendLog.id)))
    assert f"{len(log):,} send log rows of 2026-03-02 written to {out}" in result.output
    assert [r["message_id"] for r in rows] == [e.message_id for e in log]
    assert [r["status"] for r in rows] == [e.status.name for e in log]
    assert [r["attempts"] for r in rows] == [str(e.attempt) for e in log]

    [reply] = [r for r in rows if r["kind"] == "reply"]
    assert reply["in_reply_to"] == "<m1@x.example>"
    assert reply["status"] == "SENT" and reply["mailbox_email"] == "box1@u0.example"
    assert reply["user"] == "owner0"
    assert {r["kind"] for r in rows} == {"send", "reply"}

    [hard] = [r for r in rows if r["recipient_email"] == "code550@x.example"]
    assert hard["status"] == "FAILED" and "550" in hard["error"]
    assert hard["in_reply_to"] == ""
    refused_login = next(r for r in rows if r["mailbox_email"] == "bad@bad.example")
    assert refused_login["status"] == "RETRY" and "535" in refused_login["error"]

    lost = [r for r in rows if r["recipient_email"] == "lost@x.example"]
    assert [(r["status"], r["error"].startswith(LATE)) for r in lost] == [
        ("RETRY", False),  # the abandoned attempt, closed by the claim that took it over
        ("SENT", False),
        ("SENT", True),  # the dead run's late report: counted nowhere, and it says so
    ]
    assert lost[0]["error"].startswith("abandoned:")

    for r in rows:
        scheduled = datetime.fromisoformat(r["scheduled_for_utc"])
        attempted = datetime.fromisoformat(r["sent_at_utc"])
        assert scheduled.utcoffset() == attempted.utcoffset() == timedelta(0)
        assert DAY <= scheduled <= attempted < DAY + timedelta(days=1)
        assert r["job_id"].isdigit()
    assert datetime.fromisoformat(reply["scheduled_for_utc"]) == datetime(
        2026, 3, 2, 9, 10, tzinfo=UTC
    )


def test_another_date_has_no_rows_and_a_bad_date_names_the_option(engine, db_url, tmp_path):
    out = tmp_path / "empty.csv"
    result = export(db_url, tmp_path, "--date", "2026-03-03", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines() == [",".join(COLUMNS)]
    bad = export(db_url, tmp_path, "--date", "03/02/2026", "--out", str(out))
    assert bad.exit_code == 2
    assert "--date" in bad.output and "03/02/2026" in bad.output
