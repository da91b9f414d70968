"""Ops: the sender op, the worker of the send queue; the catch-up op over a list of mailboxes;
the retention op and the engagement op, the receiving side over IMAP."""

import socket

import dagster as dg
from pydantic import Field
from sqlalchemy.engine import Engine

from warmup_dagster.assets.fill_rate import retention_release
from warmup_dagster.clock import Clock
from warmup_dagster.crypto import Cipher
from warmup_dagster.engagement.run import Engager
from warmup_dagster.planning.planner import plan_mailboxes
from warmup_dagster.queue.retention import prune
from warmup_dagster.resources import WarmupDatabase, WarmupSecrets
from warmup_dagster.secrets import keycheck
from warmup_dagster.sending.worker import Sender
from warmup_dagster.settings import Settings


def _worker(
    context: dg.OpExecutionContext, warmup_db: WarmupDatabase, warmup_secrets: WarmupSecrets
) -> tuple[Engine, Clock, Settings, Cipher, bytes, str]:
    """What a sender or engagement run works with: database, clock, settings, cipher, the
    message-token key kept with the key check, and its worker id (this machine and the run).

    Raises:
        SecretKeyError: WARMUP_SECRET_KEY is unusable or not the database's key.
    """
    worker_id = f"{socket.gethostname()}:{context.run_id[:8]}"
    cipher = warmup_secrets.cipher
    # Before the run reads a credential or writes anything: a run with another key than the
    # database's fails here, with one message, instead of pausing every mailbox it touches.
    with warmup_db.engine.begin() as conn:
        token_key = keycheck.verify(conn, cipher, warmup_db.clock.now())
    return warmup_db.engine, warmup_db.clock, warmup_db.settings, cipher, token_key, worker_id


@dg.op(out=dg.Out(dg.Nothing))
def send_due_mail(
    context: dg.OpExecutionContext, warmup_db: WarmupDatabase, warmup_secrets: WarmupSecrets
):
    """Sends due warmup mail until nothing is due or the run's time is up.

    Claims due jobs in batches within every rate cap, sends them over SMTP with up to
    `WARMUP_WORKER_CONCURRENCY` sessions at once, and records outcomes in batches. Per-email
    detail is in the send log, not in Dagster: the run's metadata sums it up.
    """
    sender = Sender(*_worker(context, warmup_db, warmup_secrets), log=context.log)
    worker_id = sender.worker_id
    summary = sender.run()
    context.log.info(f"sender {worker_id} done: {summary.metadata()}")
    yield dg.Output(None, metadata=summary.metadata())


class CatchUpConfig(dg.Config):
    mailboxes: list[str] = Field(
        description="Addresses (send_plan partition keys) to re-plan: what they owe today."
    )


@dg.op(out=dg.Out(dg.Nothing))
def catch_up_mailboxes(
    context: dg.OpExecutionContext, config: CatchUpConfig, warmup_db: WarmupDatabase
):
    """Re-plans the listed mailboxes (`replan=True`): what each still owes today goes into the
    rest of its window, within the caps, idempotently (see `planning.planner`)."""
    plans = plan_mailboxes(
        warmup_db.engine, config.mailboxes, warmup_db.settings, warmup_db.clock, replan=True
    )
    planned = sum(p.planned for p in plans)
    shortfall = sum(p.shortfall for p in plans)
    context.log.info(
        f"caught up {len(config.mailboxes):,} mailboxes: {planned:,} sends planned, "
        f"shortfall {shortfall:,}"
    )
    yield dg.Output(
        None,
        metadata={
            "mailboxes": len(config.mailboxes),
            "mailbox_days": len(plans),
            "planned": planned,
            "shortfall": shortfall,
        },
    )


class PruneConfig(dg.Config):
    dry_run: bool = Field(False, description="Count what would be deleted; delete nothing.")


@dg.op(out=dg.Out(dg.Nothing))
def prune_past_retention(
    context: dg.OpExecutionContext, config: PruneConfig, warmup_db: WarmupDatabase
):
    """Deletes the history past `WARMUP_RETENTION_DAYS` in bounded batches (`queue.retention`):
    the finished jobs of those dates, their send-log rows, their daily quotas and old counters;
    with `WARMUP_RETENTION_REQUIRES_FILL_RATE`, only dates whose `fill_rate` is materialized."""
    settings = warmup_db.settings
    pruned = prune(
        warmup_db.engine,
        warmup_db.clock.now(),
        settings,
        retention_release(settings, context.instance),
        dry_run=config.dry_run,
    )
    for line in pruned.lines():
        context.log.info(line)
    yield dg.Output(None, metadata=pruned.metadata())


@dg.op(out=dg.Out(dg.Nothing))
def engage_mailboxes(
    context: dg.OpExecutionContext, warmup_db: WarmupDatabase, warmup_secrets: WarmupSecrets
):
    """Engages received warmup mail over IMAP: leases due mailboxes (up to
    `WARMUP_ENGAGE_MAILBOXES_PER_RUN`), one session each with up to `WARMUP_ENGAGE_CONCURRENCY`
    at once: finds the mail in the inbox and spam folder, rescues, marks, files it, queues the
    replies. Per-message detail is in the `engagements` table; the run's metadata sums it up.
    """
    engager = Engager(*_worker(context, warmup_db, warmup_secrets), log=context.log)
    worker_id = engager.worker_id
    summary = engager.run()
    context.log.info(f"engager {worker_id} done: {summary.metadata()}")
    yield dg.Output(None, metadata=summary.metadata())
