"""Each check against the local DNS server: a good domain, and one broken in each way."""

import pytest

from warmup_dagster.clock import FixedClock, RealClock
from warmup_dagster.domains import blocklists, config
from warmup_dagster.domains.checker import Checker
from warmup_dagster.domains.model import Status, Target
from warmup_dagster.domains.resolver import Dns
from warmup_dagster.settings import load_settings
from warmup_dagster_tests.conftest import MONDAY_5AM
from warmup_dagster_tests.domains import zones


@pytest.fixture
def checker(dns_env):
    return Checker(load_settings(dns_env), RealClock())


def _statuses(report):
    return {c.kind: c.status for c in report.checks}


def test_a_domain_in_order_passes_every_check(checker):
    report = checker.check(Target("good.test", (zones.SMTP,)))
    assert _statuses(report) == dict.fromkeys(
        ("mx", "spf", "dkim", "dmarc", "blocklists"), Status.PASS
    )
    assert report.status == Status.PASS and report.gate_reason is None and not report.listings
    assert report.check("spf").detail == "authorises smtp.good.test (192.0.2.10)"
    assert report.check("dkim").data["valid"] == ["s1"]
    dmarc = report.check("dmarc")
    assert dmarc.data["policy"] == "reject"
    assert dmarc.data["alignment"] == {"DKIM": "strict", "SPF": "relaxed"}
    assert dmarc.data["rua"] == "mailto:dmarc@good.test"
    assert all(not c.fix for c in report.checks)


def test_no_mx_no_dkim_key_and_dmarc_p_none(checker):
    report = checker.check(Target("nomx.test", (zones.SMTP,)))
    assert _statuses(report) == {
        "mx": Status.FAIL,
        "spf": Status.PASS,  # through include:good.test
        "dkim": Status.WARN,  # none of the usual selectors: maybe another one
        "dmarc": Status.WARN,
        "blocklists": Status.PASS,
    }
    assert (
        report.check("mx").detail == "no MX record and no address: the domain cannot receive mail"
    )
    assert "WARMUP_DKIM_SELECTORS" in report.check("dkim").fix
    assert "p=quarantine" in report.check("dmarc").fix
    # MX and DKIM are reported, not gated: only SPF and DMARC hold a domain
    assert report.status == Status.FAIL and report.gate_reason is None


def test_spf_not_authorising_the_host_an_invalid_key_and_no_dmarc(checker):
    report = checker.check(Target("badspf.test", (zones.SMTP,)))
    spf = report.check("spf")
    assert spf.status == Status.FAIL
    assert spf.detail == "does not authorise smtp.good.test (192.0.2.10): fail"
    assert "ip4:192.0.2.10" in spf.fix
    assert spf.data["hosts"] == {"smtp.good.test (192.0.2.10)": "fail"}
    dkim = report.check("dkim")
    assert dkim.status == Status.FAIL and dkim.data["invalid"] == [
        "google: p= is not an RSA public key"
    ]
    assert report.check("dmarc").status == Status.FAIL
    assert report.check("dmarc").fix.startswith("publish a TXT record at _dmarc.badspf.test")
    assert report.gate_reason == (
        "SPF: does not authorise smtp.good.test (192.0.2.10): fail; DMARC: no DMARC record"
    )


def test_spf_over_ten_lookups_fails_even_where_the_host_would_match(checker):
    """The host is authorised by the record's last mechanism; the 11 includes before it
    break RFC 7208's limit of 10 lookups, so receivers get a permanent error."""
    report = checker.check(Target("loops.test", (zones.SMTP,)))
    spf = report.check("spf")
    assert spf.status == Status.FAIL
    assert "Too many DNS lookups" in spf.detail
    assert "at most 10 DNS lookups" in spf.fix
    # DMARC p=quarantine without rua: a warning with what to add
    dmarc = report.check("dmarc")
    assert dmarc.status == Status.WARN and dmarc.fix.startswith("add rua=mailto:")
    assert report.gate_reason.startswith("SPF: invalid record")


def test_configured_selectors_replace_the_usual_ones_and_a_missing_key_fails(dns_env):
    checker = Checker(
        load_settings({**dns_env, "WARMUP_DKIM_SELECTORS": "good.test:k9"}), RealClock()
    )
    dkim = checker.check(Target("good.test", (zones.SMTP,))).check("dkim")
    assert dkim.status == Status.FAIL and dkim.detail == "no DKIM key at k9._domainkey"
    assert dkim.data["selectors"] == ["k9"]
    # given on the command line, they override the configuration
    again = checker.check(Target("good.test", (zones.SMTP,)), selectors=("s1",)).check("dkim")
    assert again.status == Status.PASS


def test_a_subdomain_takes_its_organizational_domains_dmarc_subdomain_policy(checker):
    dmarc = checker.check(Target("mail.sub.test", (zones.SMTP,))).check("dmarc")
    assert dmarc.status == Status.PASS
    assert dmarc.data["at"] == "_dmarc.sub.test" and dmarc.data["policy"] == "reject"  # sp=


def test_a_blocklist_listing_of_the_domain_and_of_the_smtp_hosts_address(checker):
    by_name = checker.check(Target("listed.test", (zones.SMTP,)))
    assert by_name.check("blocklists").status == Status.FAIL
    assert by_name.listings == [
        {
            "zone": "bl.test",
            "subject": "listed.test",
            "code": "127.0.0.2",
            "reason": "listed for testing",
        }
    ]
    by_address = checker.check(Target("iplisted.test", (zones.LISTED_SMTP,)))
    assert by_address.listings == [
        {"zone": "bl.test", "subject": "192.0.2.66", "code": "127.0.0.4", "reason": ""}
    ]
    assert by_address.check("spf").status == Status.PASS  # a:smtp.iplisted.test
    # listings are throttled, not gated
    assert by_name.gate_reason is None and by_address.gate_reason is None


def test_blocklist_names_reverse_addresses_and_skip_private_ones():
    zone = [config.Zone("bl.example")]
    names = [
        n
        for _, _, n in blocklists.lookups(
            zone, "x.example", ["192.0.2.1", "2001:db8::1", "10.1.2.3", "127.0.0.1"]
        )
    ]
    assert names == [
        "x.example.bl.example",
        "1.2.0.192.bl.example",
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example",
    ]
    only_ip = blocklists.lookups([config.Zone("bl.example", ("ip",))], "x.example", ["192.0.2.1"])
    assert [n for _, _, n in only_ip] == ["1.2.0.192.bl.example"]


def test_without_zones_the_blocklists_are_skipped_and_do_not_count(dns_env):
    env = {k: v for k, v in dns_env.items() if k != "WARMUP_DNSBL_ZONES"}
    report = Checker(load_settings(env), RealClock()).check(Target("listed.test", (zones.SMTP,)))
    assert report.check("blocklists").status == Status.SKIP
    assert "WARMUP_DNSBL_ZONES" in report.check("blocklists").detail
    assert report.status == Status.PASS and not report.listings


def test_a_dns_server_that_never_answers_gives_warnings_never_a_gate(checker):
    report = checker.check(Target(zones.SLOW, (zones.SMTP,)))
    assert {c.kind: c.status for c in report.checks if c.kind != "blocklists"} == dict.fromkeys(
        ("mx", "spf", "dkim", "dmarc"), Status.WARN
    )
    assert all("no answer in time" in c.detail for c in report.checks if c.kind != "blocklists")
    assert report.gate_reason is None  # an outage of DNS never keeps a domain out


def test_an_smtp_host_without_an_address_cannot_be_checked(checker):
    spf = checker.check(Target("good.test", ("nowhere.good.test",))).check("spf")
    assert spf.status == Status.WARN and "nowhere.good.test has no address" in spf.detail


def test_the_timeout_is_clock_time(dns_env):
    """At 10x, 5 s of clock time is half a real second, as the SMTP timeout is."""
    fast = FixedClock(MONDAY_5AM)
    fast.speed = 10.0
    settings = load_settings({**dns_env, "WARMUP_DNS_TIMEOUT_SECONDS": "5"})
    assert Dns.from_settings(settings, fast).resolver.lifetime == 0.5


def test_many_domains_are_checked_at_once_each_once(dns_env):
    checker = Checker(load_settings({**dns_env, "WARMUP_DNS_CONCURRENCY": "4"}), RealClock())
    domains = ["good.test", "nomx.test", "badspf.test", "loops.test", "listed.test"]
    reports = list(checker.check_all(Target(d, (zones.SMTP,)) for d in domains))
    assert sorted(r.domain for r in reports) == sorted(domains)
    assert {r.domain: r.status for r in reports}["good.test"] == Status.PASS
