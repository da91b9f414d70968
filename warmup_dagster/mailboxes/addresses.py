"""Host names and email addresses from the mailbox CSV, in the one form they are stored in.

Internationalised domains are stored as IDNA (`xn--`, IDNA 2008 with UTS 46 mapping), so
`Bücher.example` and `xn--bcher-kva.example` are one domain; an IP-literal host must be a
real IPv4 or IPv6 address and is stored in its canonical form.
"""

from __future__ import annotations

import ipaddress
import re

import idna

_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A top-level domain: letters, or an IDNA one (`xn--p1ai`, .рф).
_TLD = r"(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})"
EMAIL_RE = re.compile(rf"^{_LOCAL}@(?:{_LABEL}\.)+{_TLD}$")
HOST_RE = re.compile(rf"^(?:{_LABEL})(?:\.{_LABEL})*\.?$")


def ascii_domain(domain: str) -> str | None:
    """`domain` lowercased, its non-ASCII labels in IDNA form; None when it is no domain."""
    if domain.isascii() and "xn--" not in domain.lower():
        return domain.lower()
    try:
        return idna.encode(domain.rstrip("."), uts46=True).decode("ascii") + (
            "." if domain.endswith(".") else ""
        )
    except idna.IDNAError:
        return None


def normal_host(value: str) -> tuple[str, str | None]:
    """(the host as stored, what is wrong with it or None).

    A host whose last label is all digits is an IPv4 address or nothing (`999.1.1.1` and
    `1.2.3` are refused, not looked up as names); one with a colon is an IPv6 address, with or
    without brackets.
    """
    if ":" in value:
        try:
            return str(ipaddress.IPv6Address(value.removeprefix("[").removesuffix("]"))), None
        except ValueError:
            return value, f"{value!r} is not an IPv6 address"
    if value.rstrip(".").rsplit(".", 1)[-1].isdigit():
        try:
            return str(ipaddress.IPv4Address(value.rstrip("."))), None
        except ValueError:
            return value, f"{value!r} is not an IPv4 address"
    host = ascii_domain(value)
    if host is None or not HOST_RE.match(host):
        return value, f"{value!r} is not a host name"
    return host, None


def normal_email(value: str) -> tuple[str, str | None]:
    """(the address as stored: lowercased, its domain in IDNA form; what is wrong or None)."""
    local, at, domain = value.rpartition("@")
    ascii_ = ascii_domain(domain) if at else None
    address = f"{local}@{ascii_}".lower() if ascii_ is not None else value.lower()
    if ascii_ is None or not EMAIL_RE.match(address):
        return address, f"{value!r} is not an email address"
    return address, None
