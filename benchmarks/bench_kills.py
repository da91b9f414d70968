"""Benchmark: sender runs SIGKILLed at random moments, with the look over IMAP on and off.

    python -m benchmarks.bench_kills [--kills 20] [--boxes 8] [--per-box 10]   (make bench-kills)

The long version of `warmup_dagster_tests/sending/test_killed_runs.py`, on a scratch
PostgreSQL database each time: a pool of `--boxes` mailboxes with `--per-box` jobs each, an
SMTP server that delivers into Dovecot (a third to Junk), and `--kills` sender runs (child
processes, `testing.sender_process`) each SIGKILLed a random moment (up to `--within` real
seconds) after it is ready, then one run to its end. Once with `WARMUP_RECLAIM_IMAP_CHECK`
true, once false, the same seeds. Per setting: the runs killed, the attempts abandoned
(possibly delivered), the reclaimed jobs found over IMAP and not sent again, the second copies
the server received, and the jobs left without an outcome.

A second copy needs a kill in the moment between the server's 250 and the outcome's write
(the write is started at once, `sending.upkeep`), so expect few or none even with the look
off; the look closes that moment for recipients in the pool.
"""

from __future__ import annotations

import argparse
import logging
import random
import tempfile
from datetime import datetime
from pathlib import Path

from benchmarks.common import machine, scratch_postgres
from warmup_dagster.clock import RealClock
from warmup_dagster.crypto import Cipher
from warmup_dagster.db import migrate
from warmup_dagster.db.engine import make_engine
from warmup_dagster.testing.certificates import self_signed_cert
from warmup_dagster.testing.imap_server import DeliveringSmtp, DovecotServer
from warmup_dagster.testing.killed_runs import Report, kill_runs, seed

SECRET = "bench-kills-secret-not-for-production"
SPEED = 60
START = "2026-03-02T09:00:00+00:00"  # a Monday, inside the 06-22 UTC window


def values(cert: Path, look: bool) -> dict[str, str]:
    return {
        "WARMUP_SECRET_KEY": SECRET,
        "WARMUP_SMTP_CA_FILE": str(cert),
        "WARMUP_IMAP_CA_FILE": str(cert),
        "WARMUP_SMTP_TIMEOUT_SECONDS": str(2 * SPEED),
        "WARMUP_IMAP_TIMEOUT_SECONDS": str(2 * SPEED),
        "WARMUP_ENGAGE_LEASE_SECONDS": str(10 * SPEED),
        "WARMUP_SEND_LEASE_SECONDS": str(5 * SPEED),
        "WARMUP_SEND_RETRY_BASE_SECONDS": "60",
        "WARMUP_SEND_MAX_ATTEMPTS": "100",
        "WARMUP_SENDER_RUN_MAX_SECONDS": str(30 * SPEED),
        "WARMUP_SCHEDULER_INTERVAL_MS": "1000",
        "WARMUP_SAME_MAILBOX_DELAY_MIN": "0.05",
        "WARMUP_SAME_MAILBOX_DELAY_MAX": "0.1",
        "WARMUP_USER_SENDS_PER_MINUTE": "1000",
        "WARMUP_USER_SENDS_PER_HOUR": "100000",
        "WARMUP_GLOBAL_SENDS_PER_MINUTE": "1000",
        "WARMUP_GLOBAL_SENDS_PER_HOUR": "100000",
        "WARMUP_ARRIVAL_MARGIN_SECONDS": "0",
        "WARMUP_RECLAIM_IMAP_CHECK": "true" if look else "false",
    }


def one(args: argparse.Namespace, cert: tuple[Path, Path], look: bool) -> Report:
    start = datetime.fromisoformat(START)
    cipher = Cipher(SECRET)
    with scratch_postgres("bench_kills") as url:
        migrate.upgrade(url)
        engine = make_engine(url)
        dovecot = DovecotServer(cert=cert[0], key=cert[1])
        dovecot.start()
        try:
            with DeliveringSmtp(
                dovecot,
                junk_share=0.3,
                users={},
                tls="starttls",
                cert=cert[0],
                key=cert[1],
                data_delay=args.data_delay,
            ) as smtp:
                boxes, per_box = args.boxes, args.per_box
                seed(engine, cipher, smtp, dovecot, boxes=boxes, per_box=per_box, at=start)
                return kill_runs(
                    engine,
                    url,
                    values(cert[0], look),
                    SECRET,
                    smtp,
                    start=start,
                    speed=SPEED,
                    kills=args.kills,
                    kill_within_s=args.within,
                    rng=random.Random(args.seed),
                )
        finally:
            dovecot.stop()
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--boxes", type=int, default=8)
    parser.add_argument("--per-box", type=int, default=10)
    parser.add_argument("--within", type=float, default=1.0, help="real seconds")
    parser.add_argument("--data-delay", type=float, default=0.05, help="real seconds")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    # aiosmtpd logs every session a kill cut short, with its traceback: the figures drown.
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    print(f"machine: {machine()}; date: {RealClock().now():%Y-%m-%d}")
    print(
        f"{args.kills} kills within {args.within} s of each run's start, then one run to its "
        f"end; {args.boxes} mailboxes x {args.per_box} jobs; DATA reply after {args.data_delay} s"
    )
    with tempfile.TemporaryDirectory() as folder:
        cert = self_signed_cert(Path(folder))
        for look in (True, False):
            r = one(args, cert, look)
            print(
                f"look {'on ' if look else 'off'}: runs {r.runs}, killed {r.killed}, "
                f"abandoned (possibly delivered) {r.possibly_delivered}, found over IMAP "
                f"{r.found_delivered}, second copies {r.second_copies}, "
                f"messages {len(r.copies)}/{r.jobs}, without an outcome {len(r.unfinished)}, "
                f"last run exit {r.last_exit}",
                flush=True,
            )


if __name__ == "__main__":
    main()
