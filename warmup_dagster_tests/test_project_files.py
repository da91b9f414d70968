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


# What never belongs in the repository: generated, installed or local state (.gitignore's).
NOT_OURS = {
    ".git",
    ".venv",
    "__pycache__",
    ".dagster_home",
    ".demo",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "out",
}
# Built from parts so this file does not name what it looks for.
OUTSIDE_REFERENCES = ("../" + "shared", "/work/" + "shared")


def _repository_text_files() -> list[Path]:
    """Every text file of the repository: docs, config, the package, tests, benchmarks, scripts."""
    files = []
    for path in sorted(ROOT.rglob("*")):
        parts = path.relative_to(ROOT).parts
        if any(p in NOT_OURS or p.endswith(".egg-info") for p in parts) or not path.is_file():
            continue
        if path.name == ".env" or path.suffix in (".sqlite", ".pyc"):
            continue
        if b"\0" not in path.read_bytes():
            files.append(path)
    return files


def test_the_repository_stands_alone_without_references_outside_it():
    """Docs, code and config name nothing outside the repository: a reader has only this."""
    files = _repository_text_files()
    names = {str(p.relative_to(ROOT)) for p in files}
    # The scan must reach every kind of file it is meant to check.
    for expected in (
        "README.md",
        "docs/ARCHITECTURE.md",
        "docs/BENCHMARKS.md",
        ".env.example",
        "warmup_dagster/definitions.py",
        "warmup_dagster_tests/conftest.py",
        "benchmarks/bench_plan.py",
        "scripts/ensure_postgres.sh",
        "Makefile",
    ):
        assert expected in names, f"{expected} not scanned"
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        if any(ref in line for ref in OUTSIDE_REFERENCES)
    ]
    assert not found, "references to files outside the repository:\n" + "\n".join(found)


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
