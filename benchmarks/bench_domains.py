"""Benchmark: the domain checks of a pool of 10,000 sending domains.

    python -m benchmarks.bench_domains [--domains 10000 --concurrency 8 32]

A local authoritative DNS server (`ZoneServer`, dnslib) runs in a process of its own, serving
`--domains` domains in order (MX, SPF by include of one shared provider record, a DKIM key at
`google`, DMARC p=reject with rua) and a blocklist zone; every mailbox sends through one
shared SMTP host. The checks (`Checker.check_all`, as the `domain_health` asset runs them) are
timed with perf_counter for each `--concurrency`, each with a fresh resolver cache. The
figures are the checks' and the local server's together: a real resolver answers cached names
faster than dnslib (pure Python), uncached ones slower.
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from benchmarks.common import machine, peak_rss_mb
from warmup_dagster.clock import RealClock
from warmup_dagster.domains.checker import Checker
from warmup_dagster.domains.model import Status, Target
from warmup_dagster.settings import load_settings
from warmup_dagster.testing.dns_server import ZoneServer

SMTP = "smtp.provider.test"


def _key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def _records(domains: int) -> str:
    key = _key()
    lines = [
        "$TTL 300",
        f"{SMTP}. A 192.0.2.10",
        "mx.provider.test. A 192.0.2.25",
        '_spf.provider.test. TXT "v=spf1 ip4:192.0.2.0/24 -all"',
        "d1.bench.test.bl.test. A 127.0.0.2",
    ]
    for i in range(domains):
        d = f"d{i}.bench.test"
        lines += [
            f"{d}. MX 10 mx.provider.test.",
            f'{d}. TXT "v=spf1 include:_spf.provider.test -all"',
            f'google._domainkey.{d}. TXT "v=DKIM1; k=rsa; p={key}"',
            f'_dmarc.{d}. TXT "v=DMARC1; p=reject; rua=mailto:d@{d}"',
        ]
    return "\n".join(lines)


def _serve(domains: int, ready: multiprocessing.Queue, done: multiprocessing.Event) -> None:
    with ZoneServer(_records(domains), zones=("bench.test", "provider.test", "bl.test")) as s:
        ready.put(s.nameserver)
        done.wait()
        ready.put(s.resolver.questions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    args = parser.parse_args()
    ready: multiprocessing.Queue = multiprocessing.Queue()
    done = multiprocessing.Event()
    started = time.perf_counter()
    server = multiprocessing.Process(target=_serve, args=(args.domains, ready, done))
    server.start()
    nameserver = ready.get(timeout=600)
    print(f"{machine()}; DNS server up with {args.domains:,} domains in"
          f" {time.perf_counter() - started:.1f} s")  # fmt: skip
    targets = [Target(f"d{i}.bench.test", (SMTP,)) for i in range(args.domains)]
    try:
        for concurrency in args.concurrency:
            settings = load_settings(
                {
                    "WARMUP_DNS_NAMESERVERS": nameserver,
                    "WARMUP_DNSBL_ZONES": "bl.test",
                    "WARMUP_DNS_CONCURRENCY": str(concurrency),
                    "WARMUP_DNS_TIMEOUT_SECONDS": "30",
                }
            )
            checker = Checker(settings, RealClock())
            start = time.perf_counter()
            reports = list(checker.check_all(targets))
            took = time.perf_counter() - start
            statuses = {s: sum(r.status == s for r in reports) for s in Status}
            print(
                f"concurrency {concurrency}: {len(reports):,} domains in {took:.1f} s"
                f" ({len(reports) / took:,.0f} domains/s);"
                f" pass {statuses[Status.PASS]:,}, warn {statuses[Status.WARN]:,},"
                f" fail {statuses[Status.FAIL]:,}; peak RSS {peak_rss_mb():.0f} MB"
            )
    finally:
        done.set()
        print(f"questions answered by the server: {ready.get(timeout=60):,}")
        server.join(timeout=60)


if __name__ == "__main__":
    main()
