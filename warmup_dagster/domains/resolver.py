"""dnspython as the checks use it: answers or nothing, and temporary failures raised.

One `Dns` serves every check of a run from many threads (dnspython's resolver and its
`LRUCache` are thread-safe), so a provider's SPF include or a shared SMTP host is looked up
once per run, not once per domain. Its timeout is clock time, like the SMTP timeout: at
`WARMUP_CLOCK_SPEED` S it lasts N/S real seconds.

pyspf (the SPF evaluation) asks DNS through its module's `DNSLookup` hook, which its own tests
replace too; `Dns.evaluating()` points that hook at this resolver for the calling thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import spf

from warmup_dagster.clock import Clock
from warmup_dagster.domains import config
from warmup_dagster.settings import Settings

# Answers kept per run: every domain's few names, and the names they share.
CACHE_SIZE = 200_000


class DnsTemporaryError(Exception):
    """No answer: a timeout, or every server failed (SERVFAIL, REFUSED). Worth asking again."""


class Dns:
    """Lookups through dnspython's resolver.

    Args:
        nameservers: Where to ask; empty: the system's resolvers (`/etc/resolv.conf`).
        timeout: Real seconds a lookup may take in all, retries included.
    """

    def __init__(self, nameservers: Sequence[config.Nameserver], timeout: float) -> None:
        resolver = dns.resolver.Resolver(configure=not nameservers)
        if nameservers:
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(ns.host, ns.port) for ns in nameservers
            ]
        resolver.timeout = resolver.lifetime = timeout
        resolver.cache = dns.resolver.LRUCache(CACHE_SIZE)
        self.resolver = resolver
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock) -> Dns:
        return cls(
            config.nameservers(settings.dns_nameservers),
            clock.real_seconds(settings.dns_timeout_seconds),
        )

    def query(self, name: str, rdtype: str) -> list[Any]:
        """The records of `rdtype` at `name`; empty when the name or the type does not exist.

        Raises:
            DnsTemporaryError: a timeout, or no server could answer.
        """
        try:
            return list(self.resolver.resolve(name, rdtype, search=False))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.name.NameTooLong):
            return []
        except dns.resolver.YXDOMAIN:
            return []
        except dns.exception.Timeout:
            raise DnsTemporaryError(f"{name} {rdtype}: no answer in time") from None
        except dns.resolver.NoNameservers as exc:
            raise DnsTemporaryError(f"{name} {rdtype}: {_first_error(exc)}") from None
        except dns.exception.SyntaxError:  # not a usable name: nothing is there
            return []

    def txt(self, name: str) -> list[str]:
        """Each TXT record at `name`, its strings joined (RFC 7208 3.3)."""
        return [
            b"".join(r.strings).decode("utf-8", errors="replace") for r in self.query(name, "TXT")
        ]

    def addresses(self, host: str) -> list[str]:
        """The IPv4 and IPv6 addresses of `host`."""
        return [r.address for t in ("A", "AAAA") for r in self.query(host, t)]

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """pyspf's lookups go to this resolver in the calling thread while the block runs."""
        before = getattr(_current, "dns", None)
        _current.dns = self
        try:
            yield
        finally:
            _current.dns = before

    def spf_lookup(self, name: str, qtype: str) -> list[tuple[tuple[str, str], Any]]:
        """One lookup in pyspf's form: `((name, qtype), value)` per record."""
        try:
            records = self.query(name, qtype)
        except DnsTemporaryError as exc:
            raise spf.TempError(f"DNS {exc}") from None
        found = []
        for r in records:
            if qtype in ("A", "AAAA"):
                value: Any = r.address
            elif qtype == "MX":
                value = (r.preference, r.exchange)
            elif qtype == "PTR":
                value = r.target.to_text(True)
            elif qtype in ("TXT", "SPF"):
                value = r.strings
            else:
                continue
            found.append(((name, qtype), value))
        return found


def _first_error(exc: dns.resolver.NoNameservers) -> str:
    errors = exc.kwargs.get("errors") or []
    return str(errors[0][3]) if errors else "no server answered"


_current = threading.local()
_pyspf_default = spf.DNSLookup


def _pyspf_hook(name: str, qtype: str, strict: bool = True, timeout: float | None = None) -> list:
    """pyspf's `DNSLookup`: this thread's `Dns` inside `Dns.evaluating()`, else pyspf's own."""
    current: Dns | None = getattr(_current, "dns", None)
    if current is None:
        return _pyspf_default(name, qtype, strict, timeout)
    return current.spf_lookup(name, qtype)


spf.DNSLookup = _pyspf_hook
