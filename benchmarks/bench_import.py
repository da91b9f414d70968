"""Benchmark: import N mailboxes from CSV into PostgreSQL, then re-import them (updates).

    python benchmarks/bench_import.py --rows 100000

Goal: 100,000 rows in at most 60 s on PostgreSQL on the project's 2-core machine.
"""

from __future__ import annotations

import argparse
import csv
import io
import time
from datetime import UTC, datetime

from benchmarks.common import machine, peak_rss_mb, scratch_postgres
from warmup_dagster.clock import RealClock
from warmup_dagster.crypto import Cipher
from warmup_dagster.db import migrate
from warmup_dagster.db.engine import make_engine
from warmup_dagster.mailboxes.importer import import_mailboxes
from warmup_dagster.mailboxes.rows import OPTIONAL_COLUMNS, REQUIRED_COLUMNS

TIMEZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "America/St_Johns"]


def make_csv(rows: int, mailboxes_per_user: int = 100, daily_limit: int = 40) -> str:
    """The rows by column name: a column added to the import (as `display_name` was, before
    `timezone`) leaves them right."""
    out = io.StringIO()
    writer = csv.DictWriter(out, REQUIRED_COLUMNS + OPTIONAL_COLUMNS, restval="")
    writer.writeheader()
    for i in range(rows):
        email = f"box{i:06d}@d{i % 5000:04d}.example.com"
        writer.writerow(
            {
                "email": email, "user": f"user{i // mailboxes_per_user:05d}",
                "smtp_host": "smtp.example.com", "smtp_port": 587, "smtp_security": "starttls",
                "smtp_username": email, "smtp_password": f"pw-{i}",
                "imap_host": "imap.example.com", "imap_port": 993, "imap_security": "ssl",
                "imap_username": email, "imap_password": f"pw-{i}",
                "timezone": TIMEZONES[i % 5], "daily_limit": daily_limit, "ramp_start": 2,
                "ramp_step": 2, "reply_rate": 0.3, "weekdays_only": "false", "plan": "pro",
            }
        )  # fmt: skip
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    print(f"machine: {machine()}; date: {datetime.now(UTC):%Y-%m-%d}")
    text = make_csv(args.rows)
    cipher = Cipher("benchmark-secret-key-0123456789")
    with scratch_postgres("warmup_bench_import") as url:
        migrate.upgrade(url)
        engine = make_engine(url)
        for label in ("import (all new)", "re-import (all updates)"):
            started = time.perf_counter()
            summary = import_mailboxes(engine, io.StringIO(text), cipher=cipher, clock=RealClock())
            elapsed = time.perf_counter() - started
            print(
                f"{label}: {args.rows:,} rows in {elapsed:.1f} s "
                f"({args.rows / elapsed:,.0f} rows/s); {summary}"
            )
        engine.dispose()
    print(f"peak RSS: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
