"""What the metrics count, as pure functions: error reasons and histogram buckets.

Every label value is from a closed set, so a metric's series stay bounded whatever the pool's
size: an error's reason is its kind (`REASONS`), never its text; per-mailbox figures are
distributions over fixed buckets, never a label per mailbox.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from warmup_dagster.core.delivery import AUTH_CODES, Outcome

# The reasons `warmup_errors_total` counts, each a kind of trouble an operator acts on.
SMTP_4XX = "smtp_4xx"  # a temporary refusal (retried)
SMTP_5XX = "smtp_5xx"  # a permanent refusal (failed)
SMTP_OTHER = "smtp_other"  # a reply code that is neither 2xx, 4xx nor 5xx
SMTP_AUTH = "smtp_auth"  # the login was refused: the mailbox is paused
CONNECTION = "connection"  # no reply: refused or dropped connection, timeout
MAILBOX_SETTINGS = "mailbox_settings"  # unusable settings or certificate: the mailbox is paused
ABANDONED = "abandoned"  # a claim's lease ran out: its run died or lost the database
LATE = "late"  # an outcome that came after its job had been taken over (counted nowhere)
EXPIRED = "expired"  # refused at claim time: the job's day (or its window) is over
QUOTA = "quota"  # refused: the mailbox's quota for the day is used up
PLAN_LIMIT = "plan_limit"  # refused: the owner's plan's daily limit is used up
REFUSED_OTHER = "refused_other"  # refused for a reason this module does not know yet
REASONS = (
    SMTP_4XX, SMTP_5XX, SMTP_OTHER, SMTP_AUTH, CONNECTION, MAILBOX_SETTINGS, ABANDONED, LATE,
    EXPIRED, QUOTA, PLAN_LIMIT, REFUSED_OTHER,
)  # fmt: skip

# Upper bounds of the histograms' buckets (a `+Inf` bucket follows each).
# Claim to outcome, clock seconds: a job waits for at most 4 sessions ahead of its own, each
# within the SMTP timeout (30 s by default), so 150 s is the worst a healthy run sees.
CYCLE_BOUNDS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 150.0, 300.0, 600.0)
# A mailbox's sends on its current local day (the daily limit is at most 2000).
PER_MAILBOX_BOUNDS = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)
# A mailbox's sends so far on its current local day over that day's quota.
FILL_BOUNDS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
INF = "+Inf"


def attempt_error(outcome: Outcome, code: int | None) -> str | None:
    """The reason an attempt's outcome counts as an error, or None for a send."""
    if outcome is Outcome.SENT:
        return None
    if outcome is Outcome.PAUSE:
        return SMTP_AUTH if code in AUTH_CODES else MAILBOX_SETTINGS
    if code is None:
        return CONNECTION
    if 400 <= code < 500:
        return SMTP_4XX
    if 500 <= code < 600:
        return SMTP_5XX
    return SMTP_OTHER


def refusal_error(why: str) -> str:
    """The reason of a claim's refusal, from the sentence `core.admission.admit` gives."""
    if why.startswith("expired"):
        return EXPIRED
    if why.startswith("the mailbox's quota"):
        return QUOTA
    if why.startswith("the owner's plan"):
        return PLAN_LIMIT
    return REFUSED_OTHER


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
