"""The health verdict from a mailbox's figures: pure, every step of every signal."""

import pytest

from warmup_dagster.core.health import Figures, HealthState, Thresholds, judge, throttle_of
from warmup_dagster.settings import SettingsError, load_settings

T = Thresholds(
    min_messages=10,
    spam_rate=(0.2, 0.4, 0.6),
    bounces=(1, 3, 10),
    auth_failures=(1, 2, 5),
    throttle=0.5,
)


@pytest.mark.parametrize(
    ("spam", "state"),
    [
        (1, HealthState.HEALTHY),
        (2, HealthState.WATCH),
        (4, HealthState.THROTTLED),
        (5, HealthState.THROTTLED),
        (6, HealthState.PAUSED),
        (10, HealthState.PAUSED),
    ],
)
def test_the_spam_rate_of_the_placed_mail_decides_its_step(spam, state):
    verdict = judge(Figures(inbox=10 - spam, spam=spam), T)
    assert verdict.state is state
    assert (verdict.reason != "") is (state is not HealthState.HEALTHY)


def test_not_found_mail_counts_as_placed_and_a_few_messages_decide_nothing():
    verdict = judge(Figures(inbox=4, spam=4, not_found=2), T)
    assert verdict.state is HealthState.THROTTLED
    assert verdict.reasons == ("spam rate 40% of 10 placed (throttled at 40%)",)
    # below WARMUP_HEALTH_MIN_MESSAGES the spam rate does not count at all
    assert judge(Figures(spam=9), T).state is HealthState.HEALTHY


def test_the_worst_signal_is_the_state_and_every_signal_past_a_step_says_why():
    verdict = judge(Figures(inbox=9, spam=3, bounces=3, auth_failures=1), T)
    assert verdict.state is HealthState.THROTTLED
    assert verdict.reasons == (
        "spam rate 25% of 12 placed (watch at 20%)",
        "3 bounces (throttled at 3)",
        "1 auth failures (watch at 1)",
    )
    assert judge(Figures(auth_failures=5), T).state is HealthState.PAUSED
    assert judge(Figures(bounces=2), T).state is HealthState.WATCH
    assert judge(Figures(), T).state is HealthState.HEALTHY


def test_what_each_state_keeps_of_its_quota():
    assert throttle_of(HealthState.HEALTHY, 0.5) == throttle_of(HealthState.WATCH, 0.5) == 1.0
    assert throttle_of(HealthState.THROTTLED, 0.3) == 0.3
    assert throttle_of(HealthState.PAUSED, 0.3) == 0.0


def test_thresholds_come_from_the_settings_and_must_not_decrease():
    t = Thresholds.from_settings(load_settings({"WARMUP_HEALTH_PAUSE_BOUNCES": "12"}))
    assert t.bounces == (1, 3, 12) and t.spam_rate == (0.2, 0.35, 0.6) and t.throttle == 0.5
    with pytest.raises(SettingsError, match=r"WARMUP_HEALTH_WATCH_SPAM_RATE \(0\.5\), "):
        load_settings({"WARMUP_HEALTH_WATCH_SPAM_RATE": "0.5"})
