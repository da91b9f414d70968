"""The test DNS server answers as an authoritative server does, over UDP and over TCP."""

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from warmup_dagster_tests.domains import zones


def _ask(server, name, rdtype, tcp):
    query = dns.message.make_query(name, rdtype)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, server.host, port=server.port, timeout=2)


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_it_answers_records_nxdomain_and_refused_over_both_protocols(dns_server, tcp):
    answer = _ask(dns_server, "good.test", "MX", tcp)
    assert answer.rcode() == dns.rcode.NOERROR and answer.flags & dns.flags.AA
    assert [r.to_text() for r in answer.answer[0]] == ["10 mx.good.test."]
    # a name that exists without the type: an empty answer, not NXDOMAIN
    empty = _ask(dns_server, "good.test", "AAAA", tcp)
    assert empty.rcode() == dns.rcode.NOERROR and not empty.answer
    # an empty non-terminal exists too (a name below it has records)
    assert _ask(dns_server, "_domainkey.good.test", "TXT", tcp).rcode() == dns.rcode.NOERROR
    assert _ask(dns_server, "nothing.good.test", "A", tcp).rcode() == dns.rcode.NXDOMAIN
    assert _ask(dns_server, "example.org", "A", tcp).rcode() == dns.rcode.REFUSED


def test_a_long_txt_record_comes_whole_over_tcp_and_udp(dns_server):
    for tcp in (False, True):
        (txt,) = _ask(dns_server, "s1._domainkey.good.test", "TXT", tcp).answer
        joined = b"".join(next(iter(txt)).strings)
        assert joined.startswith(b"v=DKIM1; k=rsa; p=") and len(joined) > 255


def test_a_silent_zone_never_answers(dns_server):
    with pytest.raises(dns.exception.Timeout):
        _ask(dns_server, f"_dmarc.{zones.SLOW}", "TXT", tcp=False)
