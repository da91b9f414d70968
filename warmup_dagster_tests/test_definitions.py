"""The Dagster definitions load, and the pool asset materializes against a real database."""

import io
import os
import subprocess
import sys

import dagster as dg

from warmup_dagster.assets.pool import mailbox_pool
from warmup_dagster.db.models import MailboxState
from warmup_dagster.definitions import defs
from warmup_dagster.mailboxes.importer import import_mailboxes
from warmup_dagster.mailboxes.service import set_state
from warmup_dagster.resources import WarmupDatabase
from warmup_dagster_tests.conftest import TEST_SECRET
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


# Loads the code location as every Dagster process does, then executes an asset run and a
# sender run in process, with every warning shown (`-W always`).
_LOAD_AND_RUN = """
import dagster as dg
from warmup_dagster.definitions import defs
from warmup_dagster.db import migrate
import os

dg.Definitions.validate_loadable(defs)
migrate.upgrade(os.environ["WARMUP_DATABASE_URL"])
instance = dg.DagsterInstance.ephemeral()
pool = defs.resolve_implicit_global_asset_job_def().execute_in_process(
    instance=instance, asset_selection=[dg.AssetKey("mailbox_pool")]
)
sender = defs.resolve_job_def("send_mail").execute_in_process(instance=instance)
print("runs succeeded:", pool.success and sender.success)
"""


def test_loading_and_running_the_code_location_prints_no_beta_or_preview_warning(tmp_path):
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path),
        "WARMUP_DATABASE_URL": f"sqlite:///{tmp_path / 'warmup.sqlite'}",
        "WARMUP_SECRET_KEY": TEST_SECRET,
        "WARMUP_CLOCK_SPEED": "1",
        # Nothing is due: the sender run ends after one dispatch interval.
        "WARMUP_SCHEDULER_INTERVAL_MS": "1000",
    }
    result = subprocess.run(
        [sys.executable, "-W", "always", "-c", _LOAD_AND_RUN],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "runs succeeded: True" in result.stdout, result.stdout + result.stderr
    warned = [
        line
        for line in result.stderr.splitlines()
        if "BetaWarning" in line or "PreviewWarning" in line
    ]
    assert not warned, "\n".join(warned)
