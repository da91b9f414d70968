"""The project's Dagster files work as shipped: workspace, pyproject and both instance configs."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).parent / "dagster")


def _validate(args: list[str], home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    return subprocess.run(
        [DAGSTER, "definitions", "validate", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_definitions_validate_with_workspace_and_with_pyproject(tmp_path):
    shutil.copy(ROOT / "deploy" / "dagster.embedded.yaml", tmp_path / "dagster.yaml")
    for args in (["-w", "workspace.yaml"], []):
        result = _validate(args, tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Validation successful" in result.stdout + result.stderr


def test_production_instance_config_runs_on_postgres(tmp_path, pg_databases, monkeypatch):
    """dagster.yaml, as shipped, gives a working Postgres-backed instance."""
    url = pg_databases.url(pg_databases.create())
    monkeypatch.setenv("WARMUP_DAGSTER_POSTGRES_URL", url)
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert {"key": "warmup/role", "value": "sender", "limit": 5} in limits
        assert instance.get_runs() == []
    finally:
        instance.dispose()


def test_embedded_instance_config_is_sqlite(tmp_path):
    shutil.copy(ROOT / "deploy" / "dagster.embedded.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
    finally:
        instance.dispose()
