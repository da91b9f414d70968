import multiprocessing
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from warmup_dagster.clock import RealClock, ScaledClock, clock_from_settings
from warmup_dagster.db.engine import make_engine
from warmup_dagster.db.models import ClockAnchor
from warmup_dagster.settings import load_settings


def test_real_clock_is_aware_utc():
    now = RealClock().now()
    assert now.tzinfo is not None
    assert abs((now - datetime.now(UTC)).total_seconds()) < 5


def test_scaled_clock_runs_at_its_speed():
    start = datetime(2026, 3, 2, 6, tzinfo=UTC)
    clock = ScaledClock(start, datetime.now(UTC), speed=3600)
    time.sleep(0.05)
    elapsed = clock.now() - start
    # 50 ms of wall time at 3600x is 180 s of virtual time (plus scheduling noise)
    assert timedelta(seconds=170) <= elapsed <= timedelta(seconds=3600)
    assert clock.real_seconds(3600) == 1.0


def test_default_settings_give_the_real_clock(db_url):
    engine = make_engine(db_url)
    assert isinstance(clock_from_settings(load_settings({}), engine), RealClock)


def test_every_process_agrees_on_the_virtual_clock(db_url):
    """Clocks built separately (as separate processes would) share one stored anchor."""
    env = {"WARMUP_CLOCK_SPEED": "100", "WARMUP_CLOCK_START": "2026-03-02T06:00:00+00:00"}
    clocks = []

    def build():
        engine = make_engine(db_url)
        clocks.append(clock_from_settings(load_settings(env), engine))
        engine.dispose()

    build()
    time.sleep(0.2)  # a process started later
    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(clocks) == 5
    anchors = {(c.virtual_start, c.real_start, c.speed) for c in clocks}
    assert len(anchors) == 1
    assert clocks[0].virtual_start == datetime(2026, 3, 2, 6, tzinfo=UTC)
    readings = [c.now() for c in clocks]
    assert max(readings) - min(readings) < timedelta(seconds=10)  # 0.1 s wall at 100x


def _anchor_in_child(db_url: str, env: dict[str, str], go: Any, out: Any) -> None:
    """A forked process's start: its own engine, then the clock, as a run's process does."""
    try:
        engine = make_engine(db_url)
        go.wait(10)
        clock = clock_from_settings(load_settings(env), engine)
        out.put((clock.virtual_start.isoformat(), clock.real_start.isoformat()))
    except Exception as exc:  # reported by the parent: the test names the error
        out.put(f"failed: {exc!r}")
    os._exit(0)  # not the parent's atexit handlers (pytest's)


def test_processes_starting_together_share_one_anchor_and_none_fails(db_url):
    """Six processes ask for the scaled clock at one moment, on a database without its anchor:
    each gets the same one, none fails (SQLite's "database is locked" before the anchor was
    written under the write lock)."""
    env = {"WARMUP_CLOCK_SPEED": "50", "WARMUP_CLOCK_START": "2026-03-02T06:00:00+00:00"}
    context = multiprocessing.get_context("fork")
    go, out = context.Event(), context.SimpleQueue()  # put writes at once: no feeder
    children = [
        context.Process(target=_anchor_in_child, args=(db_url, env, go, out)) for _ in range(6)
    ]
    for child in children:
        child.start()
    go.set()
    for child in children:
        child.join(30)
    assert [child.exitcode for child in children] == [0] * 6
    answers = [out.get() for _ in children]
    assert [a for a in answers if isinstance(a, str)] == []
    assert len(set(answers)) == 1
    with Session(make_engine(db_url)) as session:
        assert session.scalar(select(func.count()).select_from(ClockAnchor)) == 1
