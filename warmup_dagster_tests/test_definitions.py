"""The Dagster definitions load, and the pool asset materializes against a real database."""

import io

import dagster as dg

from warmup_dagster.assets.pool import mailbox_pool
from warmup_dagster.db.models import MailboxState
from warmup_dagster.definitions import defs
from warmup_dagster.mailboxes.importer import import_mailboxes
from warmup_dagster.mailboxes.service import set_state
from warmup_dagster.resources import WarmupDatabase
from warmup_dagster_tests.mailboxes.csvdata import csv_text, row


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_assets_def("mailbox_pool") is not None


def test_mailbox_pool_materializes_with_counts(engine, db_url, cipher, clock):
    import_mailboxes(
        engine,
        io.StringIO(
            csv_text([row("a1@ann.example"), row("a2@ann.example"), row("b1@bob.example", "bob")])
        ),
        cipher=cipher,
        clock=clock,
    )
    set_state(engine, "a2@ann.example", MailboxState.PAUSED, "owner on holiday", clock)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [mailbox_pool],
        resources={"warmup_db": WarmupDatabase(database_url=db_url)},
        instance=instance,
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["mailboxes"] == 3
    assert metadata["users"] == 2
    assert metadata["domains"] == 2
    assert (metadata["state_active"], metadata["state_paused"], metadata["state_disabled"]) == (
        2,
        1,
        0,
    )
    assert "| default | 2 | 3 |" in metadata["plans"]
    messages = [e.user_message for e in instance.all_logs(result.run_id)]
    assert "a2@ann.example is PAUSED: owner on holiday" in messages
