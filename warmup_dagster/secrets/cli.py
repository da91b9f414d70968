"""`warmup secrets rotate`: re-key every stored credential to a new `WARMUP_SECRET_KEY`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from warmup_dagster.cli_app import App, needs_secret_key, pass_app
from warmup_dagster.crypto import NEW_SECRET_KEY_VAR, Cipher, SecretKeyError, cipher_from_env
from warmup_dagster.progress import progress_for
from warmup_dagster.secrets.rotate import rotate


@click.group()
def secrets() -> None:
    """The deployment secret: re-key the stored credentials."""


@secrets.command("rotate")
@click.option(
    "--new-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=f"Read the new key from this file (one line) instead of {NEW_SECRET_KEY_VAR}.",
)
@pass_app
@needs_secret_key
def rotate_command(app: App, new_key_file: Path | None) -> None:
    """Re-encrypt every stored credential from WARMUP_SECRET_KEY (the key in use) to the new
    key, given in WARMUP_NEW_SECRET_KEY or --new-key-file, in one transaction.

    Stop the Dagster daemon and runs first; afterwards set WARMUP_SECRET_KEY to the new key
    on every machine and start them again. Interrupted, nothing changes.
    """
    try:
        new = _new_cipher(new_key_file)
        rotated = rotate(app.engine, app.cipher, new, app.clock.now(), progress_for(sys.stderr))
    except SecretKeyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"{rotated}; the database's key is now the new one: set WARMUP_SECRET_KEY to it on "
        "every machine before starting the daemon and runs again"
    )


def _new_cipher(new_key_file: Path | None) -> Cipher:
    if new_key_file is not None:
        # A file ends with its newline: one line break at the end is not part of the key.
        text = new_key_file.read_text(encoding="utf-8")
        return Cipher(text.removesuffix("\n").removesuffix("\r"), f"the key in {new_key_file}")
    if not os.environ.get(NEW_SECRET_KEY_VAR):
        raise SecretKeyError(f"give the new key in {NEW_SECRET_KEY_VAR} or with --new-key-file")
    return cipher_from_env(var=NEW_SECRET_KEY_VAR)
