"""The `warmup` command: database migrations, mailbox import and state, the sandbox server,
the metrics server, the send log's export, the capacity table and the prune of old history
(`prune_command.py`)."""

from __future__ import annotations

import csv
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from functools import cached_property, wraps
from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import Engine, make_url

from warmup_dagster import fill
from warmup_dagster.clock import Clock, clock_from_settings
from warmup_dagster.core.capacity import SMTP_LATENCY_SECONDS, Caps, Load, capacity, table
from warmup_dagster.core.names import derived_display_name
from warmup_dagster.crypto import SECRET_KEY_VAR, Cipher, SecretKeyError, cipher_from_env
from warmup_dagster.db import migrate
from warmup_dagster.db.engine import make_engine
from warmup_dagster.db.models import MailboxState
from warmup_dagster.domains import cli as domains_cli
from warmup_dagster.mailboxes.importer import ImportRejected, import_mailboxes
from warmup_dagster.mailboxes.service import MailboxNotFound, list_mailboxes, set_state
from warmup_dagster.partitions import selection_text
from warmup_dagster.planning.owing import owing
from warmup_dagster.progress import progress_for
from warmup_dagster.settings import Settings, SettingsError, load_settings


class App:
    """What every command needs, built on first use from the validated settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def engine(self) -> Engine:
        if self.settings.database_url.startswith("sqlite:///"):
            Path(self.settings.database_url.removeprefix("sqlite:///")).parent.mkdir(
                parents=True, exist_ok=True
            )
        return make_engine(self.settings.database_url)

    @cached_property
    def clock(self) -> Clock:
        return clock_from_settings(self.settings, self.engine)

    @cached_property
    def cipher(self) -> Cipher:
        """The deployment's cipher; a missing or too short WARMUP_SECRET_KEY ends the command."""
        try:
            return cipher_from_env()
        except SecretKeyError as exc:
            raise click.ClickException(str(exc)) from None


pass_app = click.make_pass_decorator(App)


def needs_secret_key(command: Callable[..., Any]) -> Callable[..., Any]:
    """Check WARMUP_SECRET_KEY before `command` (which takes the App first) does anything.

    Commands that set a deployment up check it too, so a missing key shows at the first
    command, not at the first run that has to decrypt a credential.
    """

    @wraps(command)
    def checked(app: App, *args: Any, **kwargs: Any) -> Any:
        app.cipher  # raises click.ClickException (exit 1) when the key is unusable  # noqa: B018
        return command(app, *args, **kwargs)

    return checked


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Email warmup on Dagster. Configuration comes from WARMUP_* environment variables."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s")
    try:
        ctx.obj = App(load_settings())
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


@main.command("config")
@pass_app
@needs_secret_key
def show_config(app: App) -> None:
    """Print the effective settings (secrets are never printed, only whether they are set)."""
    for name in Settings.model_fields:
        value = getattr(app.settings, name)
        if name == "database_url":
            value = make_url(value).render_as_string(hide_password=True)
        click.echo(f"{Settings.env_name(name)}={'' if value is None else value}")
    click.echo(f"{SECRET_KEY_VAR}=(set)")  # checked above: a missing key ends the command


@main.group()
def db() -> None:
    """Apply or revert database migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
@pass_app
@needs_secret_key
def db_upgrade(app: App, revision: str) -> None:
    """Migrate the database up to REVISION (default: the latest)."""
    app.engine  # creates the SQLite folder if needed  # noqa: B018
    migrate.upgrade(app.settings.database_url, revision)
    click.echo(f"database at revision {migrate.current_revision(app.settings.database_url)}")


@db.command("downgrade")
@click.argument("revision")
@pass_app
def db_downgrade(app: App, revision: str) -> None:
    """Revert the database to REVISION ('base' removes every table)."""
    migrate.downgrade(app.settings.database_url, revision)
    click.echo(f"database at revision {migrate.current_revision(app.settings.database_url)}")


@db.command("current")
@pass_app
def db_current(app: App) -> None:
    """Show the database's revision and the newest one this code knows."""
    current = migrate.current_revision(app.settings.database_url)
    click.echo(f"current: {current or 'none (run: warmup db upgrade)'}")
    click.echo(f"head:    {migrate.head_revision()}")


@main.group()
def mailboxes() -> None:
    """Import, list, pause and resume mailboxes."""


@mailboxes.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--dry-run", is_flag=True, help="Validate and report; write nothing.")
@pass_app
@needs_secret_key
def mailboxes_import(app: App, file: click.utils.LazyFile, dry_run: bool) -> None:
    """Import mailboxes from a CSV FILE; re-importing an address updates it.

    Required columns: email, user, smtp_host, smtp_port, smtp_security, smtp_username,
    smtp_password, imap_host, imap_port, imap_security, imap_username, imap_password.
    Optional: display_name, timezone, daily_limit, ramp_start, ramp_step, reply_rate,
    weekdays_only, plan.
    If any row is invalid nothing is imported: every bad row is counted and the first 100 are
    listed, each as "line N, column: what is wrong".
    """
    try:
        summary = import_mailboxes(
            app.engine,
            file,
            cipher=app.cipher,
            clock=app.clock,
            default_timezone=app.settings.send_window_timezone,
            dry_run=dry_run,
            progress=progress_for(sys.stderr),
        )
    except ImportRejected as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(("dry run, nothing written: " if dry_run else "") + str(summary))


@mailboxes.command("list")
@click.option("--state", type=click.Choice([s.value for s in MailboxState], case_sensitive=False))
@click.option("--user", help="Only this user's mailboxes.")
@pass_app
def mailboxes_list(app: App, state: str | None, user: str | None) -> None:
    """List mailboxes with their name (in parentheses when derived from the address), owner,
    plan, state (and why, with a paused engagement's reason) and servers."""
    views = list_mailboxes(
        app.engine, state=MailboxState(state.upper()) if state else None, user=user
    )
    header = ("EMAIL", "NAME", "USER", "PLAN", "STATE", "DAILY", "TIMEZONE", "SMTP", "REASON")
    table = [header] + [
        (
            v.email,
            v.display_name or f"({derived_display_name(v.email)})",
            v.user,
            v.plan,
            v.state.value,
            str(v.daily_limit),
            v.timezone or app.settings.send_window_timezone,
            v.smtp,
            "; ".join(
                filter(
                    None,
                    [
                        v.state_reason,
                        v.engagement_paused and f"engagement paused: {v.engagement_paused}",
                    ],
                )
            ),
        )
        for v in views
    ]
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    for r in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    click.echo(f"{len(views)} mailboxes")


@mailboxes.command("pause")
@click.argument("email")
@click.option("--reason", required=True, help="Why; shown in the list and the UI.")
@pass_app
def mailboxes_pause(app: App, email: str, reason: str) -> None:
    """Pause EMAIL: it is planned no sends until resumed."""
    _change_state(app, email, MailboxState.PAUSED, reason)


@mailboxes.command("resume")
@click.argument("email")
@pass_app
def mailboxes_resume(app: App, email: str) -> None:
    """Resume a paused or disabled EMAIL (and its engagement, if an IMAP login paused it)."""
    _change_state(app, email, MailboxState.ACTIVE, None)


def _change_state(app: App, email: str, state: MailboxState, reason: str | None) -> None:
    try:
        before = set_state(app.engine, email, state, reason, app.clock)
    except MailboxNotFound as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{email}: {before.value} -> {state.value}" + (f" ({reason})" if reason else ""))


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


@main.group()
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
    """The mailboxes that owe sends today which a re-plan can still place (failed sends, a
    window still open): what catch-up re-plans. OWED is QUOTA - SENT - QUEUED; SHORTFALL is
    what their last plan could not place."""
    with app.engine.connect() as conn:
        found = owing(conn, app.settings, app.clock.now())
    if selection:
        click.echo(selection_text(o.email for o in found))
        return
    rows = [
        (o.email, o.local_date, o.quota, o.counted, o.queued, o.failed, o.shortfall, o.owed)
        for o in found
    ]
    header = ("email", "local_date", "quota", "sent", "queued", "failed", "shortfall", "owed")
    _echo_table(header, rows, False)
    click.echo(f"{len(found)} mailboxes owe {sum(o.owed - o.shortfall for o in found)} sends")


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


@main.command("audit")
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


@main.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=2525, show_default=True, type=int)
@click.option(
    "--maildir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where mail is delivered (default: $DAGSTER_HOME/sandbox-mail).",
)
@click.option(
    "--imap-port",
    type=click.IntRange(1, 65535),
    help="Also serve the Maildirs over IMAP on this port (Dovecot, any password; the demo's "
    "receiving side). Default: no IMAP.",
)
def sandbox(host: str, port: int, maildir: Path | None, imap_port: int | None) -> None:
    """Run the local sandbox SMTP server (AUTH, delivery into per-recipient Maildirs), and
    with --imap-port an IMAP server on the same Maildirs."""
    from warmup_dagster.local_imap import LocalDovecot
    from warmup_dagster.sandbox import SandboxServer, run_forever

    # aiosmtpd logs every connection and command at INFO: too much at warmup volumes.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    root = maildir or Path(os.environ.get("DAGSTER_HOME") or ".dagster_home") / "sandbox-mail"
    if imap_port is None:
        run_forever(SandboxServer(root, host=host, port=port))
        return
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o777)
    with LocalDovecot(None, mail_root=root.resolve(), host=host, port=imap_port):
        click.echo(f"sandbox IMAP on {host}:{imap_port} (any password)")
        run_forever(SandboxServer(root, host=host, port=port, shared=True))


@main.command("metrics-server")
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


@main.command("export-log")
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


@main.command("capacity")
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


# In a module of its own; registered here, once `main` exists.
from warmup_dagster.prune_command import prune_command  # noqa: E402

main.add_command(prune_command)
main.add_command(domains_cli.domains)

if __name__ == "__main__":
    main()
