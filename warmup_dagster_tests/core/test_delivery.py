"""What a delivery attempt's reply means, and the retry backoff."""

import random

import pytest

from warmup_dagster.core.delivery import Outcome, RetryPolicy, classify


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (250, Outcome.SENT),
        (251, Outcome.SENT),
        (421, Outcome.RETRY),
        (451, Outcome.RETRY),
        (452, Outcome.RETRY),
        (None, Outcome.RETRY),
        (550, Outcome.FAILED),
        (554, Outcome.FAILED),
        (535, Outcome.PAUSE),
        (530, Outcome.PAUSE),
        (534, Outcome.PAUSE),
    ],
)
def test_classify(code, outcome):
    assert classify(code) is outcome


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    policy = RetryPolicy(max_attempts=5, base_seconds=60, cap_seconds=600, jitter=0.5)
    rng = random.Random(3)
    for attempt, full in [(1, 60), (2, 120), (3, 240), (4, 480), (5, 600), (9, 600)]:
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(full * 0.5 <= d <= full for d in delays)
        assert max(delays) - min(delays) > full * 0.3  # jitter spreads them


def test_the_last_attempt_fails_instead_of_retrying():
    policy = RetryPolicy(max_attempts=3)
    assert policy.next_outcome(Outcome.RETRY, 2) is Outcome.RETRY
    assert policy.next_outcome(Outcome.RETRY, 3) is Outcome.FAILED
    assert policy.next_outcome(Outcome.SENT, 3) is Outcome.SENT
    assert policy.next_outcome(Outcome.PAUSE, 9) is Outcome.PAUSE
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
