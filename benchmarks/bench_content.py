"""Benchmark: composing mail and replies, the per-send cost of the words.

    python -m benchmarks.bench_content   (make bench-content)

Composes `--messages` new messages (random seeds, local times spread over a week in five
timezones, half with a display name) and as many replies to them, one after another in one
process, and reports messages per second for each (`perf_counter` around each loop). The
sender composes once per send inside its event loop, so this is what the words cost a sender
run; the goal is a small share of a second at the 100 sends a second the default global cap
allows. Run it under `flock -x /tmp/warmup-bench.lock` so no test shares the cores.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from benchmarks.common import machine
from warmup_dagster.core.content import compose, compose_reply

ZONES = ("Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Tokyo", "UTC")
START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    rng = random.Random(1)
    zones = [ZoneInfo(z) for z in ZONES]
    jobs = [
        (
            rng.getrandbits(63),
            f"user{n}.smith@acme{n % 50}.test",
            f"peer{n}.jones@globex{n % 70}.test",
            (START + timedelta(seconds=rng.randrange(7 * 86400))).astimezone(rng.choice(zones)),
            "Zoë Müller" if n % 2 else None,
        )
        for n in range(args.messages)
    ]
    started = time.perf_counter()
    composed = [compose(seed, a, b, local, name) for seed, a, b, local, name in jobs]
    compose_s = time.perf_counter() - started
    started = time.perf_counter()
    for (seed, a, b, local, _), (subject, body) in zip(jobs, composed, strict=True):
        compose_reply(
            seed ^ 1, subject, body, b, a, local + timedelta(hours=3), original_date=local
        )
    reply_s = time.perf_counter() - started
    n = args.messages
    print(f"machine: {machine()}")
    print(f"compose: {n:,} messages in {compose_s:.2f} s = {n / compose_s:,.0f}/s")
    print(f"compose_reply: {n:,} replies in {reply_s:.2f} s = {n / reply_s:,.0f}/s")


if __name__ == "__main__":
    main()
