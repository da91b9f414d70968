"""The `warmup` commands about a day's sending and the system's size: the reports
(`report under-quota|owing|hourly`), `audit`, `export-log`, `capacity` and `metrics-server`.
Registered on the `warmup` group by `warmup_dagster.cli`."""

from __future__ import annotations

import csv
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from warmup_dagster import fill
from warmup_dagster.cli_app import App, pass_app
from warmup_dagster.core.capacity import SMTP_LATENCY_SECONDS, Caps, Load, capacity, table
from warmup_dagster.partitions import selection_text
from warmup_dagster.planning.owing import owing, owing_summary


def _echo_table(header: Sequence[str], rows: Sequence[Sequence[object]], as_csv: bool) -> None:
    """Rows as CSV on stdout, or as columns for a terminal."""
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return
    table = [list(header)] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


_DATE = click.DateTime(formats=["%Y-%m-%d"])
_date_option = click.option(
    "--date", "day", type=_DATE, required=True, help="A local date, YYYY-MM-DD."
)
_csv_option = click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout, for files.")


def _day(app: App, day: Any) -> fill.Day:
    return fill.load(app.engine, app.settings, day.date(), app.clock.now())


@click.group()
def report() -> None:
    """A local date's fill rate: the mailboxes under quota, the sends per hour."""


@report.command("under-quota")
@_date_option
@_csv_option
@pass_app
def report_under_quota(app: App, day: Any, as_csv: bool) -> None:
    """The mailboxes that sent less than their quota on DATE, furthest under first.

    SENT counts the sends that count (of SEND jobs), QUOTA is the day's planned quota,
    DAILY_LIMIT the mailbox's target, FILL is SENT / QUOTA.
    """
    found = _day(app, day)
    under = found.under_quota()
    rows = [
        (email, r.sent, r.quota, r.daily_limit, f"{r.fill:.3f}" if as_csv else f"{r.fill:.1%}")
        for email, r in under.iterrows()
    ]
    _echo_table(("email", "sent", "quota", "daily_limit", "fill"), rows, as_csv)
    if not as_csv:
        with_quota = int((found.mailboxes["quota"] > 0).sum())
        click.echo(
            f"{len(under)} of {with_quota} mailboxes with a quota under it on {found.day},"
            f" {int(under['short'].sum())} sends short"
            + ("" if found.closed else " (its windows are still open)")
        )


@report.command("owing")
@click.option(
    "--selection",
    is_flag=True,
    help="The addresses as one line of Dagster's partition-selection text (quoted keys).",
)
@pass_app
def report_owing(app: App, selection: bool) -> None:
    """The mailboxes that owe sends today which a re-plan can still place (failed sends,
    sends held while paused, a day planned while paused; a window still open): what catch-up
    re-plans. OWED is QUOTA - SENT - (QUEUED - OVERDUE); OVERDUE are queued sends never
    attempted WARMUP_CATCH_UP_HELD_SECONDS after their slots; SHORTFALL is what their last plan
    could not place; RESUMED marks a day planned with a quota of 0 before its mailbox was made
    active again (the re-plan gives it the day's quota)."""
    with app.engine.connect() as conn:
        found = owing(conn, app.settings, app.clock.now())
    if selection:
        click.echo(selection_text(o.email for o in found))
        return
    rows = [
        (
            o.email,
            o.local_date,
            o.quota,
            o.counted,
            o.queued,
            o.overdue,
            o.failed,
            o.shortfall,
            o.owed,
            "yes" if o.resumed else "",
        )
        for o in found
    ]
    header = (
        "email",
        "local_date",
        "quota",
        "sent",
        "queued",
        "overdue",
        "failed",
        "shortfall",
        "owed",
        "resumed",
    )
    _echo_table(header, rows, False)
    click.echo(owing_summary(found))


@report.command("hourly")
@_date_option
@_csv_option
@pass_app
def report_hourly(app: App, day: Any, as_csv: bool) -> None:
    """Sends of DATE's jobs per clock hour (UTC, by when each was claimed)."""
    found = _day(app, day)
    rows = [(f"{h:%Y-%m-%d %H:00}", n) for h, n in found.hourly.items()]
    _echo_table(("hour_utc", "sends"), rows, as_csv)
    if not as_csv:
        click.echo(f"{int(found.hourly.sum())} sends of {found.day}")


@click.command("audit")
@_date_option
@pass_app
def audit(app: App, day: Any) -> None:
    """Audit DATE's send log against the rules: the caps per minute and hour (global and per
    owner), the plans' daily limits, the send windows and the mailbox spacing.

    Each rule break is printed; the exit status is 1 if there is any.
    """
    found = _day(app, day)
    for violation in found.violations:
        click.echo(str(violation))
    sends = found.figures["emails_sent"]
    if found.violations:
        click.echo(f"{len(found.violations)} rule breaks in the {sends} sends of {found.day}")
        sys.exit(1)
    click.echo(f"no rule broken by the {sends} sends of {found.day}")


@click.command("metrics-server")
@click.option("--port", required=True, type=click.IntRange(0, 65535), help="0: a free port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="0.0.0.0: every address.")
@pass_app
def metrics_server(app: App, port: int, host: str) -> None:
    """Serve the Prometheus metrics on http://HOST:PORT/metrics, read from the database at
    every scrape."""
    from warmup_dagster.metrics import serve

    server = serve(app.engine, app.clock, app.settings.send_window_timezone, host, port)
    click.echo(f"serving metrics on http://{host}:{server.server_port}/metrics")
    sys.stdout.flush()
    threading.Event().wait()  # until the process is stopped


@click.command("export-log")
@_date_option
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def export_log_command(app: App, day: Any, out: Path) -> None:
    """Write the send log of one local date (YYYY-MM-DD) to a CSV file, one row per attempt:
    job_id, kind, mailbox_email, user, recipient_email, scheduled_for_utc, sent_at_utc,
    status, attempts, message_id, in_reply_to, error."""
    from warmup_dagster.log_export import export_log

    with out.open("w", newline="", encoding="utf-8") as file:
        rows = export_log(app.engine, day.date(), file)
    click.echo(f"{rows:,} send log rows of {day.date()} written to {out}")


@click.command("capacity")
@click.option("--mailboxes", required=True, type=click.IntRange(min=1), help="Pool size.")
@click.option(
    "--per-mailbox",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Emails a day per mailbox.",
)
@click.option(
    "--window-hours",
    type=click.FloatRange(min=0, max=24, min_open=True),
    help="Hours of the send window (default: WARMUP_SEND_WINDOW_END_HOUR - _START_HOUR).",
)
@click.option(
    "--smtp-latency",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a provider takes per message (default: the 1 s of the measured figures).",
)
@click.option("--users", type=click.IntRange(min=1), help="Owners: check the per-owner caps.")
@pass_app
def capacity_command(
    app: App,
    mailboxes: int,
    per_mailbox: float,
    window_hours: float | None,
    smtp_latency: float | None,
    users: int | None,
) -> None:
    """Print what MAILBOXES need (emails a day, sends a minute, SMTP sessions, sender runs) and
    whether the configured caps (WARMUP_* settings) carry it. Exits 1 when they do not."""
    s = app.settings
    try:
        load = Load(
            mailboxes,
            per_mailbox,
            window_hours or s.send_window_end_hour - s.send_window_start_hour,
            smtp_latency or SMTP_LATENCY_SECONDS,
            users=users,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    caps = Caps(
        s.global_sends_per_minute,
        s.global_sends_per_hour,
        s.user_sends_per_minute,
        s.user_sends_per_hour,
        s.worker_count,
        s.worker_concurrency,
    )
    result = capacity(load, caps)
    click.echo("\n".join(table(result)))
    if not result.feasible:
        sys.exit(1)
