"""MX, DKIM and DMARC: what a domain publishes for receivers, read and judged.

DKIM keys and DMARC policies are tag lists (`k=v; k=v`, RFC 6376 3.2, RFC 7489 6.4), split
here; a DKIM key is loaded with `cryptography` to know it is one.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key
from publicsuffixlist import PublicSuffixList

from warmup_dagster.domains.model import DKIM, DMARC, MX, Check, Status
from warmup_dagster.domains.resolver import Dns, DnsTemporaryError

# Selectors tried where none are configured for a domain: those of the big providers and
# the usual defaults of mail servers and signing services.
USUAL_SELECTORS = ("google", "selector1", "selector2", "default", "k1", "s1", "s2", "dkim", "mail")
# MX hosts whose addresses are looked up: one answering is enough.
MX_HOSTS_TRIED = 3
MIN_RSA_BITS = 1024
POLICIES = ("none", "quarantine", "reject")


def tags(record: str) -> dict[str, str]:
    """A tag list as a mapping: `v=DKIM1; p=MIIB...` -> {"v": "DKIM1", "p": "MIIB..."}.

    Names are lower-cased, values stripped (folding whitespace inside a key removed).
    """
    found = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep and name.strip():
            found[name.strip().lower()] = (
                "".join(value.split()) if name.strip() == "p" else value.strip()
            )
    return found


def check_mx(dns: Dns, domain: str) -> Check:
    """MX: where replies to the domain's mailboxes go."""
    try:
        records = sorted(
            (r.preference, r.exchange.to_text(omit_final_dot=True)) for r in dns.query(domain, "MX")
        )
        if records and all(h in (".", "") for _, h in records):
            return Check(
                MX,
                Status.FAIL,
                "null MX (0 .): the domain accepts no mail, so replies cannot reach it",
                "replace the null MX with your mail provider's MX records",
            )
        data = {"mx": [f"{p} {h}" for p, h in records]}
        if not records:
            if dns.addresses(domain):
                return Check(
                    MX,
                    Status.WARN,
                    "no MX record: mail falls back to the domain's own address",
                    "publish your mail provider's MX records",
                    data,
                )
            return Check(
                MX,
                Status.FAIL,
                "no MX record and no address: the domain cannot receive mail",
                "publish your mail provider's MX records",
                data,
            )
        hosts = [h for _, h in records if h not in (".", "")]
        if not any(dns.addresses(h) for h in hosts[:MX_HOSTS_TRIED]):
            return Check(
                MX,
                Status.FAIL,
                f"MX {', '.join(hosts[:MX_HOSTS_TRIED])} has no address",
                "point the MX records at your mail provider's servers",
                data,
            )
    except DnsTemporaryError as exc:
        return Check(MX, Status.WARN, f"could not be read: {exc}", "none: checked again later")
    shown = ", ".join(f"{h} ({p})" for p, h in records)
    return Check(MX, Status.PASS, shown, "", data)


def _key_problem(values: dict[str, str]) -> str | None:
    """What is wrong with a DKIM key record, or None for a usable key."""
    if values.get("v", "DKIM1") != "DKIM1":
        return f"v={values['v']} (must be DKIM1)"
    if "p" not in values:
        return "no p= (public key)"
    if not values["p"]:
        return "empty p=: the key is revoked"
    try:
        raw = base64.b64decode(values["p"], validate=True)
    except (binascii.Error, ValueError):
        return "p= is not base64"
    kind = values.get("k", "rsa").lower()
    if kind == "ed25519":
        return None if len(raw) == 32 else "p= is not a 32-byte ed25519 key"
    if kind != "rsa":
        return f"unknown key type k={kind}"
    try:
        key = load_der_public_key(raw)
    except ValueError:
        return "p= is not an RSA public key"
    if not isinstance(key, rsa.RSAPublicKey):
        return "p= is not an RSA public key"
    if key.key_size < MIN_RSA_BITS:
        return f"a {key.key_size}-bit RSA key (receivers ignore keys under {MIN_RSA_BITS} bits)"
    return None


def check_dkim(dns: Dns, domain: str, selectors: tuple[str, ...]) -> Check:
    """DKIM: a usable `v=DKIM1` key at one of `selectors` (configured), or the usual ones."""
    configured = bool(selectors)
    tried = selectors or USUAL_SELECTORS
    good, bad, errors = [], [], []
    for selector in tried:
        name = f"{selector}._domainkey.{domain}"
        try:
            found = dns.txt(name)
        except DnsTemporaryError as exc:
            errors.append(str(exc))
            break  # the next selectors would wait as long
        for record in found:
            values = tags(record)
            if "p" not in values and "v" not in values:
                continue  # some other TXT record
            problem = _key_problem(values)
            (bad if problem else good).append(f"{selector}: {problem}" if problem else selector)
    data = {"selectors": list(tried), "valid": good, "invalid": bad}
    if good:
        return Check(DKIM, Status.PASS, f"key at selector {', '.join(good)}", "", data)
    if bad:
        return Check(
            DKIM,
            Status.FAIL,
            f"invalid key at selector {'; '.join(bad)}",
            "publish the key your mail provider gives you (its DKIM settings) at that selector",
            data,
        )
    if errors:
        return Check(DKIM, Status.WARN, f"could not be read: {errors[0]}", "", data)
    where = ", ".join(f"{s}._domainkey" for s in tried)
    if configured:
        return Check(
            DKIM,
            Status.FAIL,
            f"no DKIM key at {where}",
            "turn on DKIM signing at your mail provider and publish its key at that selector",
            data,
        )
    return Check(
        DKIM,
        Status.WARN,
        f"no DKIM key at the usual selectors ({', '.join(tried)})",
        "turn on DKIM signing at your mail provider; if you sign with another selector, add"
        f" {domain}:<selector> to WARMUP_DKIM_SELECTORS",
        data,
    )


@lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # the list shipped with the package: no download


def organizational_domain(domain: str) -> str:
    """The registered domain above `domain` (RFC 7489 3.2), by the Public Suffix List."""
    return _suffixes().privatesuffix(domain) or domain


def _dmarc_records(dns: Dns, domain: str) -> list[str]:
    return [t for t in dns.txt(f"_dmarc.{domain}") if t.strip().lower().startswith("v=dmarc1")]


def check_dmarc(dns: Dns, domain: str) -> Check:
    """DMARC: the policy at `_dmarc.<domain>` (or the organizational domain's), its
    alignment modes and its aggregate reports."""
    publish = (
        f"publish a TXT record at _dmarc.{domain}: v=DMARC1; p=none; rua=mailto:dmarc@{domain}"
        " (then p=quarantine once the reports show your mail passes)"
    )
    try:
        found, at = _dmarc_records(dns, domain), domain
        org = organizational_domain(domain)
        if not found and org != domain:
            found, at = _dmarc_records(dns, org), org
    except DnsTemporaryError as exc:
        return Check(DMARC, Status.WARN, f"could not be read: {exc}", "none: checked again later")
    if not found:
        return Check(DMARC, Status.FAIL, "no DMARC record", publish)
    if len(found) > 1:
        return Check(
            DMARC,
            Status.FAIL,
            f"{len(found)} DMARC records at _dmarc.{at} (receivers then apply none)",
            "keep one v=DMARC1 record",
            {"records": found},
        )
    values = tags(found[0])
    # a subdomain without a record of its own gets the organizational domain's `sp=`
    policy = (values.get("sp") if at != domain else None) or values.get("p", "")
    data = {"record": found[0], "at": f"_dmarc.{at}", "policy": policy}
    if policy.lower() not in POLICIES:
        return Check(
            DMARC,
            Status.FAIL,
            f"invalid record at _dmarc.{at}: p={policy or '(missing)'}",
            f"set p= to none, quarantine or reject; {publish}",
            data,
        )
    alignment = {}
    for tag, label in (("adkim", "DKIM"), ("aspf", "SPF")):
        mode = values.get(tag, "r").lower()
        if mode not in ("r", "s"):
            return Check(
                DMARC,
                Status.FAIL,
                f"invalid {tag}={mode} at _dmarc.{at}",
                f"set {tag}=r (relaxed) or s (strict), or leave it out",
                data,
            )
        alignment[label] = "strict" if mode == "s" else "relaxed"
    rua = values.get("rua", "")
    data.update(alignment=alignment, rua=rua, pct=values.get("pct", "100"))
    shown = (
        f"p={policy.lower()} at _dmarc.{at}; alignment DKIM {alignment['DKIM']}, SPF"
        f" {alignment['SPF']}; " + (f"reports to {rua}" if rua else "no rua reports")
    )
    if policy.lower() == "none":
        return Check(
            DMARC,
            Status.WARN,
            shown,
            "p=none only monitors: move to p=quarantine, then p=reject, once the rua reports"
            " show all your mail passing SPF or DKIM",
            data,
        )
    if not rua:
        return Check(
            DMARC,
            Status.WARN,
            shown,
            f"add rua=mailto:dmarc@{domain} to receive the aggregate reports",
            data,
        )
    return Check(DMARC, Status.PASS, shown, "", data)
