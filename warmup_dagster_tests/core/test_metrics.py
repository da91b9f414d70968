"""What the metrics count: histogram buckets (their error reasons: test_reasons.py)."""

import pytest

from warmup_dagster.core.metrics import (
    CYCLE_BOUNDS,
    FILL_BOUNDS,
    INF,
    bucket_of,
    cumulative,
    distribution,
)


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
