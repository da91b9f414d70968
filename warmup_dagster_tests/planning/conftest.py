"""A small pool of mailboxes in a real database, and a planner bound to it."""

import io
import random
import threading

import pytest

from warmup_dagster.mailboxes.importer import import_mailboxes
from warmup_dagster.planning.planner import plan_mailboxes
from warmup_dagster.settings import load_settings
from warmup_dagster_tests.mailboxes.csvdata import csv_text, row

TIMEZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "America/St_Johns"]


def pool_rows(owners: int = 5, per_owner: int = 4, **overrides: object) -> list[dict]:
    rows = []
    for o in range(owners):
        for k in range(per_owner):
            values = {
                "timezone": TIMEZONES[o % len(TIMEZONES)],
                "smtp_host": f"smtp.provider{k % 3}.example",
                "daily_limit": 30,
                "ramp_start": 10,
                "ramp_step": 2,
                **overrides,
            }
            rows.append(row(f"box{k}@owner{o}-d{k % 2}.example", f"owner{o}", **values))
    return rows


@pytest.fixture
def pool(engine, cipher, clock):
    """20 mailboxes of 5 owners in 5 timezones; returns their addresses."""
    rows = pool_rows()
    import_mailboxes(engine, io.StringIO(csv_text(rows)), cipher=cipher, clock=clock)
    return [r["email"] for r in rows]


@pytest.fixture
def plan(engine, clock):
    def run(emails, env=None, replan=True, seed=1):
        return plan_mailboxes(
            engine,
            emails,
            load_settings(env or {}),
            clock,
            replan=replan,
            rng=random.Random(seed),
        )

    return run


def at_once(*calls):
    """Run `calls` in threads released together by a barrier; returns their results in order
    (an error in any of them fails the test)."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i, call):
        try:
            barrier.wait()
            results[i] = call()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results
