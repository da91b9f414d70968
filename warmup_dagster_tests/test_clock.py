import threading
import time
from datetime import UTC, datetime, timedelta

from warmup_dagster.clock import RealClock, ScaledClock, clock_from_settings
from warmup_dagster.db.engine import make_engine
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
