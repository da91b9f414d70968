"""The domain checks' settings: parsed values, and errors that name the variable and entry."""

import pytest

from warmup_dagster.domains import config
from warmup_dagster.settings import SettingsError, load_settings


def test_nameservers_take_ipv4_and_ipv6_with_or_without_a_port():
    assert config.nameservers(" 127.0.0.1:5353, [::1]:53, 9.9.9.9 ,[::1]") == [
        config.Nameserver("127.0.0.1", 5353),
        config.Nameserver("::1", 53),
        config.Nameserver("9.9.9.9", 53),
        config.Nameserver("::1", 53),
    ]
    assert config.nameservers("") == []


def test_zones_say_what_is_looked_up_in_them():
    assert config.zones("zen.example, domain:dbl.example, IP:bl.example.") == [
        config.Zone("zen.example", ("domain", "ip")),
        config.Zone("dbl.example", ("domain",)),
        config.Zone("bl.example", ("ip",)),
    ]


def test_selectors_are_per_domain():
    assert config.selectors("Example.com:google|s1, other.org:mail") == {
        "example.com": ("google", "s1"),
        "other.org": ("mail",),
    }


def test_bad_values_name_the_variable_and_the_entry():
    with pytest.raises(SettingsError) as excinfo:
        load_settings(
            {
                "WARMUP_DNS_NAMESERVERS": "127.0.0.1:53, dns.example:53",
                "WARMUP_DNSBL_ZONES": "zone:bl.example",
                "WARMUP_DKIM_SELECTORS": "example.com",
                "WARMUP_DOMAIN_GATE": "on",
                "WARMUP_DNSBL_THROTTLE": "2",
                "WARMUP_DNS_TIMEOUT_SECONDS": "0",
            }
        )
    message = str(excinfo.value)
    assert "WARMUP_DNS_NAMESERVERS='127.0.0.1:53, dns.example:53' has 'dns.example:53'" in message
    assert "WARMUP_DNSBL_ZONES='zone:bl.example' has 'zone:bl.example': the prefix" in message
    assert "WARMUP_DKIM_SELECTORS='example.com' has 'example.com', which is not" in message
    assert "WARMUP_DOMAIN_GATE='on' must be flag or hold" in message
    assert "WARMUP_DNSBL_THROTTLE='2' must be a fraction from 0 to 1" in message
    assert "WARMUP_DNS_TIMEOUT_SECONDS='0' must be a number above 0" in message


def test_the_gate_defaults_to_flag_and_takes_hold_in_any_case():
    assert load_settings({}).domain_gate == "flag"
    assert load_settings({"WARMUP_DOMAIN_GATE": "Hold"}).domain_gate == "hold"


def test_a_port_out_of_range_is_refused():
    with pytest.raises(ValueError, match="port is not 1-65535"):
        config.nameservers("127.0.0.1:70000")
