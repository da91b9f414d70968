"""DNS blocklists (RFC 5782): the domain, and the addresses of its SMTP hosts, in each zone.

A domain is looked up as `<domain>.<zone>`, an IPv4 address as its octets reversed
(`4.3.2.1.<zone>` for 1.2.3.4), an IPv6 one as its 32 nibbles reversed. A listing is an A
record in 127.0.0.0/8; 127.255.255.0/24 is what Spamhaus answers to queries it refuses (from
public resolvers, or too many), which is no listing but a sign the check cannot see.
Private and loopback addresses are never listed and not looked up.
"""

from __future__ import annotations

import ipaddress

from warmup_dagster.domains.config import Zone
from warmup_dagster.domains.model import BLOCKLISTS, Check, Status
from warmup_dagster.domains.resolver import Dns, DnsTemporaryError
from warmup_dagster.domains.spf_policy import host_addresses

LISTED = ipaddress.ip_network("127.0.0.0/8")
REFUSED = ipaddress.ip_network("127.255.255.0/24")


def _reversed_name(address: str) -> str:
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return ".".join(reversed(str(ip).split(".")))
    return ".".join(reversed(ip.exploded.replace(":", "")))


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified or _site_local(ip))


def _site_local(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    private = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
    return any(
        ip in ipaddress.ip_network(n)
        for n in private
        if ipaddress.ip_network(n).version == ip.version
    )


def lookups(zones: list[Zone], domain: str, addresses: list[str]) -> list[tuple[str, str, str]]:
    """(zone, what is looked up, the name to query) for every zone and subject."""
    found = []
    for zone in zones:
        if "domain" in zone.kinds:
            found.append((zone.name, domain, f"{domain}.{zone.name}"))
        if "ip" in zone.kinds:
            found += [
                (zone.name, a, f"{_reversed_name(a)}.{zone.name}") for a in addresses if _public(a)
            ]
    return found


def check_blocklists(
    dns: Dns, domain: str, smtp_hosts: tuple[str, ...], zones: list[Zone]
) -> Check:
    """Listings of the domain and its SMTP hosts' addresses on `zones`."""
    if not zones:
        return Check(
            BLOCKLISTS, Status.SKIP, "not checked: no zones configured (WARMUP_DNSBL_ZONES)", "",
            {"listed": []},
        )  # fmt: skip
    listed, refused, errors = [], [], []
    addresses: list[str] = []
    for host in smtp_hosts:
        try:
            addresses += host_addresses(dns, host)
        except DnsTemporaryError as exc:
            errors.append(str(exc))
    for zone, subject, name in lookups(zones, domain, sorted(set(addresses))):
        try:
            answers = [ipaddress.ip_address(r.address) for r in dns.query(name, "A")]
        except DnsTemporaryError as exc:
            errors.append(str(exc))
            continue
        if any(a in REFUSED for a in answers):
            refused.append(zone)
            continue
        codes = [str(a) for a in answers if a in LISTED]
        if codes:
            try:
                reason = " ".join(dns.txt(name))
            except DnsTemporaryError:
                reason = ""
            listed.append({"zone": zone, "subject": subject, "code": codes[0], "reason": reason})
    data = {"listed": listed, "zones": [z.name for z in zones], "addresses": sorted(set(addresses))}
    if listed:
        named = ", ".join(f"{x['subject']} on {x['zone']} ({x['code']})" for x in listed)
        return Check(
            BLOCKLISTS,
            Status.FAIL,
            f"listed: {named}",
            "find why at each blocklist's lookup page, stop what caused it, then ask for removal;"
            " its mailboxes are throttled while listed",
            data,
        )
    if refused or errors:
        what = f"{', '.join(sorted(set(refused)))} refused the query" if refused else errors[0]
        return Check(
            BLOCKLISTS,
            Status.WARN,
            f"could not be checked: {what}",
            "query the blocklists through a resolver of your own (WARMUP_DNS_NAMESERVERS):"
            " some refuse public resolvers"
            if refused
            else "",
            data,
        )
    checked = len(zones)
    return Check(BLOCKLISTS, Status.PASS, f"not listed on {checked} zone(s)", "", data)
