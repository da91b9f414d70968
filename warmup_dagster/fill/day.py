"""One local day's figures, computed with pandas from its rows (`fill.rows`). No I/O here.

Each figure is computed on first use and kept: the asset, its checks and the commands read
the same `Day` and nothing is computed twice. A mailbox's figures:

- `quota`: the day's quota (`daily_quotas`; 0 without a plan), `daily_limit` its target;
- `sent`: its SEND jobs' sends that count (the queue's definition), `replied` its replies';
- `failed`: the day's jobs that failed (refused at claim time, or their last attempt);
- `held`: the day's jobs still queued (pending, retrying or in flight): on a closed day,
  those of a paused mailbox, which wait for its resume;
- `late`: its late outcomes (an attempt reported after its lease ran out and another claim
  took its job over: logged, counted nowhere; a late SENT most likely went out twice);
- `possibly_delivered`: its abandoned attempts (a run died holding the job, and another claim
  took it over): whether that attempt's message went out is unknown;
- `fill`: `sent / quota` (empty without a quota), `short`: `quota - sent` when under quota.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any

import pandas as pd

from warmup_dagster.core.reasons import job_failure
from warmup_dagster.core.rules import Rules, Violation, audit, percentile
from warmup_dagster.core.slots import send_window
from warmup_dagster.db.models import JobKind, JobStatus
from warmup_dagster.fill.rows import DayRows, claim_span
from warmup_dagster.queue.states import QUEUED
from warmup_dagster.settings import Settings

_SEND, _REPLY = JobKind.SEND.name, JobKind.REPLY.name
_QUEUED = [s.name for s in QUEUED]


def rules_from(settings: Settings) -> Rules:
    """The rules the audit holds sends to, straight from the settings.

    Not from `queue.caps.limits_from`, which looks alike: the audit takes nothing from the
    code that enforced the rules (docs/FILL_RATE.md).
    """
    return Rules(
        global_per_minute=settings.global_sends_per_minute,
        global_per_hour=settings.global_sends_per_hour,
        user_per_minute=settings.user_sends_per_minute,
        user_per_hour=settings.user_sends_per_hour,
        min_spacing=timedelta(minutes=settings.same_mailbox_delay_min),
        window_start_hour=settings.send_window_start_hour,
        window_end_hour=settings.send_window_end_hour,
    )


def failure_reason(code: Any, error: str | None) -> str:
    """A failed job's reason (`core.reasons.job_failure`), from its columns as pandas holds
    them (a missing code is NaN)."""
    return job_failure(None if code is None or pd.isna(code) else int(code), error)


def closes_at(day: date, timezones: set[str], settings: Settings) -> datetime | None:
    """When the last window of local date `day` among `timezones` ends (None: no mailbox)."""
    start, end = settings.send_window_start_hour, settings.send_window_end_hour
    return max((send_window(day, tz, start, end).end for tz in timezones), default=None)


class Day:
    """One local day's figures (see the module docstring), for the clock's `now`."""

    def __init__(self, rows: DayRows, settings: Settings, now: datetime) -> None:
        self.rows = rows
        self.day = rows.day
        self.settings = settings
        self.now = now

    @cached_property
    def closes_at(self) -> datetime | None:
        return closes_at(self.day, set(self.rows.mailboxes["timezone"]), self.settings)

    @property
    def closed(self) -> bool:
        """Whether every mailbox's window of the day has ended."""
        return self.closes_at is None or self.closes_at <= self.now

    @cached_property
    def _sends(self) -> pd.DataFrame:
        """The day's sends that count."""
        log = self.rows.log
        return log[log["counts"]]

    @cached_property
    def mailboxes(self) -> pd.DataFrame:
        """Per mailbox of the day (with a quota, a send or a job), its figures; by email."""
        rows, sends = self.rows, self._sends
        jobs = rows.jobs

        def per_mailbox(frame: pd.DataFrame) -> pd.Series:
            return frame.groupby("mailbox").size()

        figures = pd.DataFrame(
            {
                "sent": per_mailbox(sends[sends["kind"] == _SEND]),
                "replied": per_mailbox(sends[sends["kind"] == _REPLY]),
                "failed": per_mailbox(jobs[jobs["status"] == JobStatus.FAILED.name]),
                "held": per_mailbox(jobs[jobs["status"].isin(_QUEUED)]),
                "late": per_mailbox(rows.log[rows.log["late"]]),
                "possibly_delivered": per_mailbox(rows.log[rows.log["possibly"]]),
            }
        )
        ids = rows.quotas.index.union(figures.index)
        table = (
            pd.DataFrame(index=ids)
            .join(rows.quotas[["quota", "shortfall", "reason"]])
            .join(figures)
            .join(rows.mailboxes[["email", "daily_limit"]])
        )
        counts = ["quota", "shortfall", "sent", "replied", "failed", "held", "late"]
        counts.append("possibly_delivered")
        table[counts] = table[counts].fillna(0).astype(int)
        table["fill"] = (table["sent"] / table["quota"]).where(table["quota"] > 0)
        table["short"] = (table["quota"] - table["sent"]).clip(lower=0)
        columns = ["email", "quota", "daily_limit", "sent", "replied", "failed", "held", "late"]
        columns.append("possibly_delivered")
        return table[[*columns, "fill", "short", "shortfall", "reason"]].set_index("email")

    def under_quota(self) -> pd.DataFrame:
        """The mailboxes that sent less than their quota, furthest under first."""
        table = self.mailboxes
        under = table[table["short"] > 0]
        return under.sort_values(["short", "fill"], ascending=[False, True], kind="stable")

    @cached_property
    def hourly(self) -> pd.Series:
        """Sends that count per clock hour (UTC, by their claim), every hour from the first."""
        sends = self._sends
        if sends.empty:
            return pd.Series([], dtype=int, name="sends")
        counts = sends["at"].dt.floor("h").value_counts()
        hours = pd.date_range(counts.index.min(), counts.index.max(), freq="h")
        return counts.reindex(hours, fill_value=0).rename("sends")

    @cached_property
    def lateness(self) -> list[float]:
        """Sorted clock minutes from each counted send's planned slot to its claim."""
        slots = self.rows.jobs[["job", "scheduled_at"]]
        sends = self._sends[["job", "at"]].merge(slots, on="job")
        minutes = (sends["at"] - sends["scheduled_at"]).dt.total_seconds() / 60
        return minutes.sort_values().tolist()

    @cached_property
    def failures(self) -> dict[str, int]:
        """The day's failed jobs by reason (`core.reasons`, the labels of the
        `warmup_errors_total` metric), the most frequent first."""
        failed = self.rows.failed
        reasons = pd.Series(
            [
                failure_reason(c, e)
                for c, e in zip(failed["smtp_code"], failed["error"], strict=True)
            ],
            dtype=object,
        )
        return {str(k): int(n) for k, n in reasons.value_counts().items()}

    @cached_property
    def violations(self) -> list[Violation]:
        """Every rule the day's sends broke (`core.rules`), each named."""
        rows, sends = self.rows, self._sends
        boxes = rows.mailboxes
        owners = boxes.drop_duplicates("user_id").set_index("user_id")
        audited = pd.DataFrame(
            {
                "mailbox": sends["mailbox"].map(boxes["email"]),
                "user": sends["user"].map(owners["user"]),
                "timezone": sends["mailbox"].map(boxes["timezone"]),
                "day": self.day,
                "at": sends["at"],
            }
        )
        log = rows.log[~rows.log["late"]]
        attempts = pd.concat([log[["user", "at"]], rows.other_attempts], ignore_index=True)
        attempts["user"] = attempts["user"].map(owners["user"])
        limits = owners.set_index("user")["plan_limit"]
        return audit(audited, attempts, rules_from(self.settings), plan_limits=limits)

    def stuck(self) -> pd.DataFrame:
        """The day's jobs in flight for longer than `WARMUP_STUCK_AFTER_LEASES` leases."""
        jobs = self.rows.jobs
        limit = timedelta(
            seconds=self.settings.send_lease_seconds * self.settings.stuck_after_leases
        )
        since = pd.Timestamp(self.now - limit)
        stuck = jobs[(jobs["status"] == JobStatus.PROCESSING.name) & (jobs["picked_at"] <= since)]
        return stuck.assign(email=stuck["mailbox"].map(self.rows.mailboxes["email"]))

    @property
    def span(self) -> tuple[datetime, datetime] | None:
        """The clock hours of the day's claims."""
        found = claim_span(self.rows.log)
        return None if found is None else (found[0].to_pydatetime(), found[1].to_pydatetime())

    @cached_property
    def figures(self) -> dict[str, int | float]:
        """The day's numeric figures (the asset's metadata, plotted across days)."""
        table, quotas, log = self.mailboxes, self.rows.quotas, self.rows.log
        with_quota = table[table["quota"] > 0]
        under = table[table["short"] > 0]
        figures: dict[str, int | float] = {
            "mailboxes": len(quotas),
            "quota": int(quotas["quota"].sum()),
            "planned": int((quotas["kept"] + quotas["planned"]).sum()),
            "planned_shortfall": int(quotas["shortfall"].sum()),
            "emails_sent": len(self._sends),
            "sent": int(table["sent"].sum()),
            "replied": int(table["replied"].sum()),
            "mailboxes_under_quota": len(under),
            "under_quota_by": int(under["short"].sum()),
            "failed": int(table["failed"].sum()),
            "held": int(table["held"].sum()),
            "late_outcomes": int(log["late"].sum()),
            "sent_twice": int((log["late"] & (log["status"] == JobStatus.SENT.name)).sum()),
            # attempts abandoned by a dead run: each may have gone out, and the job again
            "possibly_delivered": int(log["possibly"].sum()),
            "peak_sends_per_hour": int(self.hourly.max()) if len(self.hourly) else 0,
            "rule_violations": len(self.violations),
        }
        if len(with_quota):
            figures["mean_fill"] = round(float(with_quota["fill"].clip(upper=1).mean()), 4)
        if len(self.lateness):
            figures["lateness_p50_min"] = round(float(percentile(self.lateness, 0.5)), 2)
            figures["lateness_p95_min"] = round(float(percentile(self.lateness, 0.95)), 2)
        return figures
