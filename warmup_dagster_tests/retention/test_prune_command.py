"""`warmup prune [--dry-run]` through click's CliRunner, on both databases."""

import pytest
from click.testing import CliRunner

from warmup_dagster.cli import main
from warmup_dagster_tests.conftest import TEST_SECRET
from warmup_dagster_tests.retention.history import NOW, OLD, snapshot


@pytest.fixture
def warmup(db_url, tmp_path, history):
    env = {
        "WARMUP_DATABASE_URL": db_url,
        "WARMUP_SECRET_KEY": TEST_SECRET,
        "DAGSTER_HOME": str(tmp_path),
        "WARMUP_CLOCK_START": NOW.isoformat(),
        "WARMUP_CLOCK_SPEED": "1",
    }

    def run(*args: str, **extra: str | None):
        return CliRunner().invoke(main, list(args), env={**env, **extra})

    return run


def test_a_dry_run_reports_and_a_prune_deletes(warmup, engine):
    by_age = {"WARMUP_RETENTION_REQUIRES_FILL_RATE": "false"}
    before = snapshot(engine)
    result = warmup("prune", "--dry-run", **by_age)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "dates before 2026-03-09 are past retention",
        f"{OLD}: 5 finished jobs, 6 send-log rows, 2 daily quotas;"
        " kept 2 jobs still queued or in flight",
        "would delete 5 jobs, 6 send-log rows, 2 daily quotas and 1 counters",
    ]
    assert snapshot(engine) == before
    result = warmup("prune", **by_age)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith(
        "deleted 5 jobs, 6 send-log rows, 2 daily quotas and 1 counters in "
    )
    assert len(snapshot(engine)["jobs"]) == len(before["jobs"]) - 5


def test_a_date_without_its_fill_rate_is_kept(warmup, engine):
    before = snapshot(engine)
    result = warmup("prune")
    assert result.exit_code == 0, result.output
    assert "kept 1 dates without a fill_rate record: 2026-03-02" in result.output
    assert snapshot(engine)["jobs"] == before["jobs"]


def test_the_fill_rate_requirement_needs_the_dagster_instance(warmup):
    result = warmup("prune", DAGSTER_HOME=None)
    assert result.exit_code == 1
    assert "WARMUP_RETENTION_REQUIRES_FILL_RATE is true" in result.output
    assert "DAGSTER_HOME" in result.output
