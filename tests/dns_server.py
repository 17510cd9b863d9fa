"""A small authoritative DNS server for tests, on 127.0.0.1 over UDP and TCP (same ephemeral port).

    zone = {"example.test": [MX(10, "mx1.example.test")], "mx1.example.test": [A("127.0.0.1")]}
    with DnsServer(zone) as dns:
        resolver = make_resolver([dns.nameserver])  # "127.0.0.1:PORT"

Names are case-insensitive, with or without the final dot. A name not in the zone answers NXDOMAIN; a name
present without records of the asked type answers NOERROR with no answer (NODATA). A CNAME is answered for
any type and chased through the zone like an authoritative server does. ``servfail(name)`` makes a name
answer SERVFAIL and ``drop(name)`` makes it never answer (the client times out), optionally for one type.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import dnslib
from dnslib.server import BaseResolver, DNSLogger, DNSServer


@dataclass(frozen=True)
class A:
    address: str


@dataclass(frozen=True)
class AAAA:
    address: str


@dataclass(frozen=True)
class MX:
    preference: int
    exchange: str


@dataclass(frozen=True)
class CNAME:
    target: str


@dataclass(frozen=True)
class TXT:
    """One TXT record of one or more character-strings (each at most 255 octets)."""

    strings: tuple[str, ...]

    def __init__(self, *strings: str) -> None:
        object.__setattr__(self, "strings", strings)


Record = A | AAAA | MX | CNAME | TXT

_RTYPES: dict[type[Any], str] = {A: "A", AAAA: "AAAA", MX: "MX", CNAME: "CNAME", TXT: "TXT"}
_MAX_CNAME_CHAIN = 8


def _key(name: str) -> str:
    return name.rstrip(".").lower()


def _rdata(record: Record) -> Any:
    match record:
        case A(address):
            return dnslib.A(address)
        case AAAA(address):
            return dnslib.AAAA(address)
        case MX(preference, exchange):
            return dnslib.MX(exchange if exchange.endswith(".") else exchange + ".", preference)
        case CNAME(target):
            return dnslib.CNAME(target if target.endswith(".") else target + ".")
        case TXT(strings):
            return dnslib.TXT([s.encode() for s in strings])


class _NoAnswer(dnslib.DNSError):  # type: ignore[misc]
    """Raised in the resolver so that dnslib's handler sends nothing (it logs DNSError and moves on)."""


class _ZoneResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, server: DnsServer) -> None:
        self.server = server

    def resolve(self, request: Any, handler: Any) -> Any:
        qname = str(request.q.qname)
        qtype = dnslib.QTYPE[request.q.qtype]
        self.server._log_query(qname, qtype)
        reply = request.reply()
        name = _key(qname)
        for _ in range(_MAX_CNAME_CHAIN):
            fault = self.server._fault_for(name, qtype)
            if fault == "drop":
                raise _NoAnswer(f"dropping the query for {name} {qtype}")
            if fault == "servfail":
                reply.rr = []
                reply.header.rcode = dnslib.RCODE.SERVFAIL
                return reply
            records = self.server._records_for(name)
            if records is None:
                reply.header.rcode = dnslib.RCODE.NXDOMAIN
                return reply
            cnames = [r for r in records if isinstance(r, CNAME)]
            if cnames and qtype != "CNAME":
                reply.add_answer(self._rr(name, cnames[0]))
                name = _key(cnames[0].target)
                continue
            for record in records:
                if _RTYPES[type(record)] == qtype:
                    reply.add_answer(self._rr(name, record))
            return reply
        return reply

    def _rr(self, name: str, record: Record) -> Any:
        rtype = getattr(dnslib.QTYPE, _RTYPES[type(record)])
        return dnslib.RR(name + ".", rtype, rdata=_rdata(record), ttl=self.server.ttl)


class DnsServer:
    """See the module docstring. Usable as a context manager or with ``start()``/``stop()``."""

    def __init__(self, zone: Mapping[str, Sequence[Record]] | None = None, *, ttl: int = 60) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._zone: dict[str, list[Record]] = {}
        self._faults: dict[tuple[str, str | None], str] = {}
        self.queries: list[tuple[str, str]] = []
        self._servers: list[DNSServer] = []
        self.port = 0
        for name, records in (zone or {}).items():
            self.set(name, records)

    # --- the zone ---------------------------------------------------------------------------------------

    def set(self, name: str, records: Iterable[Record]) -> None:
        """Replace the records of ``name`` (an empty list makes the name exist with no records)."""
        with self._lock:
            self._zone[_key(name)] = list(records)

    def remove(self, name: str) -> None:
        with self._lock:
            self._zone.pop(_key(name), None)

    def servfail(self, name: str, rtype: str | None = None) -> None:
        """Answer SERVFAIL for ``name`` (for every type, or only ``rtype`` such as "AAAA")."""
        with self._lock:
            self._faults[(_key(name), rtype)] = "servfail"

    def drop(self, name: str, rtype: str | None = None) -> None:
        """Never answer queries for ``name`` (for every type, or only ``rtype``): clients time out."""
        with self._lock:
            self._faults[(_key(name), rtype)] = "drop"

    def heal(self, name: str, rtype: str | None = None) -> None:
        with self._lock:
            self._faults.pop((_key(name), rtype), None)

    def _fault_for(self, name: str, rtype: str) -> str | None:
        with self._lock:
            return self._faults.get((name, rtype)) or self._faults.get((name, None))

    def _records_for(self, name: str) -> list[Record] | None:
        with self._lock:
            records = self._zone.get(name)
            return None if records is None else list(records)

    def _log_query(self, name: str, rtype: str) -> None:
        with self._lock:
            self.queries.append((_key(name), rtype))

    # --- running ----------------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def nameserver(self) -> str:
        """``"127.0.0.1:PORT"``, the form ``make_resolver`` takes."""
        if not self.port:
            raise RuntimeError("the DNS server is not running")
        return f"{self.host}:{self.port}"

    def start(self) -> DnsServer:
        resolver = _ZoneResolver(self)
        logger = DNSLogger(log="-request,-reply,-truncated,-error", logf=lambda *_: None)
        last_error: OSError | None = None
        # UDP takes an ephemeral port; TCP must then get the same number, which another process may hold.
        for _ in range(20):
            udp = DNSServer(resolver, address=self.host, port=0, logger=logger)
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(resolver, address=self.host, port=port, tcp=True, logger=logger)
            except OSError as exc:
                udp.server.server_close()
                last_error = exc
                continue
            self._servers = [udp, tcp]
            self.port = port
            break
        else:
            raise RuntimeError(f"no free UDP+TCP port pair for the test DNS server: {last_error}")
        for server in self._servers:
            # A short poll interval: shutdown() waits for the serving loop to notice, 0.5 s by default.
            server.thread = threading.Thread(
                target=server.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
            )
            server.thread.start()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.server.shutdown()
            server.server.server_close()
            server.thread.join(timeout=5)
        self._servers = []
        self.port = 0

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
