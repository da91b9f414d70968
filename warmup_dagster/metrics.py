"""The seven Prometheus metrics, read from the database at every scrape.

`warmup metrics-server` serves them. The collector holds no state: each scrape reads the queue's
totals, the jobs queued and in flight, and every mailbox's current day
(`warmup_dagster.queue.metrics`), so any number of servers, restarted at any time, agree. No
label is per mailbox or free text: at 100,000 mailboxes the exposition has a few dozen series.
"""

from __future__ import annotations

from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from sqlalchemy.engine import Engine

from warmup_dagster.clock import Clock
from warmup_dagster.core.metrics import (
    CYCLE_BOUNDS,
    FILL_BOUNDS,
    PER_MAILBOX_BOUNDS,
    cumulative,
    distribution,
)
from warmup_dagster.core.reasons import REASONS
from warmup_dagster.db.dialect import scanning
from warmup_dagster.db.models import JobKind, Total
from warmup_dagster.queue.metrics import active_workers, mailbox_days, queue_depth
from warmup_dagster.queue.totals import read_totals


class WarmupCollector:
    """A prometheus-client collector of the seven metrics (see the module docstring)."""

    def __init__(self, engine: Engine, clock: Clock, default_timezone: str) -> None:
        self.engine = engine
        self.clock = clock
        self.default_timezone = default_timezone

    def collect(self) -> Iterator[Metric]:
        now = self.clock.now()
        with scanning(self.engine) as conn:
            totals = read_totals(conn)
            depth = queue_depth(conn, now)
            workers = active_workers(conn, now)
            days = mailbox_days(conn, now, self.default_timezone)

        sent = CounterMetricFamily(
            "warmup_emails_sent_total",
            "Sends that count (send log status SENT, not late), by kind.",
            labels=["kind"],
        )
        for kind in JobKind:
            sent.add_metric([kind.name.lower()], totals.get((Total.SENT, kind.name.lower()), 0))
        yield sent

        buckets, total = distribution(
            ((used, n) for (_, used), n in days.items()), PER_MAILBOX_BOUNDS
        )
        yield GaugeHistogramMetricFamily(
            "warmup_emails_per_mailbox",
            "Mailboxes by their sends on their current local day (sends that count plus jobs in "
            "flight), of the mailboxes planned for that day.",
            buckets=buckets,
            gsum_value=total,
        )

        rates = ((used / quota, n) for (quota, used), n in days.items() if quota > 0)
        buckets, total = distribution(rates, FILL_BOUNDS)
        yield GaugeHistogramMetricFamily(
            "warmup_quota_fill_rate",
            "Mailboxes by their sends so far on their current local day over that day's quota "
            "(mailboxes with a quota above 0).",
            buckets=buckets,
            gsum_value=total,
        )

        cycles = {label: n for (metric, label), n in totals.items() if metric is Total.CYCLE}
        yield HistogramMetricFamily(
            "warmup_cycle_duration_seconds",
            "Send attempts by their time from claim to recorded outcome, in clock seconds.",
            buckets=cumulative(cycles, CYCLE_BOUNDS),
            sum_value=totals.get((Total.CYCLE_SECONDS, ""), 0),
        )

        queued = GaugeMetricFamily(
            "warmup_queue_depth",
            "Jobs queued: pending, retry (waiting for their next attempt) or processing (in "
            "flight), and whether they are due now.",
            labels=["status", "due"],
        )
        for (status, due), n in sorted(depth.items()):
            queued.add_metric([status.lower(), str(due).lower()], n)
        yield queued

        yield GaugeMetricFamily(
            "warmup_worker_active",
            "Sender runs holding claims: distinct workers of the jobs in flight whose lease "
            "has not run out.",
            value=workers,
        )

        errors = CounterMetricFamily(
            "warmup_errors_total",
            "Attempts that did not send, claims abandoned or outcomes late, and jobs refused "
            "at claim time, by reason.",
            labels=["reason"],
        )
        for reason in REASONS:
            errors.add_metric([reason], totals.get((Total.ERROR, reason), 0))
        yield errors


def serve(engine: Engine, clock: Clock, default_timezone: str, host: str, port: int) -> WSGIServer:
    """Serve the metrics on `host:port` (0: a free port) in a background thread."""
    registry = CollectorRegistry()
    registry.register(WarmupCollector(engine, clock, default_timezone))
    server, _ = start_http_server(port, addr=host, registry=registry)
    return server
