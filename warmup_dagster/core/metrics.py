"""What the metrics count, as pure functions: histogram buckets.

Every label value is from a closed set, so a metric's series stay bounded whatever the pool's
size: an error's reason is its kind (`core.reasons.REASONS`), never its text; per-mailbox
figures are distributions over fixed buckets, never a label per mailbox.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

# Upper bounds of the histograms' buckets (a `+Inf` bucket follows each).
# Claim to outcome, clock seconds: a job waits for at most 4 sessions ahead of its own, each
# within the SMTP timeout (30 s by default), so 150 s is the worst a healthy run sees.
CYCLE_BOUNDS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 150.0, 300.0, 600.0)
# A mailbox's sends on its current local day (the daily limit is at most 2000).
PER_MAILBOX_BOUNDS = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)
# A mailbox's sends so far on its current local day over that day's quota.
FILL_BOUNDS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
INF = "+Inf"


def bound_label(bound: float) -> str:
    """A bucket's `le` label as Prometheus writes it (1.0 as "1.0", as prometheus-client)."""
    return repr(float(bound))


def bucket_of(value: float, bounds: Sequence[float]) -> str:
    """The label of the first bucket whose upper bound holds `value`."""
    for bound in bounds:
        if value <= bound:
            return bound_label(bound)
    return INF


def cumulative(counts: Mapping[str, float], bounds: Sequence[float]) -> list[tuple[str, float]]:
    """Per-bucket counts (keyed by `bucket_of`'s labels) as a histogram's cumulative buckets,
    in order, `+Inf` last."""
    out: list[tuple[str, float]] = []
    total = 0.0
    for label in [*(bound_label(b) for b in bounds), INF]:
        total += counts.get(label, 0.0)
        out.append((label, total))
    return out


def distribution(
    values: Iterable[tuple[float, int]], bounds: Sequence[float]
) -> tuple[list[tuple[str, float]], float]:
    """`(value, how many)` pairs as cumulative buckets and the values' sum."""
    counts: dict[str, float] = {}
    total = 0.0
    for value, n in values:
        label = bucket_of(value, bounds)
        counts[label] = counts.get(label, 0.0) + n
        total += value * n
    return cumulative(counts, bounds), total
