from datetime import UTC, datetime

import pytest

from warmup_dagster.settings import Settings, SettingsError, load_settings

SEED_DEFAULTS = {
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
}


def test_defaults_are_the_seed_systems():
    settings = load_settings({"DAGSTER_HOME": "/srv/dagster"})
    for name, value in SEED_DEFAULTS.items():
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


def test_every_setting_is_documented():
    readme = (__import__("pathlib").Path(__file__).parents[1] / "README.md").read_text()
    example = (__import__("pathlib").Path(__file__).parents[1] / ".env.example").read_text()
    for name in [Settings.env_name(f) for f in Settings.__dataclass_fields__] + [
        "WARMUP_SECRET_KEY"
    ]:
        assert name in readme, f"{name} missing from README.md"
        assert name in example, f"{name} missing from .env.example"
