"""`warmup report under-quota`, `warmup report hourly` and `warmup audit` on a day the real
Sender sent, through click's CliRunner, on both databases."""

import csv
import io

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session

from warmup_dagster.cli import main
from warmup_dagster.db.models import JobStatus, Mailbox
from warmup_dagster_tests.conftest import TEST_SECRET
from warmup_dagster_tests.factories import add_job, log_send
from warmup_dagster_tests.fill.days import BOXES, DAY


@pytest.fixture
def warmup(db_url, tmp_path, sent_day):
    env = {
        "WARMUP_DATABASE_URL": db_url,
        "WARMUP_SECRET_KEY": TEST_SECRET,
        "DAGSTER_HOME": str(tmp_path),
        "WARMUP_CLOCK_START": "2026-03-02T23:00:00+00:00",
        "WARMUP_CLOCK_SPEED": "1",
    }

    def run(*args: str):
        return CliRunner().invoke(main, list(args), env=env)

    return run


def test_under_quota_lists_the_mailboxes_furthest_under_first(warmup):
    result = warmup("report", "under-quota", "--date", "2026-03-02")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["email", "sent", "quota", "daily_limit", "fill"]
    assert lines[1].split() == [BOXES[2], "0", "4", "40", "0.0%"]
    assert lines[2].split() == [BOXES[0], "2", "3", "40", "66.7%"]
    assert lines[3] == "2 of 3 mailboxes with a quota under it on 2026-03-02, 5 sends short"


def test_under_quota_as_csv(warmup):
    result = warmup("report", "under-quota", "--date", "2026-03-02", "--csv")
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.output))) == [
        ["email", "sent", "quota", "daily_limit", "fill"],
        [BOXES[2], "0", "4", "40", "0.000"],
        [BOXES[0], "2", "3", "40", "0.667"],
    ]


def test_hourly_counts_the_sends_of_each_hour(warmup):
    result = warmup("report", "hourly", "--date", "2026-03-02")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "hour_utc          sends",
        "2026-03-02 09:00  4",
        "4 sends of 2026-03-02",
    ]
    as_csv = warmup("report", "hourly", "--date", "2026-03-02", "--csv").output
    assert as_csv == "hour_utc,sends\n2026-03-02 09:00,4\n"


def test_audit_passes_a_day_the_sender_sent_and_fails_a_broken_one(warmup, engine, sent_day):
    result = warmup("audit", "--date", "2026-03-02")
    assert result.exit_code == 0, result.output
    assert result.output == "no rule broken by the 4 sends of 2026-03-02\n"

    with Session(engine) as session, session.begin():
        box = session.get_one(Mailbox, sent_day.ids[BOXES[0]])
        for at in (DAY.replace(hour=9, second=40), DAY.replace(hour=5)):
            log_send(session, add_job(session, box, box, at, JobStatus.SENT), at)
    result = warmup("audit", "--date", "2026-03-02")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"send window: mailbox {BOXES[0]} at 2026-03-02 05:00:00 UTC: sent at 05:00:00 local"
        " (UTC), outside its 06:00-22:00 window of 2026-03-02",
        f"mailbox spacing: mailbox {BOXES[0]} at 2026-03-02 09:00:40 UTC: 40 s after its send"
        " at 09:00:00 UTC; the minimum is 120 s",
        "2 rule breaks in the 6 sends of 2026-03-02",
    ]


@pytest.mark.parametrize("command", [("report", "hourly"), ("report", "under-quota"), ("audit",)])
def test_a_bad_date_is_refused_naming_the_option(warmup, command):
    result = warmup(*command, "--date", "2026-02-30")
    assert result.exit_code == 2
    assert "Invalid value for '--date': '2026-02-30' does not match the format '%Y-%m-%d'" in (
        result.output
    )
    assert warmup(*command).exit_code == 2  # --date is required


def test_a_day_with_nothing_sent_reports_nothing(warmup):
    result = warmup("report", "under-quota", "--date", "2026-03-09")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "0 of 0 mailboxes with a quota under it on 2026-03-09, 0 sends short"
        " (its windows are still open)"
    )
