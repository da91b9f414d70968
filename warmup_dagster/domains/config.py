"""The domain checks' settings as values: nameservers, blocklist zones, DKIM selectors.

Each parser takes the text of a `WARMUP_*` variable and raises ValueError with a message that
follows the variable's name and value in the settings' error.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

DNS_PORT = 53
# A host name or zone: dot-separated labels of letters, digits and hyphens (and underscores,
# which DNS allows outside host names).
_LABEL = r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)"
_NAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*\.?$")
ZONE_KINDS = ("domain", "ip")
# What `WARMUP_DOMAIN_GATE` may say: flag failing domains only, or hold them out of planning.
FLAG = "flag"
HOLD = "hold"
GATE_MODES = (FLAG, HOLD)


@dataclass(frozen=True)
class Nameserver:
    host: str  # an IP address
    port: int = DNS_PORT


@dataclass(frozen=True)
class Zone:
    """A DNS blocklist zone and what is looked up in it: domains, addresses, or both."""

    name: str
    kinds: tuple[str, ...] = ZONE_KINDS


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def nameservers(text: str) -> list[Nameserver]:
    """`127.0.0.1:5353, [::1]:53, 9.9.9.9` (port 53 when none is given).

    Raises:
        ValueError: an entry that is not an IP address with an optional port.
    """
    found = []
    for item in _items(text):
        host, port = item, str(DNS_PORT)
        if item.startswith("["):  # [v6]:port
            host, _, rest = item[1:].partition("]")
            port = rest.removeprefix(":") or port
        elif item.count(":") == 1:  # v4:port
            host, port = item.split(":")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(
                f"has {item!r}, which is not an IP address with an optional port"
                " (for example 127.0.0.1:5353 or [::1]:53)"
            ) from None
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"has {item!r}, whose port is not 1-65535")
        found.append(Nameserver(host, int(port)))
    return found


def _name(value: str, item: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"has {item!r}, which is not a DNS name")
    return value.rstrip(".").lower()


def zones(text: str) -> list[Zone]:
    """`zen.spamhaus.org, domain:dbl.spamhaus.org, ip:bl.example.net`: a zone, optionally
    prefixed by what is looked up in it (`domain:` or `ip:`; no prefix: both).

    Raises:
        ValueError: an entry that is not a DNS name, or an unknown prefix.
    """
    found = []
    for item in _items(text):
        kind, sep, name = item.partition(":")
        if not sep:
            found.append(Zone(_name(item, item)))
            continue
        if kind.strip().lower() not in ZONE_KINDS:
            raise ValueError(f"has {item!r}: the prefix must be domain: or ip:")
        found.append(Zone(_name(name.strip(), item), (kind.strip().lower(),)))
    return found


def selectors(text: str) -> dict[str, tuple[str, ...]]:
    """`example.com:google|s1, other.org:mail`: the DKIM selectors each domain signs with.

    Raises:
        ValueError: an entry without `domain:selector`, or a name that is not a DNS name.
    """
    found: dict[str, tuple[str, ...]] = {}
    for item in _items(text):
        domain, sep, names = item.partition(":")
        chosen = tuple(_name(s.strip(), item) for s in names.split("|") if s.strip())
        if not sep or not chosen:
            raise ValueError(f"has {item!r}, which is not domain:selector[|selector...]")
        found[_name(domain.strip(), item)] = chosen
    return found


def gate_mode(value: str) -> str:
    """`flag` or `hold`, in any case.

    Raises:
        ValueError: any other value.
    """
    mode = value.strip().lower()
    if mode not in GATE_MODES:
        raise ValueError("must be flag or hold")
    return mode
