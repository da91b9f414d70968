"""An authoritative DNS server for tests: dnslib, UDP and TCP on one loopback port.

It serves the records of a zone-file text (`$ORIGIN`/`$TTL` and one record a line, as dnslib
parses them) for the zones named in `zones`: a name with records of the asked type gets them
(following a CNAME inside its data), a name that exists with other types gets an empty answer,
any other name under a zone NXDOMAIN, and a name outside every zone REFUSED, as an
authoritative server answers. Names in `silent`, and the names under them, get no answer at
all, so a resolver times out on them. Point dnspython at it with
`WARMUP_DNS_NAMESERVERS=<nameserver>`.
"""

from __future__ import annotations

from collections import defaultdict
from types import TracebackType

from dnslib import QTYPE, RCODE, RR, DNSError, DNSLabel, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class _Zones(BaseResolver):
    def __init__(self, records: str, zones: tuple[str, ...], silent: tuple[str, ...]) -> None:
        self.records: dict[DNSLabel, list[RR]] = defaultdict(list)
        for rr in RR.fromZone(records):
            self.records[rr.rname].append(rr)
        self.zones = [DNSLabel(z) for z in zones]
        self.silent = {DNSLabel(n) for n in silent}
        # names that exist because a name below them does (empty non-terminals)
        self.names = set(self.records)
        for name in list(self.records):
            labels = name.label
            self.names |= {DNSLabel(labels[i:]) for i in range(1, len(labels))}
        self.questions = 0

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        self.questions += 1
        reply = request.reply()
        name, qtype = request.q.qname, QTYPE[request.q.qtype]
        if any(name.matchSuffix(n) for n in self.silent):  # the handler sends nothing
            raise DNSError(f"{name} is silent")
        if not any(name.matchSuffix(z) for z in self.zones):
            reply.header.rcode = RCODE.REFUSED
            return reply
        reply.header.aa = 1
        seen = 0
        while seen < 8:  # a CNAME chain inside the data
            found = self.records.get(name, [])
            answers = [rr for rr in found if QTYPE[rr.rtype] == qtype or qtype == "ANY"]
            cname = [rr for rr in found if rr.rtype == QTYPE.CNAME]
            if answers or not cname or qtype == "CNAME":
                reply.rr.extend(answers)
                break
            reply.add_answer(cname[0])
            name, seen = cname[0].rdata.label, seen + 1
        if not reply.rr and name not in self.names:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


def _quiet() -> DNSLogger:
    return DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)


class ZoneServer:
    """`with ZoneServer(records, zones=("good.test",)) as server:` serves until the block ends.

    Args:
        records: Zone-file text (dnslib's parser: `$ORIGIN`, `$TTL`, one record a line).
        zones: The zones it is authoritative for.
        silent: Names it never answers (nor any name under them).
        host: The loopback address to listen on.
    """

    def __init__(
        self,
        records: str,
        zones: tuple[str, ...],
        silent: tuple[str, ...] = (),
        host: str = "127.0.0.1",
    ) -> None:
        self.resolver = _Zones(records, zones, silent)
        self.host = host
        self.port = 0
        self._servers: list[DNSServer] = []

    @property
    def nameserver(self) -> str:
        """Its address as `WARMUP_DNS_NAMESERVERS` takes it."""
        return f"{self.host}:{self.port}"

    def start(self) -> ZoneServer:
        for _ in range(20):  # a free UDP port whose TCP twin is free too
            udp = DNSServer(self.resolver, self.host, 0, logger=_quiet())
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(self.resolver, self.host, port, tcp=True, logger=_quiet())
            except OSError:
                udp.server.server_close()
                continue
            self.port, self._servers = port, [udp, tcp]
            for server in self._servers:
                server.start_thread()
            return self
        raise OSError("no free port for both UDP and TCP")

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()
        self._servers = []

    def __enter__(self) -> ZoneServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
