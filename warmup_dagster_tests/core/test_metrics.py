"""What the metrics count: error reasons from outcomes and refusals, histogram buckets."""

from datetime import timedelta

import pytest

from warmup_dagster.core.admission import END_MARGIN
from warmup_dagster.core.delivery import Outcome
from warmup_dagster.core.metrics import (
    CYCLE_BOUNDS,
    FILL_BOUNDS,
    INF,
    REASONS,
    attempt_error,
    bucket_of,
    cumulative,
    distribution,
    refusal_error,
)
from warmup_dagster_tests.core.test_admission import DAY, NOW, decide, job


@pytest.mark.parametrize(
    ("outcome", "code", "reason"),
    [
        (Outcome.SENT, 250, None),
        (Outcome.RETRY, 421, "smtp_4xx"),
        (Outcome.FAILED, 451, "smtp_4xx"),  # the last attempt of a temporary failure
        (Outcome.FAILED, 550, "smtp_5xx"),
        (Outcome.RETRY, None, "connection"),
        (Outcome.FAILED, None, "connection"),
        (Outcome.PAUSE, 535, "smtp_auth"),
        (Outcome.PAUSE, 530, "smtp_auth"),
        (Outcome.PAUSE, None, "mailbox_settings"),  # certificate, plaintext refused, no key
        (Outcome.FAILED, 354, "smtp_other"),
    ],
)
def test_each_attempt_outcome_has_its_reason(outcome, code, reason):
    assert attempt_error(outcome, code) == reason
    assert reason is None or reason in REASONS


def test_each_refusal_of_a_claim_has_its_reason():
    """The sentences `admit` refuses with, each mapped to a reason of its own."""
    yesterday = decide([job(1, local_date=DAY - timedelta(days=1))]).refused
    closing = decide([job(1)], now=NOW.replace(hour=22) - END_MARGIN + timedelta(seconds=1))
    quota = decide([job(1)], quotas={(1, DAY): 0}).refused
    plan = decide([job(1, user=3)], plans={3: 0}).refused
    reasons = [refusal_error(why) for [(_, why)] in (yesterday, closing.refused, quota, plan)]
    assert reasons == ["expired", "expired", "quota", "plan_limit"]
    assert refusal_error("something new") == "refused_other"
    assert set(reasons) | {"refused_other"} <= set(REASONS)


def test_a_value_falls_in_the_first_bucket_that_holds_it():
    assert bucket_of(0.0, CYCLE_BOUNDS) == "0.5"
    assert bucket_of(0.5, CYCLE_BOUNDS) == "0.5"
    assert bucket_of(0.51, CYCLE_BOUNDS) == "1.0"
    assert bucket_of(600.0, CYCLE_BOUNDS) == "600.0"
    assert bucket_of(600.1, CYCLE_BOUNDS) == INF
    assert bucket_of(0.0, FILL_BOUNDS) == "0.0"
    assert bucket_of(1.2, FILL_BOUNDS) == INF


def test_buckets_are_cumulative_and_end_with_inf():
    assert cumulative({"0.0": 2, "0.5": 1, INF: 4}, FILL_BOUNDS) == [
        ("0.0", 2), ("0.1", 2), ("0.25", 2), ("0.5", 3), ("0.75", 3), ("0.9", 3), ("1.0", 3),
        (INF, 7),
    ]  # fmt: skip


def test_a_distribution_counts_each_value_as_often_as_given_and_sums_them():
    buckets, total = distribution([(0.0, 3), (0.2, 1), (1.0, 2), (1.5, 1)], FILL_BOUNDS)
    assert dict(buckets) == {
        "0.0": 3, "0.1": 3, "0.25": 4, "0.5": 4, "0.75": 4, "0.9": 4, "1.0": 6, INF: 7,
    }  # fmt: skip
    assert total == pytest.approx(0.2 + 2.0 + 1.5)
