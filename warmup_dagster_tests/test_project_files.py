"""The project's Dagster files work as shipped: workspace, pyproject and both instance configs."""

import ast
import importlib.metadata
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from warmup_dagster.definitions import defs
from warmup_dagster.jobs import MAX_RUNTIME_MARGIN_S, MAX_RUNTIME_TAG, sender_max_runtime
from warmup_dagster.settings import load_settings

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


@pytest.mark.slow(10)
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
        # A run whose process died is failed by the monitor, not left STARTED for good.
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_poll_interval_seconds == 30
    finally:
        instance.dispose()


def test_embedded_instance_config_is_sqlite(tmp_path):
    shutil.copy(ROOT / "deploy" / "dagster.embedded.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_poll_interval_seconds == 30
    finally:
        instance.dispose()


# Declared for what runs beside the code, not for an import: `dagster dev`'s UI, the GraphQL
# layer the UI and the CLI talk through, and the storage classes dagster.yaml names.
RUN_ONLY_REQUIREMENTS = {"dagster-webserver", "dagster-graphql", "dagster-postgres"}


def _top_level_imports(folder: Path) -> dict[str, set[str]]:
    """Top-level module -> the files under `folder` that import it (absolute imports only)."""
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def _requirement_names(key: str) -> set[str]:
    """The distribution names in setup.py's `install_requires` or `extras_require[key]`."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    (call,) = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "setup"
    ]
    keywords = {k.arg: k.value for k in call.keywords}
    if key == "install_requires":
        entries = keywords[key]
    else:
        extras = keywords["extras_require"]
        assert isinstance(extras, ast.Dict)
        entries = extras.values[[ast.literal_eval(k) for k in extras.keys].index(key)]
    assert isinstance(entries, ast.List)
    names = set()
    for entry in entries.elts:
        # An f-string (the pinned Dagster packages) starts with its constant name part.
        first = entry.values[0] if isinstance(entry, ast.JoinedStr) else entry
        assert isinstance(first, ast.Constant), ast.dump(entry)
        names.add(_normalized(re.match(r"[A-Za-z0-9._-]+", first.value).group()))
    return names


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_third_party_import_of_the_package_is_declared_and_every_requirement_used():
    distributions = importlib.metadata.packages_distributions()
    imported: dict[str, set[str]] = {}
    for module, files in _top_level_imports(ROOT / "warmup_dagster").items():
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top == "warmup_dagster" or top == "__future__":
            continue
        for dist in distributions.get(top, [f"<no distribution provides {top}>"]):
            imported.setdefault(_normalized(dist), set()).update(files)
    declared = _requirement_names("install_requires")
    undeclared = {dist: sorted(files) for dist, files in imported.items() if dist not in declared}
    assert not undeclared, f"imported by the package, missing from install_requires: {undeclared}"
    unused = declared - set(imported) - RUN_ONLY_REQUIREMENTS
    assert not unused, f"declared in install_requires, imported nowhere in the package: {unused}"
    assert {"pytest", "hypothesis"} <= _requirement_names("dev")
    assert not {"pytest", "hypothesis"} & declared


def test_the_testing_module_is_for_tests_and_benchmarks_only():
    """The package's own code never imports its testing module; it never imports pytest."""
    package = _top_level_imports(ROOT / "warmup_dagster")
    outside = {
        path
        for module, files in package.items()
        if module.startswith("warmup_dagster.testing") or module == "warmup_dagster_tests"
        for path in files
        if not path.startswith("warmup_dagster/testing/")
    }
    assert not outside, f"package modules importing the testing module or the tests: {outside}"
    testing = _top_level_imports(ROOT / "warmup_dagster" / "testing")
    assert not [m for m in testing if m.split(".")[0] in ("pytest", "warmup_dagster_tests")]


def test_benchmarks_do_not_import_the_test_suite():
    imports = _top_level_imports(ROOT / "benchmarks")
    suite = {m: sorted(f) for m, f in imports.items() if m.split(".")[0] == "warmup_dagster_tests"}
    assert not suite, f"benchmarks import the test package (use warmup_dagster.testing): {suite}"
    assert "warmup_dagster.testing.postgres" in imports


def test_the_benchmarks_pool_files_are_valid_imports():
    """`bench_import.make_csv` writes the pool of several benchmarks: every row must pass the
    importer's checks (a column added before `timezone` once shifted them all, and every
    benchmark's import was rejected)."""
    from benchmarks.bench_import import make_csv
    from warmup_dagster.mailboxes.csvsource import read_rows

    rows = list(read_rows(io.StringIO(make_csv(10))))
    assert len(rows) == 10
    assert [r for r in rows if isinstance(r, list)] == []


def test_sender_runs_carry_a_max_runtime_from_their_lifetime_and_lease():
    """Run monitoring ends a sender run by its `dagster/max_runtime` tag (real seconds): its
    lifetime and a lease (clock seconds, at the clock's speed) and a margin."""
    tags = defs.resolve_job_def("send_mail").tags
    assert tags[MAX_RUNTIME_TAG] == str(sender_max_runtime(load_settings()))
    settings = load_settings(
        {
            "WARMUP_CLOCK_SPEED": "60",
            "WARMUP_SENDER_RUN_MAX_SECONDS": "900",
            "WARMUP_SEND_LEASE_SECONDS": "610",
        }
    )
    assert sender_max_runtime(settings) == 26 + MAX_RUNTIME_MARGIN_S  # ceil(1510 / 60)
