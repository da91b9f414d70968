"""SPF: the domain's `v=spf1` record, and whether it authorises its mailboxes' SMTP hosts.

The evaluation is pyspf's (RFC 7208: include, redirect, a, mx, ptr, exists, ip4, ip6, macros,
the limits of 10 DNS lookups and 2 void lookups). It runs once with an address from TEST-NET-1
(RFC 5737, never a real sender), which matches no real record and so walks the whole record:
a record that breaks a limit anywhere shows, whatever address would match first. Then once for
each address of each SMTP host, with the mailbox domain's postmaster as sender.
"""

from __future__ import annotations

import ipaddress
import re

import spf

from warmup_dagster.domains.model import SPF, Check, Status
from warmup_dagster.domains.resolver import Dns, DnsTemporaryError

# An address that no SPF record authorises: RFC 5737's documentation range.
NOBODY = "192.0.2.1"
_SPF = re.compile(r"^v=spf1(\s|$)", re.IGNORECASE)
_PROVIDERS = (
    "include your mail provider's SPF domain (Google Workspace: include:_spf.google.com,"
    " Microsoft 365: include:spf.protection.outlook.com)"
)


def records(dns: Dns, domain: str) -> list[str]:
    """The domain's SPF records (RFC 7208 4.5: exactly one may exist)."""
    return [t for t in dns.txt(domain) if _SPF.match(t.strip())]


def _evaluate(dns: Dns, domain: str, address: str, helo: str) -> tuple[str, str]:
    query = spf.query(i=address, s=f"postmaster@{domain}", h=helo, timeout=dns.timeout)
    with dns.evaluating():
        result, _code, explanation = query.check()
    return result, explanation


def host_addresses(dns: Dns, host: str) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        return dns.addresses(host)


def check_spf(dns: Dns, domain: str, smtp_hosts: tuple[str, ...]) -> Check:
    """The SPF check of `domain` for mail sent through `smtp_hosts`."""
    try:
        found = records(dns, domain)
    except DnsTemporaryError as exc:
        return Check(SPF, Status.WARN, f"could not be read: {exc}", "none: checked again later")
    if not found:
        return Check(
            SPF,
            Status.FAIL,
            "no SPF record",
            f"publish a TXT record at {domain}: v=spf1 include:<provider> -all; {_PROVIDERS}",
        )
    data: dict = {"record": found[0], "hosts": {}}
    if len(found) > 1:
        return Check(
            SPF,
            Status.FAIL,
            f"{len(found)} SPF records (a domain may have one, so none counts)",
            "merge them into one v=spf1 record",
            {**data, "records": found},
        )
    whole, explanation = _evaluate(dns, domain, NOBODY, domain)
    if whole == "permerror":
        fix = (
            "remove or flatten includes: SPF allows at most 10 DNS lookups (include, a, mx,"
            " ptr, exists, redirect) and 2 that find nothing"
            if "lookup" in explanation.lower()
            else f"correct the record: {explanation}"
        )
        return Check(SPF, Status.FAIL, f"invalid record: {explanation}", fix, data)
    if whole == "temperror":
        return Check(SPF, Status.WARN, f"could not be evaluated: {explanation}", "", data)
    if not smtp_hosts:
        return Check(SPF, Status.PASS, "valid record (no SMTP host to check against)", "", data)
    refused, unknown, errors = [], [], []
    for host in smtp_hosts:
        try:
            addresses = host_addresses(dns, host)
        except DnsTemporaryError as exc:
            errors.append(str(exc))
            continue
        if not addresses:
            unknown.append(host)
        for address in addresses:
            result, explanation = _evaluate(dns, domain, address, host)
            data["hosts"][f"{host} ({address})"] = result
            if result == "temperror":
                errors.append(f"{host} ({address}): {explanation}")
            elif result != "pass":
                refused.append((host, address, result))
    if refused:
        named = ", ".join(f"{h} ({a}): {r}" for h, a, r in refused)
        mechanisms = " ".join(f"ip{ipaddress.ip_address(a).version}:{a}" for _, a, _ in refused[:3])
        return Check(
            SPF,
            Status.FAIL if any(r in ("fail", "softfail") for _, _, r in refused) else Status.WARN,
            f"does not authorise {named}",
            f"add the SMTP server to the record: {_PROVIDERS}, or {mechanisms}",
            data,
        )
    if errors:
        return Check(SPF, Status.WARN, f"could not be evaluated: {errors[0]}", "", data)
    if unknown:
        return Check(
            SPF,
            Status.WARN,
            f"valid record, but SMTP host {', '.join(unknown)} has no address to check",
            "check the mailboxes' SMTP host names",
            data,
        )
    hosts = ", ".join(sorted(data["hosts"]))
    return Check(SPF, Status.PASS, f"authorises {hosts}", "", data)
