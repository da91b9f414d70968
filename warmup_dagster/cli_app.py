"""What every `warmup` command is given: the `App` (settings, engine, clock, cipher, built on
first use), the decorator that passes it, the secret-key check of the commands that set a
deployment up, and the check that the key is the database's for those that touch mailboxes."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property, wraps
from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import Engine

from warmup_dagster.clock import Clock, clock_from_settings
from warmup_dagster.crypto import Cipher, SecretKeyError, cipher_from_env
from warmup_dagster.db.engine import make_engine
from warmup_dagster.secrets import keycheck
from warmup_dagster.settings import Settings


class ConfigurationError(click.ClickException):
    """Bad `WARMUP_*` settings: one line per variable, exit status 2 (a usage error's, without
    click's usage banner: the message says it all)."""

    exit_code = 2


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

    def check_database_key(self) -> None:
        """End the command unless the key is usable and the one the database's credentials
        are encrypted with (`secrets.keycheck`)."""
        try:
            with self.engine.begin() as conn:
                keycheck.verify(conn, self.cipher, self.clock.now())
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


def needs_database_key(command: Callable[..., Any]) -> Callable[..., Any]:
    """Check before `command` that WARMUP_SECRET_KEY is usable and is the database's key: the
    `warmup mailboxes` commands, which read or write mailboxes and their credentials."""

    @wraps(command)
    def checked(app: App, *args: Any, **kwargs: Any) -> Any:
        app.check_database_key()
        return command(app, *args, **kwargs)

    return checked
