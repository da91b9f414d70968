"""The demo pool sends to the sandbox port `make demo` really uses."""

import csv
import io
import os
import subprocess
from importlib.resources import files
from pathlib import Path

import pytest
from sqlalchemy import select

from warmup_dagster.db.engine import make_engine
from warmup_dagster.db.models import Mailbox
from warmup_dagster.demo import pool_csv

ROOT = Path(__file__).resolve().parents[2]


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_pool_csv_changes_the_smtp_port_and_nothing_else():
    packaged = _rows(files("warmup_dagster.demo").joinpath("mailboxes.csv").read_text())
    moved = _rows(pool_csv(2626))

    assert len(moved) == len(packaged) == 20
    assert {row["smtp_port"] for row in packaged} == {"2525"}
    assert {row["smtp_port"] for row in moved} == {"2626"}
    assert [{**row, "smtp_port": "2525"} for row in moved] == packaged


@pytest.mark.parametrize("port", [0, 65536])
def test_pool_csv_refuses_a_port_outside_the_range(port: int):
    with pytest.raises(ValueError, match=f"smtp_port must be 1-65535, not {port}"):
        pool_csv(port)


@pytest.mark.slow(8)
def test_demo_script_imports_the_pool_with_the_sandbox_port_it_was_given(tmp_path):
    """`scripts/demo.sh prepare` is the demo up to the import; WARMUP_SANDBOX_PORT moves it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WARMUP_", "DAGSTER_"))}
    env.update(DAGSTER_HOME=str(tmp_path), WARMUP_SANDBOX_PORT="2626")
    result = subprocess.run(
        [str(ROOT / "scripts" / "demo.sh"), "prepare"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    engine = make_engine(f"sqlite:///{tmp_path / 'warmup.sqlite'}")
    try:
        with engine.connect() as conn:
            ports = conn.execute(select(Mailbox.email, Mailbox.smtp_port)).all()
    finally:
        engine.dispose()
    assert len(ports) == 20
    assert {port for _, port in ports} == {2626}, ports
