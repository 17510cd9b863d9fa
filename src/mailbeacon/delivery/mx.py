"""MX routing: the ordered mail hosts, with their addresses, for a recipient domain (RFC 5321 section 5).

Policy (which addresses may be connected to, what to do about ``localhost``) is the worker's; this module
only reports what DNS says. Decisions taken here:

* MX hosts are ordered by preference; hosts of equal preference are shuffled (RFC 5321 5.1).
* A domain with MX records but none usable gets a ``DnsFailure``: permanent when every host was found to
  have no address, temporary when the address lookup of at least one host failed temporarily (SERVFAIL,
  timeout), because that host may well be the one that works on the next attempt.
* A host whose address lookup failed temporarily is left out of the route when other hosts have addresses:
  delivering to a reachable lower-preference MX now beats waiting for the primary. A host with an
  address of one family and a temporary failure for the other keeps the addresses it got.
* A null MX (RFC 7505, ``0 .``) is a permanent failure; a ``.`` among other MX records is ignored.
* A domain with no MX records falls back to its own A/AAAA records (implicit MX, RFC 5321 5.1).
* An address literal (``[192.0.2.1]``, ``[IPv6:2001:db8::1]``) routes straight to that address.
* Internationalised domains are encoded with the ``idna`` codec; ``Route.domain`` and host names are the
  lower-case ASCII forms without the final dot.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

__all__ = ["DnsFailure", "MailHost", "Route", "make_resolver", "resolve_route"]

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_IPV6_TAG = "ipv6:"


@dataclass(frozen=True)
class MailHost:
    name: str
    preference: int
    addresses: tuple[str, ...]  # IPv4 first, then IPv6, each in the order DNS gave them


@dataclass(frozen=True)
class Route:
    domain: str
    hosts: tuple[MailHost, ...]
    implicit_mx: bool  # no MX records: the domain's own A/AAAA records (RFC 5321 5.1)


class DnsFailure(Exception):
    """No route. ``temporary``: try later (SERVFAIL, timeout); otherwise bounce (NXDOMAIN, null MX...)."""

    def __init__(
        self, reason: str, *, temporary: bool, null_mx: bool = False, enhanced: str | None = None
    ) -> None:
        super().__init__(reason)
        self.enhanced = enhanced  # the status code to report, when a more precise one than 5.1.2 fits
        self.null_mx = null_mx  # the domain says it accepts no mail at all (RFC 7505)
        self.reason = reason
        self.temporary = temporary


def make_resolver(
    nameservers: Sequence[str] | None = None, timeout_s: float = 5.0
) -> dns.asyncresolver.Resolver:
    """A resolver asking ``nameservers`` ("ip", "ip:port", "[ipv6]:port"), or else resolv.conf's servers.

    ``timeout_s`` bounds each lookup (one name, one type), retries included.
    """
    if timeout_s <= 0:
        raise ValueError("the DNS timeout must be positive")
    if nameservers is None:
        resolver = dns.asyncresolver.Resolver(configure=True)
    else:
        if not nameservers:
            raise ValueError("no nameservers given")
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(*_parse_nameserver(ns)) for ns in nameservers]
    resolver.lifetime = timeout_s
    # Per-attempt timeout below the lifetime, so that a lost UDP packet is retried rather than waited out.
    resolver.timeout = min(timeout_s, 2.0)
    return resolver


def _parse_nameserver(text: str) -> tuple[str, int]:
    spec = text.strip()
    host, port = spec, "53"
    if spec.startswith("["):
        host, bracket, rest = spec[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"invalid nameserver {text!r}: use ip, ip:port or [ipv6]:port")
        port = rest[1:] if rest else "53"
    elif spec.count(":") == 1:
        host, _, port = spec.partition(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"invalid nameserver {text!r}: {host!r} is not an IP address") from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid nameserver {text!r}: bad port {port!r}")
    return str(address), int(port)


async def resolve_route(
    domain: str,
    resolver: dns.asyncresolver.Resolver,
    *,
    shuffle: Callable[[list[MailHost]], None] | None = random.shuffle,
) -> Route:
    """The mail hosts for ``domain`` in the order to try them; DnsFailure when there is none.

    ``shuffle`` reorders hosts of equal preference (None keeps them sorted by name).
    """
    literal = _address_literal(domain)
    if literal is not None:
        return Route(domain=domain.strip(), hosts=(MailHost(literal, 0, (literal,)),), implicit_mx=False)
    name = _ascii_domain(domain)
    try:
        answer = await resolver.resolve(dns.name.from_text(name), dns.rdatatype.MX, search=False)
    except dns.resolver.NoAnswer:
        return await _implicit_route(name, resolver)
    except dns.resolver.NXDOMAIN:
        raise DnsFailure(f"{name}: no such domain (NXDOMAIN)", temporary=False) from None
    except dns.exception.DNSException as exc:
        raise DnsFailure(f"{name}: MX lookup failed: {_describe(exc)}", temporary=True) from None

    preferences: dict[str, int] = {}
    null_mx = False
    for record in answer:
        if record.exchange == dns.name.root:
            null_mx = True
            continue
        host = record.exchange.to_text(omit_final_dot=True).lower()
        preferences[host] = min(record.preference, preferences.get(host, record.preference))
    if not preferences:
        reason = "accepts no mail (null MX)" if null_mx else "no usable MX records"
        raise DnsFailure(f"{name}: {reason}", temporary=False, null_mx=null_mx)

    ordered = sorted(preferences.items(), key=lambda item: (item[1], item[0]))
    lookups = await asyncio.gather(*(_addresses(host, resolver) for host, _ in ordered))
    hosts: list[MailHost] = []
    temporary_errors: list[str] = []
    for (host, preference), (addresses, error) in zip(ordered, lookups, strict=True):
        if addresses:
            hosts.append(MailHost(host, preference, addresses))
        elif error is not None:
            temporary_errors.append(f"{host}: {error}")
    if not hosts:
        if temporary_errors:
            raise DnsFailure(
                f"{name}: no MX host address found yet ({'; '.join(temporary_errors)})", temporary=True
            )
        raise DnsFailure(f"{name}: none of its MX hosts has an address", temporary=False)
    return Route(domain=name, hosts=tuple(_shuffle_ties(hosts, shuffle)), implicit_mx=False)


async def _implicit_route(name: str, resolver: dns.asyncresolver.Resolver) -> Route:
    addresses, error = await _addresses(name, resolver)
    if addresses:
        return Route(domain=name, hosts=(MailHost(name, 0, addresses),), implicit_mx=True)
    if error is not None:
        raise DnsFailure(f"{name}: no MX records, and the address lookup failed: {error}", temporary=True)
    raise DnsFailure(f"{name}: no MX records and no address records", temporary=False)


async def _addresses(host: str, resolver: dns.asyncresolver.Resolver) -> tuple[tuple[str, ...], str | None]:
    """The host's IPv4 then IPv6 addresses, and the temporary error of either lookup if there was one."""
    results = await asyncio.gather(
        _lookup(host, dns.rdatatype.A, resolver), _lookup(host, dns.rdatatype.AAAA, resolver)
    )
    addresses: list[str] = []
    errors: list[str] = []
    for found, error in results:
        addresses.extend(a for a in found if a not in addresses)
        if error is not None:
            errors.append(error)
    return tuple(addresses), "; ".join(errors) or None


async def _lookup(
    host: str, rdtype: dns.rdatatype.RdataType, resolver: dns.asyncresolver.Resolver
) -> tuple[list[str], str | None]:
    try:
        answer = await resolver.resolve(dns.name.from_text(host), rdtype, search=False)
    except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
        return [], None
    except dns.exception.DNSException as exc:
        return [], f"{rdtype.name} lookup failed: {_describe(exc)}"
    return [str(record.address) for record in answer], None


def _shuffle_ties(hosts: list[MailHost], shuffle: Callable[[list[MailHost]], None] | None) -> list[MailHost]:
    if shuffle is None:
        return hosts
    result: list[MailHost] = []
    start = 0
    while start < len(hosts):
        end = start
        while end < len(hosts) and hosts[end].preference == hosts[start].preference:
            end += 1
        group = hosts[start:end]
        if len(group) > 1:
            shuffle(group)
        result.extend(group)
        start = end
    return result


def _describe(exc: dns.exception.DNSException) -> str:
    if isinstance(exc, dns.exception.Timeout):
        return "timed out"
    if isinstance(exc, dns.resolver.NoNameservers):
        return f"no server gave an answer ({exc})"
    return f"{type(exc).__name__}: {exc}"


def _address_literal(domain: str) -> str | None:
    """The address of a ``[192.0.2.1]`` or ``[IPv6:2001:db8::1]`` domain literal; None for a domain name."""
    text = domain.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    inner = text[1:-1]
    try:
        if inner.lower().startswith(_IPV6_TAG):
            return str(ipaddress.IPv6Address(inner[len(_IPV6_TAG) :]))
        return str(ipaddress.IPv4Address(inner))
    except ValueError:
        raise DnsFailure(f"{domain}: not a valid address literal", temporary=False) from None


def _ascii_domain(domain: str) -> str:
    text = domain.strip()
    if text.endswith("."):
        text = text[:-1]
    try:
        name = text.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise DnsFailure(f"{domain!r}: not a valid domain ({exc})", temporary=False) from None
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise DnsFailure(f"{domain!r}: not a valid domain name", temporary=False)
    return name
