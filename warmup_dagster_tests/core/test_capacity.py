"""The capacity table's arithmetic, and `warmup capacity` as a user runs it."""

import pytest
from click.testing import CliRunner

from warmup_dagster.cli import main
from warmup_dagster.core.capacity import (
    SENDS_PER_MINUTE_PER_RUN,
    SESSION_EFFICIENCY,
    Caps,
    Load,
    capacity,
    per_run,
    table,
)

DEFAULT_CAPS = Caps(
    global_sends_per_minute=100,
    global_sends_per_hour=5000,
    user_sends_per_minute=5,
    user_sends_per_hour=200,
    worker_count=5,
    worker_concurrency=10,
)


def test_the_default_hourly_cap_carries_80000_of_a_million():
    """100,000 mailboxes at 10 a day in a 16-hour window need 1,000,000 sends; 5,000 an hour
    for 16 hours allow 80,000."""
    result = capacity(Load(100_000, 10, 16), DEFAULT_CAPS)
    need = result.need
    assert need.emails_per_day == 1_000_000
    assert need.per_hour == 62_500
    assert need.per_minute == pytest.approx(1_041.67, abs=0.01)
    allows = {limit.setting: limit.allows for limit in result.limits}
    assert allows["WARMUP_GLOBAL_SENDS_PER_HOUR"] == 80_000
    assert allows["WARMUP_GLOBAL_SENDS_PER_MINUTE"] == 96_000  # 100 x 60 x 16
    assert not result.feasible
    assert result.carried == 80_000
    assert result.short_by == 920_000
    needs = {limit.setting: limit.needs for limit in result.limits}
    assert needs["WARMUP_GLOBAL_SENDS_PER_HOUR"] == 62_500
    assert needs["WARMUP_GLOBAL_SENDS_PER_MINUTE"] == 1_042


def test_sessions_and_runs_at_the_providers_latency():
    """At 1 s a message, 1,041.7 sends a minute keep 17.4 sessions busy, 18.9 at the measured
    92% efficiency; a run of 10 sessions carries 10 x 60 x 0.92 a minute."""
    need = capacity(Load(100_000, 10, 16, smtp_latency_seconds=1.0), DEFAULT_CAPS).need
    assert need.sessions == 19
    assert need.per_run == pytest.approx(10 * 60 * SESSION_EFFICIENCY)
    assert need.runs == 2  # 1,041.7 / 551
    slow = capacity(Load(100_000, 10, 16, smtp_latency_seconds=5.0), DEFAULT_CAPS).need
    assert slow.sessions == 95
    assert slow.runs == 10  # 1,041.7 / 110.2


def test_a_run_carries_no_more_than_measured_however_fast_the_provider():
    assert per_run(10, 0.001) == SENDS_PER_MINUTE_PER_RUN
    assert per_run(10, 1.0) < SENDS_PER_MINUTE_PER_RUN


def test_too_few_sender_runs_fall_short():
    caps = Caps(100_000, 10_000_000, 100, 10_000, worker_count=1, worker_concurrency=10)
    result = capacity(Load(100_000, 10, 16), caps)
    runs = next(limit for limit in result.limits if limit.setting == "WARMUP_WORKER_COUNT")
    assert runs.allows == pytest.approx(10 * 60 * SESSION_EFFICIENCY * 60 * 16)
    assert runs.needs == 2
    assert result.carried == runs.allows and not result.feasible


def test_raised_caps_carry_a_million_and_per_owner_caps_count_when_owners_are_given():
    caps = Caps(3000, 150_000, 60, 3000, worker_count=5, worker_concurrency=10)
    assert capacity(Load(100_000, 10, 16), caps).feasible
    owners = capacity(Load(100_000, 10, 16, users=10), caps)
    by_setting = {limit.setting: limit for limit in owners.limits}
    # 10 owners x 3,000 an hour x 16 hours
    assert by_setting["WARMUP_USER_SENDS_PER_HOUR"].allows == 480_000
    assert by_setting["WARMUP_USER_SENDS_PER_HOUR"].needs == 6_250
    assert owners.carried == 480_000 and owners.short_by == 520_000


def test_the_table_says_what_falls_short_and_by_how_much():
    lines = table(capacity(Load(100_000, 10, 16), DEFAULT_CAPS))
    text = "\n".join(lines)
    assert "emails a day                         1,000,000" in text
    hourly = next(line for line in lines if "WARMUP_GLOBAL_SENDS_PER_HOUR=5000" in line)
    assert hourly.split() == [
        "WARMUP_GLOBAL_SENDS_PER_HOUR=5000", "80,000", "short", "by", "920,000", "(92.0%):",
        "needs", "62,500",
    ]  # fmt: skip
    assert lines[-1] == (
        "infeasible: the caps carry at most 80,000 of 1,000,000 emails a day, 920,000 (92.0%) short"
    )


@pytest.mark.parametrize(
    ("load", "message"),
    [
        (dict(mailboxes=0), "mailboxes must be above 0"),
        (dict(window_hours=25), "window_hours must be at most 24"),
        (dict(users=200), "users must be from 1 to the mailboxes"),
    ],
)
def test_a_load_that_cannot_be_refuses_with_the_field(load, message):
    values = dict(mailboxes=100, per_mailbox=10, window_hours=16) | load
    with pytest.raises(ValueError, match=message):
        Load(**values)


def _run(*args, **env):
    environ = {"WARMUP_DATABASE_URL": "sqlite:///unused.sqlite"} | env
    return CliRunner().invoke(main, ["capacity", *args], env=environ)


def test_the_command_exits_1_when_the_caps_fall_short_and_0_when_they_carry_it():
    short = _run("--mailboxes", "100000")
    assert short.exit_code == 1, short.output
    assert "WARMUP_GLOBAL_SENDS_PER_HOUR=5000" in short.output
    assert "infeasible: the caps carry at most 80,000 of 1,000,000" in short.output
    carried = _run(
        "--mailboxes", "100000", "--users", "1000",
        WARMUP_GLOBAL_SENDS_PER_MINUTE="3000", WARMUP_GLOBAL_SENDS_PER_HOUR="150000",
    )  # fmt: skip
    assert carried.exit_code == 0, carried.output
    assert "WARMUP_USER_SENDS_PER_HOUR=200" in carried.output
    assert carried.output.rstrip().endswith("feasible: the caps carry 1,000,000 emails a day")


def test_the_command_takes_the_window_from_the_settings_and_names_a_bad_option():
    result = _run("--mailboxes", "1000", WARMUP_SEND_WINDOW_START_HOUR="8")
    assert "in a 14-hour send window" in result.output
    bad = _run("--mailboxes", "1000", "--smtp-latency", "0")
    assert bad.exit_code == 2
    assert "--smtp-latency" in bad.output
