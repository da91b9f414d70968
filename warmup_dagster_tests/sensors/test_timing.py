"""Sensor intervals are derived from clock-time settings and the clock's speed."""

import subprocess
import sys

from warmup_dagster.sensors.timing import real_interval_seconds


def test_a_clock_time_interval_lasts_one_speedth_in_real_time():
    assert real_interval_seconds(60, speed=1) == 60
    assert real_interval_seconds(60, speed=12) == 5
    assert real_interval_seconds(600, speed=60) == 10
    # Dagster counts whole seconds: never below one
    assert real_interval_seconds(60, speed=600) == 1


def test_the_dispatch_sensor_interval_follows_the_setting_and_the_speed():
    code = (
        "from warmup_dagster.definitions import defs;"
        "print(defs.resolve_sensor_def('dispatch_sensor').minimum_interval_seconds)"
    )
    env = {"WARMUP_SCHEDULER_INTERVAL_MS": "120000", "WARMUP_CLOCK_SPEED": "12", "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split()[-1] == "10"  # 120 s of clock time at 12x
