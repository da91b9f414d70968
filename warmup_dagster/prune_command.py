"""`warmup prune [--dry-run]`: the history past retention deleted from the command line.

The same prune as `retention_sensor`'s `prune_history` runs (`queue.retention`). With
`WARMUP_RETENTION_REQUIRES_FILL_RATE` it reads which dates have their `fill_rate` record
from the Dagster instance in `DAGSTER_HOME` (the deployment's `dagster.yaml`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click
import dagster as dg

from warmup_dagster.assets.fill_rate import retention_release
from warmup_dagster.queue.retention import prune

if TYPE_CHECKING:
    from warmup_dagster.cli_app import App


_NEEDS_INSTANCE = (
    "WARMUP_RETENTION_REQUIRES_FILL_RATE is true: a date is pruned only once its fill_rate"
    " partition is materialized, which the Dagster instance records, so DAGSTER_HOME must name"
    " the folder of the deployment's dagster.yaml (or set WARMUP_RETENTION_REQUIRES_FILL_RATE="
    "false to prune by age alone)"
)


def _instance() -> dg.DagsterInstance:
    """The deployment's Dagster instance (`DAGSTER_HOME`); a clear error without one."""
    if not os.environ.get("DAGSTER_HOME"):
        raise click.ClickException(_NEEDS_INSTANCE)
    try:
        return dg.DagsterInstance.get()
    except dg.DagsterError as exc:
        raise click.ClickException(f"{_NEEDS_INSTANCE}. Dagster said: {exc}") from None


@click.command("prune")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.pass_obj
def prune_command(app: App, dry_run: bool) -> None:
    """Delete the history past WARMUP_RETENTION_DAYS: finished jobs of those local dates,
    their send-log rows and daily quotas, and old counters, in bounded batches."""
    settings = app.settings
    instance = _instance() if settings.retention_requires_fill_rate else None
    try:
        release = None if instance is None else retention_release(settings, instance)
        pruned = prune(app.engine, app.clock.now(), settings, release, dry_run=dry_run)
    finally:
        if instance is not None:
            instance.dispose()
    for line in pruned.lines():
        click.echo(line)
