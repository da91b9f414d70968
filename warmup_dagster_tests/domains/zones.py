"""The zones the domain tests serve: a good domain and one broken in each way that matters.

Every name is under `.test` (RFC 2606) and every address in the documentation ranges
(RFC 5737), so nothing here could reach a real server.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from warmup_dagster.testing.dns_server import ZoneServer

SMTP = "smtp.good.test"  # 192.0.2.10, authorised by good.test's SPF
LISTED_SMTP = "smtp.iplisted.test"  # 192.0.2.66, listed by address on bl.test
BLOCKLIST = "bl.test"
ZONES = (
    "good.test", "nomx.test", "badspf.test", "loops.test", "listed.test", "iplisted.test",
    "sub.test", "slow.test", BLOCKLIST,
)  # fmt: skip
SLOW = "slow.test"


def _dkim_key(bits: int = 2048) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def _txt(text: str) -> str:
    """A TXT record's data: strings of at most 255 characters (RFC 1035)."""
    return " ".join(f'"{text[i : i + 255]}"' for i in range(0, len(text), 255))


def records() -> str:
    key = _dkim_key()
    includes = " ".join(f"include:n{i}.loops.test" for i in range(1, 12))
    lines = [
        "$TTL 60",
        # good.test: everything in order
        "good.test. MX 10 mx.good.test.",
        "mx.good.test. A 192.0.2.25",
        "smtp.good.test. A 192.0.2.10",
        'good.test. TXT "v=spf1 ip4:192.0.2.10 -all"',
        'good.test. TXT "google-site-verification=abc"',
        f"s1._domainkey.good.test. TXT {_txt(f'v=DKIM1; k=rsa; p={key}')}",
        'good.test._dmarc.good.test. TXT "not this one"',
        '_dmarc.good.test. TXT "v=DMARC1; p=reject; adkim=s; rua=mailto:dmarc@good.test"',
        # nomx.test: no MX and no address; SPF by include; no DKIM key; DMARC p=none
        'nomx.test. TXT "v=spf1 include:good.test -all"',
        '_dmarc.nomx.test. TXT "v=DMARC1; p=none; rua=mailto:d@nomx.test"',
        # badspf.test: SPF that does not authorise the host, an invalid DKIM key, no DMARC
        "badspf.test. MX 10 mx.good.test.",
        'badspf.test. TXT "v=spf1 ip4:198.51.100.0/24 -all"',
        'google._domainkey.badspf.test. TXT "v=DKIM1; k=rsa; p=bm90IGEga2V5"',
        # loops.test: an SPF record of 11 includes (RFC 7208 allows 10 lookups); no rua
        "loops.test. MX 10 mx.good.test.",
        f"loops.test. TXT {_txt(f'v=spf1 {includes} ip4:192.0.2.10 -all')}",
        *(f'n{i}.loops.test. TXT "v=spf1 ip4:203.0.113.{i} -all"' for i in range(1, 12)),
        f"default._domainkey.loops.test. TXT {_txt(f'v=DKIM1; p={key}')}",
        '_dmarc.loops.test. TXT "v=DMARC1; p=quarantine"',
        # listed.test: in order, but the blocklist lists the domain
        "listed.test. MX 10 mx.good.test.",
        'listed.test. TXT "v=spf1 include:good.test -all"',
        f"s1._domainkey.listed.test. TXT {_txt(f'v=DKIM1; p={key}')}",
        '_dmarc.listed.test. TXT "v=DMARC1; p=reject; rua=mailto:d@listed.test"',
        # iplisted.test: in order, but its SMTP host's address is listed
        "iplisted.test. MX 10 mx.good.test.",
        "smtp.iplisted.test. A 192.0.2.66",
        'iplisted.test. TXT "v=spf1 a:smtp.iplisted.test -all"',
        f"selector1._domainkey.iplisted.test. TXT {_txt(f'v=DKIM1; p={key}')}",
        '_dmarc.iplisted.test. TXT "v=DMARC1; p=reject; rua=mailto:d@iplisted.test"',
        # mail.sub.test: a subdomain under sub.test's DMARC policy (sp=)
        "mail.sub.test. MX 10 mx.good.test.",
        'mail.sub.test. TXT "v=spf1 ip4:192.0.2.10 -all"',
        f"k1._domainkey.mail.sub.test. TXT {_txt(f'v=DKIM1; p={key}')}",
        '_dmarc.sub.test. TXT "v=DMARC1; p=none; sp=reject; rua=mailto:d@sub.test"',
        # the blocklist: listed.test by name, 192.0.2.66 by address
        "listed.test.bl.test. A 127.0.0.2",
        'listed.test.bl.test. TXT "listed for testing"',
        "66.2.0.192.bl.test. A 127.0.0.4",
    ]
    return "\n".join(lines)


def server() -> ZoneServer:
    return ZoneServer(records(), zones=ZONES, silent=(SLOW,))
