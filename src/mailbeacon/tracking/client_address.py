"""The address of the client behind a request, trusting X-Forwarded-For only from configured proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

from mailbeacon.config import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=65_536)  # the same clients and proxies come back; parsing costs microseconds
def normalise_ip(value: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=65_536)
def canonical_ip(value: str) -> str | None:
    """The address in its one canonical spelling (IPv4-mapped IPv6 as IPv4), or None if it is none."""
    address = normalise_ip(value)
    return None if address is None else str(address)


class ClientAddress:
    def __init__(self, trusted_proxies: Sequence[IPNetwork]) -> None:
        self.trusted = tuple(trusted_proxies)

    def _is_trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self.trusted)

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The peer, or, when the peer is a trusted proxy, the last untrusted hop it reports."""
        if not peer:
            return None
        if not self.trusted or not forwarded_for:
            return canonical_ip(peer)
        address = normalise_ip(peer)
        if address is None:
            return None
        if not self._is_trusted(address):
            return str(address)
        for hop in reversed(forwarded_for.split(",")):
            hop_address = normalise_ip(hop)
            if hop_address is None:
                break  # a garbled hop: trust nothing left of it
            address = hop_address
            if not self._is_trusted(hop_address):
                break
        return str(address)
