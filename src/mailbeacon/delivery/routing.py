"""Where a copy goes next: a configured smarthost, or the recipient domain's own mail hosts (MX)."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import Protocol

import dns.asyncresolver

from mailbeacon.config import Settings
from mailbeacon.delivery.mx import DnsFailure, resolve_route
from mailbeacon.delivery.transport import Hop, TlsPolicy

ROUTE_CACHE_S = 60.0
MAX_HOPS = 10  # addresses tried per attempt, across all MX hosts


@dataclass(frozen=True)
class NextHops:
    hops: tuple[Hop, ...]
    tls: TlsPolicy
    final: bool  # True: the hops are the recipient's own servers (their 250 means delivered)


class Router(Protocol):
    async def route(self, domain: str) -> NextHops:
        """The hosts to try, in order; raises DnsFailure when there is no way to the domain."""
        ...


class SmarthostRouter:
    def __init__(self, host: str, port: int, tls: TlsPolicy) -> None:
        self._hops = NextHops((Hop(host, host, port),), tls, final=False)

    async def route(self, domain: str) -> NextHops:
        return self._hops


class DirectRouter:
    """MX lookup (fallback to A/AAAA), opportunistic STARTTLS without certificate checks, like most MTAs."""

    def __init__(
        self, resolver: dns.asyncresolver.Resolver, port: int = 25, *, allow_private: bool = False
    ) -> None:
        self.resolver = resolver
        self.port = port
        self.allow_private = allow_private
        self.tls = TlsPolicy("opportunistic", verify=False)
        self._cache: dict[str, tuple[float, NextHops]] = {}

    async def route(self, domain: str) -> NextHops:
        cached = self._cache.get(domain)
        if cached is not None and time.monotonic() - cached[0] < ROUTE_CACHE_S:
            return cached[1]
        found = await resolve_route(domain, self.resolver)
        every = [Hop(host.name, address, self.port) for host in found.hosts for address in host.addresses]
        # A sender must not reach the machine's own or its network's services by naming a domain whose
        # MX points there (or an address literal): only public addresses, unless told otherwise.
        hops = tuple(hop for hop in every if self.allow_private or _is_public(hop.address))[:MAX_HOPS]
        if not hops:
            raise DnsFailure(
                f"{found.domain}: its mail hosts have only private or local addresses, which direct"
                " delivery does not use (see delivery_allow_private_addresses)",
                temporary=False,
                enhanced="5.4.6",
            )
        result = NextHops(hops, self.tls, final=True)
        self._cache[domain] = (time.monotonic(), result)
        if len(self._cache) > 10_000:
            self._cache.clear()
        return result


def _is_public(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_global
    except ValueError:
        return False


def parse_host_port(value: str, default_port: int) -> tuple[str, int]:
    host, port = value.strip(), default_port
    if host.startswith("["):
        inner, _, rest = host[1:].partition("]")
        host = inner
        if rest.startswith(":"):
            port = int(rest[1:])
    elif host.count(":") == 1:
        host, _, text = host.partition(":")
        port = int(text)
    if not host or not 0 < port < 65536:
        raise ValueError(f"not a host:port: {value!r}")
    return host, port


def router_for(settings: Settings) -> Router:
    if settings.delivery_mode == "smarthost":
        if not settings.smarthost:
            raise ValueError("delivery_mode is smarthost but no smarthost is set")
        default_port = 465 if settings.smarthost_tls == "tls" else 587
        host, port = parse_host_port(settings.smarthost, default_port)
        return SmarthostRouter(host, port, TlsPolicy(settings.smarthost_tls, settings.smarthost_tls_verify))
    from mailbeacon.delivery.mx import make_resolver

    resolver = make_resolver(
        settings.dns_nameservers or None, timeout_s=min(settings.delivery_timeout_s, 10.0)
    )
    return DirectRouter(
        resolver, settings.direct_port, allow_private=settings.delivery_allow_private_addresses
    )


__all__ = ["DirectRouter", "DnsFailure", "NextHops", "Router", "SmarthostRouter", "router_for"]
