"""The `warmup` command, driven as a user would (CliRunner, plus the installed script once)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from warmup_dagster.cli import main
from warmup_dagster.db import migrate
from warmup_dagster.terminal import printable
from warmup_dagster_tests.conftest import TEST_SECRET
from warmup_dagster_tests.mailboxes.csvdata import csv_text, row


@pytest.fixture
def warmup(empty_db_url, tmp_path):
    runner = CliRunner()
    env = {
        "WARMUP_DATABASE_URL": empty_db_url,
        "WARMUP_SECRET_KEY": TEST_SECRET,
        "DAGSTER_HOME": str(tmp_path),
    }

    def run(*args: str, extra_env: dict[str, str] | None = None):
        return runner.invoke(main, list(args), env={**env, **(extra_env or {})})

    return run


def _csv(tmp_path, rows) -> str:
    path = tmp_path / "mailboxes.csv"
    path.write_text(csv_text(rows))
    return str(path)


def test_upgrade_import_list_pause_resume(warmup, tmp_path):
    result = warmup("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert f"database at revision {migrate.head_revision()}" in result.output

    path = _csv(
        tmp_path, [row("a@ann.example"), row("b@bob.example", "bob", display_name="Bob Ng")]
    )
    result = warmup("mailboxes", "import", path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run, nothing written" in result.output
    assert "0 mailboxes" in warmup("mailboxes", "list").output

    result = warmup("mailboxes", "import", path)
    assert result.exit_code == 0, result.output
    assert "rows read: 2; created: 2; updated: 0; rejected: 0; new users: 2" in result.output
    assert "secret" not in result.output

    result = warmup("mailboxes", "pause", "A@ann.example", "--reason", "535 from provider")
    assert result.exit_code == 0, result.output
    assert "A@ann.example: ACTIVE -> PAUSED (535 from provider)" in result.output
    listing = warmup("mailboxes", "list").output
    paused_line = next(line for line in listing.splitlines() if line.startswith("a@ann.example"))
    assert "PAUSED" in paused_line and paused_line.endswith("535 from provider")
    # The name its mail carries: as imported, or in parentheses when derived from the address
    # ("a@": no word of two letters, so the domain's team).
    assert "  (The Ann team)  " in paused_line
    bob_line = next(line for line in listing.splitlines() if line.startswith("b@bob"))
    assert " Bob Ng " in bob_line
    assert "2 mailboxes" in listing
    assert "1 mailboxes" in warmup("mailboxes", "list", "--state", "paused").output

    assert warmup("mailboxes", "resume", "a@ann.example").exit_code == 0
    assert "0 mailboxes" in warmup("mailboxes", "list", "--state", "paused").output


def test_import_rejects_bad_rows_with_line_and_field(warmup, tmp_path):
    warmup("db", "upgrade")
    path = _csv(tmp_path, [row("a@ann.example"), row("b@bob.example", "bob", timezone="Mars/Base")])
    result = warmup("mailboxes", "import", path)
    assert result.exit_code == 1
    assert "nothing imported: 1 of 2 rows rejected" in result.output
    assert "line 3, timezone: 'Mars/Base' is not an IANA timezone" in result.output
    assert "0 mailboxes" in warmup("mailboxes", "list").output


def test_import_of_a_file_that_is_not_utf8_is_one_message_naming_the_line(warmup, tmp_path):
    warmup("db", "upgrade")
    path = tmp_path / "latin1.csv"
    path.write_bytes(csv_text([row("a@ann.example", display_name="José")]).encode("cp1252"))
    result = warmup("mailboxes", "import", str(path))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "line 2, display_name: is not UTF-8 on line 2 at column " in result.output
    assert "0 mailboxes" in warmup("mailboxes", "list").output


def test_import_over_the_plan_names_the_plan_column_and_the_plans(warmup, tmp_path):
    warmup("db", "upgrade")
    path = _csv(tmp_path, [row(f"m{i}@ann.example") for i in range(26)])
    result = warmup("mailboxes", "import", path)
    assert result.exit_code == 1
    assert "nothing imported: 26 of 26 rows rejected" in result.output
    assert (
        "line 2, plan: user 'ann' would have 26 mailboxes, more than plan 'default' (25 "
        "mailboxes, 2,000 sends a day) allows; set the plan column to one of: default (25 / "
        "2,000), pro (500 / 50,000), enterprise (100,000 / 2,000,000)"
    ) in result.output
    assert "line 27, plan: user 'ann' would have 26 mailboxes" in result.output
    assert "0 mailboxes" in warmup("mailboxes", "list").output


def test_pause_needs_a_reason_and_a_known_mailbox(warmup):
    warmup("db", "upgrade")
    assert "Missing option '--reason'" in warmup("mailboxes", "pause", "x@y.example").output
    result = warmup("mailboxes", "pause", "x@y.example", "--reason", "r")
    assert result.exit_code == 1 and "no mailbox 'x@y.example'" in result.output


def test_invalid_configuration_stops_with_the_variable_named(warmup):
    result = warmup("db", "upgrade", extra_env={"WARMUP_SAME_MAILBOX_DELAY_MIN": "30"})
    assert result.exit_code == 2
    assert "WARMUP_SAME_MAILBOX_DELAY_MIN (30.0) is above WARMUP_SAME_MAILBOX_DELAY_MAX" in (
        result.output
    )


def test_a_bad_setting_is_one_line_without_usage_banner_traceback_or_password(warmup):
    bad_url = "postgresql://ann:hunter2@db.example:99999/warmup"
    for command in (("config",), ("db", "upgrade"), ("mailboxes", "list")):
        result = warmup(*command, extra_env={"WARMUP_DATABASE_URL": bad_url})
        assert result.exit_code == 2
        assert result.output == (
            "Error: Invalid configuration: WARMUP_DATABASE_URL has a port outside 1-65535\n"
        )


def test_config_masks_url_passwords(warmup):
    env = {
        "WARMUP_DATABASE_URL": "postgresql://ann:hunter2@127.0.0.1/warmup",
        "WARMUP_OAUTH_GENERIC_TOKEN_URL": "https://client:hunter3@idp.example/token",
    }
    result = warmup("config", extra_env=env)
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output and "hunter3" not in result.output
    assert "WARMUP_OAUTH_GENERIC_TOKEN_URL=https://client:********@idp.example/token" in (
        result.output
    )


def test_import_without_secret_key_explains(warmup, tmp_path):
    warmup("db", "upgrade")
    result = warmup(
        "mailboxes",
        "import",
        _csv(tmp_path, [row("a@x.example")]),
        extra_env={"WARMUP_SECRET_KEY": ""},
    )
    assert result.exit_code == 1
    assert "WARMUP_SECRET_KEY is not set" in result.output


def test_a_misspelt_variable_stops_with_the_closest_name(warmup):
    result = warmup("mailboxes", "list", extra_env={"WARMUP_WORKERS_COUNT": "3"})
    assert result.exit_code == 2
    assert "WARMUP_WORKERS_COUNT is not a known variable (did you mean WARMUP_WORKER_COUNT?)" in (
        result.output
    )


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("", "WARMUP_SECRET_KEY is not set"),
        ("too-short", "WARMUP_SECRET_KEY is shorter than 16 characters"),
    ],
)
@pytest.mark.parametrize("command", [("config",), ("db", "upgrade")])
def test_commands_that_need_the_secret_key_stop_before_doing_anything(
    warmup, command, secret, message
):
    result = warmup(*command, extra_env={"WARMUP_SECRET_KEY": secret})
    assert result.exit_code == 1
    assert message in result.output
    assert "WARMUP_WORKER_COUNT" not in result.output and "database at" not in result.output
    assert "current: none" in warmup("db", "current").output  # nothing was migrated


def test_downgrade_and_current(warmup):
    warmup("db", "upgrade")
    assert f"current: {migrate.head_revision()}" in warmup("db", "current").output
    assert warmup("db", "downgrade", "base").exit_code == 0
    assert "current: none" in warmup("db", "current").output


def test_config_hides_the_database_password(warmup):
    result = warmup(
        "config", extra_env={"WARMUP_DATABASE_URL": "postgresql://u:hunter22@db.example/w"}
    )
    assert result.exit_code == 0
    assert "hunter22" not in result.output
    assert "WARMUP_DATABASE_URL=postgresql+psycopg2://u:***@db.example/w" in result.output
    assert "WARMUP_WORKER_COUNT=5" in result.output
    assert "WARMUP_DAILY_VARIANCE=0.1" in result.output
    assert "WARMUP_SECRET_KEY=(set)" in result.output
    assert TEST_SECRET not in result.output


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "warmup"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    assert "mailboxes" in out and "sandbox" in out and "db" in out


HOSTILE = "\x1b]0;owned\x07\x1b[2J\rok\u202egnp.exe\x9b31m"


def test_printable_escapes_every_control_and_keeps_ordinary_text():
    assert printable(HOSTILE) == "\\x1b]0;owned\\x07\\x1b[2J\\rok\\u202egnp.exe\\x9b31m"
    assert printable("José García · 535 5.7.8 ok\ttab") == "José García · 535 5.7.8 ok\\ttab"
    assert printable("line one\r\nline two\x1b", newlines=True) == "line one\\r\nline two\\x1b"
    assert printable("a\nb") == "a\\nb"


def test_data_in_the_listing_and_in_errors_is_printed_escaped(warmup, tmp_path):
    """A pause reason (an SMTP server's reply can be one) and an address typed on the command
    line reach the terminal with their control characters escaped, never raw."""
    warmup("db", "upgrade")
    assert warmup("mailboxes", "import", _csv(tmp_path, [row("a@ann.example")])).exit_code == 0
    result = warmup("mailboxes", "pause", "a@ann.example", "--reason", f"535 {HOSTILE}")
    assert result.exit_code == 0, result.output
    listing = warmup("mailboxes", "list").output
    unsafe = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]")
    for output in (result.output, listing):
        assert not unsafe.search(output), output
        assert printable(HOSTILE) in output
    [line] = [line for line in listing.splitlines() if line.startswith("a@ann.example")]
    assert line.endswith(f"535 {printable(HOSTILE)}")
    result = warmup("mailboxes", "resume", "b\x1b[31m@ann.example")
    assert result.exit_code == 1
    assert "no mailbox 'b\\x1b[31m@ann.example'" in result.output
    # click's own message quotes the path as given: escaped on the way out.
    result = warmup("mailboxes", "import", str(tmp_path / "no\x1b[2Jsuch.csv"))
    assert result.exit_code == 2 and "no\\x1b[2Jsuch.csv" in result.output
    assert not unsafe.search(result.output), result.output
