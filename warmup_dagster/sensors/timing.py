"""Sensor intervals from clock-time settings.

Every interval setting is clock time. A sensor's interval is real time, fixed when the
definitions load, so it is derived from the setting and `WARMUP_CLOCK_SPEED`: at speed S an
interval of N clock seconds is N/S real seconds. Dagster's sensor daemon evaluates sensors in a
loop that runs at most every 5 real seconds (`MIN_INTERVAL_LOOP_TIME` in Dagster 1.13.27), so a
sensor ticks no more often than that whatever its interval: at high speeds the effective
interval is `max(N/S, 5 s)` of real time, at least `5 s x S` of clock time.
"""

from warmup_dagster.settings import load_settings

# Dagster takes whole seconds; 1 s is the smallest interval a sensor can ask for.
MIN_INTERVAL_S = 1


def real_interval_seconds(clock_seconds: float, speed: float | None = None) -> int:
    """The real-time sensor interval for `clock_seconds` of clock time at `speed`."""
    speed = load_settings().clock_speed if speed is None else speed
    return max(MIN_INTERVAL_S, round(clock_seconds / speed))
