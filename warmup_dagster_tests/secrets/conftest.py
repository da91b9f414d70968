"""What the secrets tests share: a second key, the mismatch message, an import, the CLI."""

from __future__ import annotations

import io

import pytest
from click.testing import CliRunner

from warmup_dagster.cli import main
from warmup_dagster.mailboxes.importer import import_mailboxes
from warmup_dagster_tests.conftest import TEST_SECRET
from warmup_dagster_tests.mailboxes.csvdata import csv_text, row

OTHER_SECRET = "another-key-entirely-0123456789"
MISMATCH = "WARMUP_SECRET_KEY is not the key this database's credentials are encrypted with"


def import_boxes(engine, cipher, clock, *emails: str, dry_run: bool = False):
    text = csv_text([row(email) for email in emails])
    return import_mailboxes(engine, io.StringIO(text), cipher=cipher, clock=clock, dry_run=dry_run)


@pytest.fixture
def cli(db_url, tmp_path):
    runner = CliRunner()

    def run(*args: str, secret: str = TEST_SECRET, **env: str):
        base = {"WARMUP_DATABASE_URL": db_url, "DAGSTER_HOME": str(tmp_path)}
        return runner.invoke(main, list(args), env={**base, "WARMUP_SECRET_KEY": secret, **env})

    return run
