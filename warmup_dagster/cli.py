"""The `warmup` command: database migrations, mailbox import and state, and the sandbox
server, with the day's commands (reports, audit, export, capacity, metrics server:
`day_commands.py`), the prune of old history (`prune_command.py`), the domain checks
(`domains/cli.py`) and the key's rotation (`secrets/cli.py`) registered on it. What every
command is given is in `cli_app.py`."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click
from sqlalchemy.engine import make_url

from warmup_dagster.cli_app import (
    App,
    ConfigurationError,
    needs_database_key,
    needs_secret_key,
    pass_app,
)
from warmup_dagster.core.health import Figures
from warmup_dagster.core.names import derived_display_name
from warmup_dagster.crypto import SECRET_KEY_VAR, SecretKeyError
from warmup_dagster.day_commands import (
    audit,
    capacity_command,
    export_log_command,
    metrics_server,
    report,
)
from warmup_dagster.db import migrate
from warmup_dagster.db.models import MailboxState
from warmup_dagster.domains import cli as domains_cli
from warmup_dagster.mailboxes.importer import ImportRejected, import_mailboxes
from warmup_dagster.mailboxes.service import MailboxNotFound, list_mailboxes, set_state
from warmup_dagster.oauth.connect import ConnectFailed, connect
from warmup_dagster.oauth.providers import FLOWS, PROVIDERS, ProviderNotConfigured
from warmup_dagster.progress import progress_for
from warmup_dagster.prune_command import prune_command
from warmup_dagster.secrets import cli as secrets_cli
from warmup_dagster.settings import Settings, SettingsError, load_settings, masked
from warmup_dagster.terminal import EscapingGroup, printable


@click.group(cls=EscapingGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Email warmup on Dagster. Configuration comes from WARMUP_* environment variables."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s")
    try:
        ctx.obj = App(load_settings())
    except SettingsError as exc:
        # Exit 2 like a usage error, without the usage banner: the message is the whole story.
        raise ConfigurationError(str(exc)) from None


@main.command("config")
@pass_app
@needs_secret_key
def show_config(app: App) -> None:
    """Print the effective settings (secrets are never printed, only whether they are set)."""
    for name in Settings.model_fields:
        value = getattr(app.settings, name)
        if name == "database_url":
            value = make_url(value).render_as_string(hide_password=True)
        elif isinstance(value, str):
            value = masked(value)
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
    """Import, list, pause, resume and connect (OAuth2) mailboxes."""


@mailboxes.command("import")
# Bytes: the reading decodes UTF-8 itself, naming the line of anything else (`csvsource`).
@click.argument("file", type=click.File("rb"))
@click.option("--dry-run", is_flag=True, help="Validate and report; write nothing.")
@pass_app
@needs_database_key
def mailboxes_import(app: App, file: click.utils.LazyFile, dry_run: bool) -> None:
    """Import mailboxes from a CSV FILE; re-importing an address updates it.

    Required columns: email, user, smtp_host, smtp_port, smtp_security, smtp_username,
    smtp_password, imap_host, imap_port, imap_security, imap_username, imap_password.
    Optional: display_name, timezone, daily_limit, ramp_start, ramp_step, reply_rate,
    weekdays_only, plan, auth (password or oauth2), oauth_provider, oauth_refresh_token (an
    oauth2 row needs no passwords).
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
    except (ImportRejected, SecretKeyError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(("dry run, nothing written: " if dry_run else "") + str(summary))


@mailboxes.command("list")
@click.option("--state", type=click.Choice([s.value for s in MailboxState], case_sensitive=False))
@click.option("--user", help="Only this user's mailboxes.")
@pass_app
@needs_database_key
def mailboxes_list(app: App, state: str | None, user: str | None) -> None:
    """List mailboxes with their name (in parentheses when derived from the address), owner,
    plan, state, health and the spam rate of their mail over the health window (and why:
    the state's reason, a paused engagement's, the health's) and servers."""
    views = list_mailboxes(
        app.engine, state=MailboxState(state.upper()) if state else None, user=user
    )
    header = (
        "EMAIL", "NAME", "USER", "PLAN", "STATE", "HEALTH", "SPAM", "DAILY", "TIMEZONE", "SMTP",
        "REASON",
    )  # fmt: skip
    rows = [
        (
            v.email,
            v.display_name or f"({derived_display_name(v.email)})",
            v.user,
            v.plan,
            v.state.value,
            v.health.value,
            _spam(v.health_figures),
            str(v.daily_limit),
            v.timezone or app.settings.send_window_timezone,
            v.smtp,
            "; ".join(
                filter(
                    None,
                    [
                        v.state_reason,
                        v.engagement_paused and f"engagement paused: {v.engagement_paused}",
                        v.health_reason and f"health: {v.health_reason}",
                    ],
                )
            ),
        )
        for v in views
    ]
    # Names, reasons (an SMTP server's reply among them) are data: escaped before measuring.
    table = [header, *(tuple(printable(cell) for cell in r) for r in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    for r in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    click.echo(f"{len(views)} mailboxes")


def _spam(figures: Figures | None) -> str:
    """The spam rate of a mailbox's placed mail in the health window, e.g. `25% of 40`."""
    if figures is None or not figures.placed:
        return "-"
    return f"{figures.spam / figures.placed:.0%} of {figures.placed}"


@mailboxes.command("pause")
@click.argument("email")
@click.option("--reason", required=True, help="Why; shown in the list and the UI.")
@pass_app
@needs_database_key
def mailboxes_pause(app: App, email: str, reason: str) -> None:
    """Pause EMAIL: it is planned no sends until resumed."""
    _change_state(app, email, MailboxState.PAUSED, reason)


@mailboxes.command("resume")
@click.argument("email")
@pass_app
@needs_database_key
def mailboxes_resume(app: App, email: str) -> None:
    """Resume a paused or disabled EMAIL (and its engagement, if an IMAP login paused it)."""
    _change_state(app, email, MailboxState.ACTIVE, None)


def _change_state(app: App, email: str, state: MailboxState, reason: str | None) -> None:
    try:
        before = set_state(app.engine, email, state, reason, app.clock)
    except MailboxNotFound as exc:
        raise click.ClickException(str(exc)) from None
    said = f"{email}: {before.value} -> {state.value}" + (f" ({reason})" if reason else "")
    click.echo(printable(said))


@mailboxes.command("connect")
@click.argument("email")
@click.option(
    "--provider",
    "provider_name",
    required=True,
    type=click.Choice(PROVIDERS, case_sensitive=False),
    help="Where the mailbox signs in (its client is set by WARMUP_OAUTH_<PROVIDER>_*).",
)
@click.option(
    "--flow",
    type=click.Choice(FLOWS),
    help="device: a code entered on any device (default; not for Google); browser: a URL "
    "opened in a browser on this machine (default for Google).",
)
@pass_app
@needs_secret_key
def mailboxes_connect(app: App, email: str, provider_name: str, flow: str | None) -> None:
    """Sign EMAIL in with OAuth2 (XOAUTH2): shows the mailbox's owner where to consent,
    waits for it, and stores the refresh token, encrypted. A mailbox paused for an OAuth2
    reason (not connected yet, its token refused) is resumed."""
    try:
        done = connect(
            app.engine,
            app.clock,
            app.settings,
            app.cipher,
            email,
            provider_name.lower(),
            show=click.echo,
            flow=flow,
        )
    except (MailboxNotFound, ProviderNotConfigured, ConnectFailed) as exc:
        raise click.ClickException(str(exc)) from None
    said = f"{done.email}: connected with {done.provider}" + ("; resumed" if done.resumed else "")
    click.echo(printable(said))


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


for command in (report, audit, metrics_server, export_log_command, capacity_command):
    main.add_command(command)
main.add_command(prune_command)
main.add_command(domains_cli.domains)
main.add_command(secrets_cli.secrets)

if __name__ == "__main__":
    main()
