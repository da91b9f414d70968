import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from warmup_dagster.settings import OTHER_VARIABLES, Settings, SettingsError, load_settings
from warmup_dagster.testing.certificates import self_signed_cert

ROOT = Path(__file__).parents[1]

DEFAULTS_OF_THE_REPLACED_SYSTEM = {
    "WARMUP_SCHEDULER_INTERVAL_MS": 60000,
    "WARMUP_JOBS_PER_SCHEDULER_RUN": 500,
    "WARMUP_WORKER_CONCURRENCY": 10,
    "WARMUP_WORKER_COUNT": 5,
    "WARMUP_SAME_MAILBOX_DELAY_MIN": 2,
    "WARMUP_SAME_MAILBOX_DELAY_MAX": 10,
    "WARMUP_GLOBAL_SENDS_PER_MINUTE": 100,
    "WARMUP_GLOBAL_SENDS_PER_HOUR": 5000,
    "WARMUP_USER_SENDS_PER_MINUTE": 5,
    "WARMUP_USER_SENDS_PER_HOUR": 200,
    "WARMUP_SEND_WINDOW_START_HOUR": 6,
    "WARMUP_SEND_WINDOW_END_HOUR": 22,
    "WARMUP_SEND_WINDOW_TIMEZONE": "UTC",
    "WARMUP_CLOCK_SPEED": 1,
    "WARMUP_DAILY_VARIANCE": 0.1,
}


def test_defaults_are_those_of_the_system_this_project_replaces():
    settings = load_settings({"DAGSTER_HOME": "/srv/dagster"})
    for name, value in DEFAULTS_OF_THE_REPLACED_SYSTEM.items():
        field = name.removeprefix("WARMUP_").lower()
        assert getattr(settings, field) == value, name
    assert settings.database_url == "sqlite:////srv/dagster/warmup.sqlite"
    assert settings.clock_start is None


def test_values_are_read_from_the_environment():
    settings = load_settings(
        {
            "WARMUP_SAME_MAILBOX_DELAY_MIN": "0.5",
            "WARMUP_SAME_MAILBOX_DELAY_MAX": "2.5",
            "WARMUP_SEND_WINDOW_TIMEZONE": "Asia/Kolkata",
            "WARMUP_DATABASE_URL": "postgresql://u:p@db.example:5432/warmup",
            "WARMUP_CLOCK_SPEED": "60",
            "WARMUP_CLOCK_START": "2026-03-02T06:00:00",
        }
    )
    assert settings.same_mailbox_delay_min == 0.5
    assert settings.same_mailbox_delay_max == 2.5
    assert settings.send_window_timezone == "Asia/Kolkata"
    # The bare scheme would mean psycopg 3 under SQLAlchemy 2.1, which breaks dagster-postgres.
    assert settings.database_url == "postgresql+psycopg2://u:p@db.example:5432/warmup"
    assert settings.clock_speed == 60
    assert settings.clock_start == datetime(2026, 3, 2, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WARMUP_SAME_MAILBOX_DELAY_MIN": "11"}, "WARMUP_SAME_MAILBOX_DELAY_MIN (11.0) is above"),
        (
            {"WARMUP_SEND_WINDOW_START_HOUR": "25"},
            "WARMUP_SEND_WINDOW_START_HOUR='25' must be an hour",
        ),
        ({"WARMUP_SEND_WINDOW_END_HOUR": "-1"}, "WARMUP_SEND_WINDOW_END_HOUR='-1' must be an hour"),
        (
            {"WARMUP_SEND_WINDOW_START_HOUR": "22", "WARMUP_SEND_WINDOW_END_HOUR": "6"},
            "must be before",
        ),
        ({"WARMUP_GLOBAL_SENDS_PER_MINUTE": "0"}, "WARMUP_GLOBAL_SENDS_PER_MINUTE='0' must be"),
        ({"WARMUP_USER_SENDS_PER_HOUR": "-5"}, "WARMUP_USER_SENDS_PER_HOUR='-5' must be"),
        ({"WARMUP_WORKER_COUNT": "five"}, "WARMUP_WORKER_COUNT='five' is not a whole number"),
        (
            {"WARMUP_SEND_WINDOW_TIMEZONE": "Mars/Olympus"},
            "WARMUP_SEND_WINDOW_TIMEZONE='Mars/Olympus' is not",
        ),
        ({"WARMUP_DATABASE_URL": "not a url"}, "WARMUP_DATABASE_URL is not a database URL"),
        ({"WARMUP_DATABASE_URL": "mysql://h/db"}, "WARMUP_DATABASE_URL uses 'mysql'"),
        ({"WARMUP_DATABASE_URL": "sqlite://"}, "WARMUP_DATABASE_URL has no file path"),
        ({"WARMUP_CLOCK_SPEED": "0"}, "WARMUP_CLOCK_SPEED='0' must be a number above 0"),
        ({"WARMUP_CLOCK_START": "yesterday"}, "WARMUP_CLOCK_START='yesterday' is not an ISO 8601"),
        ({"WARMUP_USER_SENDS_PER_MINUTE": "500"}, "WARMUP_USER_SENDS_PER_MINUTE (500) is above"),
        ({"WARMUP_CLOCK_SPEED": "inf"}, "WARMUP_CLOCK_SPEED='inf' must be a number above 0"),
        ({"WARMUP_SEND_LEASE_SECONDS": "1.5"}, "WARMUP_SEND_LEASE_SECONDS='1.5' is not a whole"),
        (
            {"WARMUP_SEND_RETRY_BASE_SECONDS": "soon"},
            "WARMUP_SEND_RETRY_BASE_SECONDS='soon' is not a",
        ),
        (
            {"WARMUP_SMTP_CA_FILE": "/no/such/ca.pem"},
            "WARMUP_SMTP_CA_FILE='/no/such/ca.pem' is not a",
        ),
        ({"WARMUP_DAILY_VARIANCE": "1"}, "WARMUP_DAILY_VARIANCE='1' must be a fraction from 0"),
        ({"WARMUP_DAILY_VARIANCE": "-0.1"}, "WARMUP_DAILY_VARIANCE='-0.1' must be a fraction"),
        ({"WARMUP_DAILY_VARIANCE": "10%"}, "WARMUP_DAILY_VARIANCE='10%' is not a number"),
        ({"WARMUP_FIRST_DAY": "half"}, "WARMUP_FIRST_DAY='half' must be prorate or next_day"),
        (
            {"WARMUP_SMTP_TIMEOUT_SECONDS": "300"},
            "WARMUP_SEND_LEASE_SECONDS (600) must be more than twice WARMUP_SMTP_TIMEOUT_SECONDS",
        ),
    ],
)
def test_invalid_values_name_the_variable(env, message):
    with pytest.raises(SettingsError) as excinfo:
        load_settings(env)
    assert message in str(excinfo.value)


def test_every_invalid_variable_is_reported_at_once():
    with pytest.raises(SettingsError) as excinfo:
        load_settings({"WARMUP_WORKER_COUNT": "0", "WARMUP_SEND_WINDOW_TIMEZONE": "Nowhere"})
    assert "WARMUP_WORKER_COUNT" in str(excinfo.value)
    assert "WARMUP_SEND_WINDOW_TIMEZONE" in str(excinfo.value)


def test_database_password_is_not_echoed_in_errors():
    with pytest.raises(SettingsError) as excinfo:
        load_settings({"WARMUP_DATABASE_URL": "oracle://user:hunter2secret@h/db"})
    assert "hunter2secret" not in str(excinfo.value)


def test_blank_values_mean_the_default():
    settings = load_settings({"WARMUP_WORKER_COUNT": "  ", "WARMUP_CLOCK_START": "", "X": "1"})
    assert settings.worker_count == 5 and settings.clock_start is None


@pytest.mark.parametrize("value", ["0", "0.0", "0.25", "0.999"])
def test_daily_variance_is_a_fraction_below_one(value):
    assert load_settings({"WARMUP_DAILY_VARIANCE": value}).daily_variance == float(value)


def test_first_day_is_prorate_unless_set_to_next_day():
    assert load_settings({}).first_day == "prorate"
    assert load_settings({"WARMUP_FIRST_DAY": "Next_Day"}).first_day == "next_day"


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [
        ("WARMUP_WORKERS_COUNT", "WARMUP_WORKER_COUNT"),
        ("WARMUP_DAILY_VARIATION", "WARMUP_DAILY_VARIANCE"),
        ("WARMUP_SECRETKEY", "WARMUP_SECRET_KEY"),
        ("WARMUP_SAME_MAILBOX_DELAY_MINUTES", "WARMUP_SAME_MAILBOX_DELAY_MIN"),
    ],
)
def test_an_unknown_variable_is_named_with_the_closest_known_one(typo, suggestion):
    with pytest.raises(SettingsError) as excinfo:
        load_settings({typo: "3"})
    assert f"{typo} is not a known variable (did you mean {suggestion}?)" in str(excinfo.value)


def test_unknown_and_invalid_variables_are_reported_together():
    with pytest.raises(SettingsError) as excinfo:
        load_settings({"WARMUP_NOTHING_LIKE_IT": "1", "WARMUP_WORKER_COUNT": "0"})
    message = str(excinfo.value)
    assert "WARMUP_NOTHING_LIKE_IT is not a known variable (.env.example lists them all)" in message
    assert "WARMUP_WORKER_COUNT='0' must be a whole number above 0" in message


def test_variables_read_elsewhere_are_known():
    environ = {name: "x" for name in OTHER_VARIABLES}
    assert load_settings(environ).worker_count == 5
    assert set(OTHER_VARIABLES) == {
        "WARMUP_SECRET_KEY",
        "WARMUP_NEW_SECRET_KEY",
        "WARMUP_DAGSTER_POSTGRES_URL",
        "WARMUP_TEST_POSTGRES_URL",
        "WARMUP_SANDBOX_PORT",
    }


def test_every_warmup_variable_the_repository_reads_is_known():
    """A name used in code, scripts or config but missing from the list would be rejected as
    a typo in every process that loads the settings."""
    known = set(Settings.known_variables())
    pattern = re.compile(r"\bWARMUP_[A-Z0-9_]*[A-Z0-9]\b")
    files = [
        *ROOT.glob("warmup_dagster/**/*.py"),
        *ROOT.glob("scripts/*"),
        *ROOT.glob("benchmarks/*.py"),
        *ROOT.glob("*.yaml"),
        ROOT / "warmup_dagster_tests" / "pgserver.py",
    ]
    used = {name for f in files if f.is_file() for name in pattern.findall(f.read_text())}
    # a docstring's placeholder, and the stems of name families in messages
    used -= {"WARMUP_X_Y", "WARMUP_USER_SENDS_PER", "WARMUP_GLOBAL_SENDS_PER"}
    assert used <= known, sorted(used - known)


def test_settings_are_immutable_and_copies_are_validated():
    settings = load_settings({"DAGSTER_HOME": "/srv/dagster"})
    with pytest.raises(ValueError, match="frozen"):
        settings.worker_count = 7
    copy = settings.model_copy(
        update={"database_url": "postgresql://u:p@db.example/w", "worker_count": "7"}
    )
    assert copy.database_url == "postgresql+psycopg2://u:p@db.example/w"  # normalized
    assert copy.worker_count == 7 and settings.worker_count == 5
    with pytest.raises(SettingsError) as excinfo:
        settings.model_copy(update={"database_url": "oracle://u:hunter2@h/db", "clock_speed": 0})
    message = str(excinfo.value)
    assert "WARMUP_CLOCK_SPEED='0' must be a number above 0" in message
    assert "WARMUP_DATABASE_URL uses 'oracle'" in message and "hunter2" not in message
    with pytest.raises(SettingsError, match="WARMUP_SEND_WINDOW_START_HOUR \\(22\\) must be"):
        settings.model_copy(update={"send_window_start_hour": 22})


def test_a_stray_process_environment_does_not_leak_into_a_given_mapping(monkeypatch):
    monkeypatch.setenv("WARMUP_WORKER_COUNT", "9")
    assert load_settings({}).worker_count == 5
    assert load_settings().worker_count == 9


def test_every_variable_is_documented_with_a_unit():
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / ".env.example").read_text()
    rows = {
        line.split("|")[1].strip().strip("`"): [c.strip() for c in line.split("|")[2:-1]]
        for line in readme.splitlines()
        if line.startswith("| `WARMUP_")
    }
    for name in Settings.known_variables():
        assert name in rows, f"{name} missing from README.md's Configuration table"
        assert rows[name][1], f"{name} has no unit in README.md"
        assert name in example, f"{name} missing from .env.example"
    assert "seed" not in example.lower()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgresql://u:pw:hunter2@h:hunter2/db",
            "has a port that is not a number (postgresql://HOST:PORT/...)",
        ),
        ("postgresql://u:hunter2@h:99999/db", "has a port outside 1-65535"),
        (
            "postgresql://u:hunter2@[::1/db",
            "has a port that is not a number (postgresql://HOST:PORT/...)",
        ),
        ("postgresql://u:hunter2\x1b[2J@h/db", "contains a control character"),
        ("postgresql://u:hunter2@h/db?sslmode=\x07", "contains a control character"),
        ("postgresql://u:hunter2@h/d\u2028b", "contains a control character"),
        ("hunter2", "is not a database URL (sqlite:///PATH or postgresql://...)"),
    ],
)
def test_a_bad_database_url_is_one_line_without_its_password(url, message):
    with pytest.raises(SettingsError) as excinfo:
        load_settings({"WARMUP_DATABASE_URL": url})
    assert str(excinfo.value) == f"Invalid configuration: WARMUP_DATABASE_URL {message}"


def test_a_url_password_in_another_setting_is_masked_in_its_error():
    with pytest.raises(SettingsError) as excinfo:
        load_settings({"WARMUP_OAUTH_GENERIC_TOKEN_URL": "http://client:hunter2@evil.example/t"})
    message = str(excinfo.value)
    assert "hunter2" not in message
    assert "WARMUP_OAUTH_GENERIC_TOKEN_URL='http://client:********@evil.example/t' must" in message


def test_a_ca_file_without_a_pem_certificate_is_refused_at_load(tmp_path):
    cert_file, key_file = self_signed_cert(tmp_path)
    assert load_settings({"WARMUP_SMTP_CA_FILE": str(cert_file)}).smtp_ca_file == str(cert_file)
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text(
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
    )
    for variable in ("WARMUP_SMTP_CA_FILE", "WARMUP_IMAP_CA_FILE"):
        for path in (key_file, empty, garbage):
            with pytest.raises(SettingsError) as excinfo:
                load_settings({variable: str(path)})
            assert str(excinfo.value) == (
                f"Invalid configuration: {variable}={str(path)!r} holds no PEM certificate "
                "(expects a file of -----BEGIN CERTIFICATE----- blocks)"
            )
        with pytest.raises(SettingsError, match=f"{variable}='/nonexistent' is not a readable"):
            load_settings({variable: "/nonexistent"})
