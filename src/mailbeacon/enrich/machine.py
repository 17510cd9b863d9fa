"""Was an open or click a person's, or a machine's? Every rule that fires leaves its evidence.

Classes, strongest first: a hit on the trap link (scanner), Apple Mail Privacy Protection's prefetch
(apple_privacy), image proxies (gmail_proxy, other_proxy), announced prefetches and link previews
(prefetch), security scanners and tools (scanner), agents that tell nothing (unknown), else human.
A proxy fetch is counted as a person's open: Gmail and Yahoo fetch images when the mail is opened.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from mailbeacon.enrich.device import NO_DEVICE, Device, describe_agent
from mailbeacon.enrich.geo import NO_NETWORK, Network
from mailbeacon.enrich.known import (
    APPLE_ASNS,
    PREFETCH_AGENTS,
    PREFETCH_HEADERS,
    PREFETCH_VALUES,
    PROXY_AGENTS,
    SCANNER_AGENTS,
    SCANNER_ASNS,
)
from mailbeacon.events import MachineClass

Kind = Literal["open", "click"]

FAST_OPEN_S = 2.0  # an open this soon after sending happened on arrival, not by a reader
FAST_CLICK_S = 5.0
BURST_WINDOW_S = 5.0  # clicks on several links of one copy within this time are a scanner's
BURST_LINKS = 3  # different links that make a burst (all of them when the message has fewer)
AGENT_CACHE_SIZE = 8192

COUNTED_AS_HUMAN = frozenset({MachineClass.HUMAN, MachineClass.GMAIL_PROXY, MachineClass.OTHER_PROXY})
_PRECEDENCE = (
    MachineClass.APPLE_PRIVACY,
    MachineClass.GMAIL_PROXY,
    MachineClass.OTHER_PROXY,
    MachineClass.PREFETCH,
    MachineClass.SCANNER,
    MachineClass.UNKNOWN,
)


@dataclass(frozen=True, slots=True)
class CopyClick:
    """A click of the same recipient copy, for the burst and trap rules."""

    at: float  # seconds, on the same clock as HitFacts.at (e.g. the Unix epoch)
    link_position: int | None
    ip: str | None = None
    trap: bool = False  # on the invisible trap link


@dataclass(frozen=True, slots=True)
class HitFacts:
    """What is known of one hit. Only `kind` is required; each rule uses what it is given."""

    kind: Kind
    method: str = "GET"
    user_agent: str | None = None
    requested_with: str | None = None  # the X-Requested-With header
    device: Device = NO_DEVICE  # describe_agent(user_agent, requested_with); the Enricher fills it
    network: Network = NO_NETWORK  # GeoLookup.lookup(ip); the Enricher fills it
    ip: str | None = None
    purpose: str | None = None  # a prefetch header's value: see purpose_of()
    seconds_since_sent: float | None = None
    at: float | None = None
    link_position: int | None = None
    trap: bool = False  # this hit is on the trap link
    link_count: int | None = None  # tracked links in the message, the trap link not counted
    copy_clicks: Sequence[CopyClick] = ()  # the copy's other clicks, before and after this hit


@dataclass(frozen=True, slots=True)
class Classification:
    machine_class: MachineClass
    human: bool
    evidence: tuple[str, ...]

    @property
    def reason(self) -> str:
        """The evidence as one line, for the events table's machine_reason."""
        return "; ".join(self.evidence)


Finding = tuple[MachineClass, str]


def burst_clicks(
    clicks: Sequence[CopyClick], link_count: int | None = None, window_s: float = BURST_WINDOW_S
) -> set[int]:
    """Indices of the clicks that are part of a scanner burst: clicks of one copy on BURST_LINKS
    different links (or on every link, when the message has fewer) within `window_s` seconds."""
    needed = BURST_LINKS if link_count is None else max(2, min(link_count, BURST_LINKS))
    if link_count is not None and link_count < needed:
        return set()
    order = sorted(
        (i for i, click in enumerate(clicks) if not click.trap and click.link_position is not None),
        key=lambda i: clicks[i].at,
    )
    members: set[int] = set()
    start = 0
    for end in range(len(order)):
        while clicks[order[end]].at - clicks[order[start]].at > window_s:
            start += 1
        window = order[start : end + 1]
        if len({clicks[i].link_position for i in window}) >= needed:
            members.update(window)
    return members


def purpose_of(headers: Mapping[str, str]) -> str | None:
    """The value of the header by which a browser says a request is a prefetch, if any (names lower-case)."""
    for name in PREFETCH_HEADERS:
        if name in headers:
            return headers[name]
    return None


def _trap(hit: HitFacts, device: Device, network: Network) -> Finding | None:
    if hit.trap:
        return MachineClass.SCANNER, "followed the invisible trap link, which no reader can see"
    if hit.ip and any(click.trap and click.ip == hit.ip for click in hit.copy_clicks):
        return MachineClass.SCANNER, f"{hit.ip} also followed this copy's invisible trap link"
    return None


def _apple_privacy(hit: HitFacts, device: Device, network: Network) -> Finding | None:
    generic = device.client == "Apple Mail" or device.browser is None
    if hit.kind == "open" and network.asn in APPLE_ASNS and generic:
        return (
            MachineClass.APPLE_PRIVACY,
            f"generic WebKit user agent from Apple's network AS{network.asn}:"
            " Mail Privacy Protection loads images ahead of the reader",
        )
    return None


def _announced_prefetch(hit: HitFacts, device: Device, network: Network) -> Finding | None:
    if hit.purpose and PREFETCH_VALUES.search(hit.purpose):
        return MachineClass.PREFETCH, f"the request says it is a prefetch ({hit.purpose})"
    return None


def _method(hit: HitFacts, device: Device, network: Network) -> Finding | None:
    if hit.method.upper() not in ("GET", "POST"):
        return MachineClass.SCANNER, f"{hit.method.upper()} request: readers' browsers and mail clients GET"
    return None


def _scanner_network(hit: HitFacts, device: Device, network: Network) -> Finding | None:
    vendor = SCANNER_ASNS.get(network.asn or 0)
    if vendor and device.client is None:
        owner = network.as_org or "its owner"
        return MachineClass.SCANNER, f"from AS{network.asn} ({owner}), where {vendor} scans mail and links"
    return None


def _speed(hit: HitFacts, device: Device, network: Network) -> Finding | None:
    limit = FAST_CLICK_S if hit.kind == "click" else FAST_OPEN_S
    seconds = hit.seconds_since_sent
    if seconds is not None and 0 <= seconds < limit:
        return MachineClass.SCANNER, f"{hit.kind} {seconds:.1f} s after sending, faster than a reader"
    return None


def _burst(hit: HitFacts, device: Device, network: Network) -> Finding | None:
    if hit.kind != "click" or hit.at is None or hit.link_position is None or not hit.copy_clicks:
        return None
    clicks = [*hit.copy_clicks, CopyClick(hit.at, hit.link_position, hit.ip, hit.trap)]
    members = burst_clicks(clicks, hit.link_count)
    if len(clicks) - 1 not in members:
        return None
    links = len({clicks[i].link_position for i in members})
    of = f" of {hit.link_count}" if hit.link_count else ""
    return (
        MachineClass.SCANNER,
        f"part of a burst: {links}{of} links of this copy clicked within {BURST_WINDOW_S:g} s",
    )


_RULES: tuple[Callable[[HitFacts, Device, Network], Finding | None], ...] = (
    _apple_privacy,
    _announced_prefetch,
    _method,
    _scanner_network,
    _burst,
    _speed,
)


@functools.lru_cache(maxsize=AGENT_CACHE_SIZE)
def _agent_findings(user_agent: str | None, device: Device, kind: Kind) -> tuple[Finding, ...]:
    """What the user agent alone tells: proxies, link previews, scanners, or nothing at all."""
    if not user_agent:
        return ((MachineClass.UNKNOWN, "no user agent: mail clients and browsers always send one"),)
    for pattern, machine_class, name in PROXY_AGENTS:
        if pattern.search(user_agent):
            if kind == "click":
                return ((MachineClass.SCANNER, f"{name} followed a link: proxies only fetch images"),)
            return ((MachineClass(machine_class), f"fetched by {name} when the mail was opened"),)
    for pattern, name in PREFETCH_AGENTS:
        if pattern.search(user_agent):
            return ((MachineClass.PREFETCH, f"user agent of {name}"),)
    for pattern, name in SCANNER_AGENTS:
        if pattern.search(user_agent):
            return ((MachineClass.SCANNER, f"user agent of {name}"),)
    if device.bot:
        return ((MachineClass.SCANNER, f"user agent of a crawler or bot ({device.browser})"),)
    if device.client is None and device.platform == "unknown":
        return ((MachineClass.UNKNOWN, "user agent of no known mail client or browser"),)
    return ()


def _describe(device: Device) -> str:
    parts = [device.client or device.browser or "an unnamed agent"]
    if device.os:
        parts.append(f"on {device.os}")
    return f"user agent of {' '.join(parts)} ({device.platform})"


def classify(hit: HitFacts) -> Classification:
    """Classify one open or click; the evidence lists the deciding findings first, then the others.

    The device is described from the user agent unless given; the network is only what is given."""
    device = hit.device if hit.device is not NO_DEVICE else describe_agent(hit.user_agent, hit.requested_with)
    return classify_with(hit, device, hit.network)


def classify_with(hit: HitFacts, device: Device, network: Network) -> Classification:
    """classify() with the device and network given apart from the hit (saves copying it)."""
    trapped = _trap(hit, device, network)
    findings = [finding for rule in _RULES if (finding := rule(hit, device, network)) is not None]
    findings.extend(_agent_findings(hit.user_agent, device, hit.kind))
    if trapped:
        findings.insert(0, trapped)
    if not findings:
        return Classification(MachineClass.HUMAN, True, (_describe(device), "no sign of a machine"))
    # The trap link decides alone: no reader can see it, whatever else the hit looks like.
    machine_class = trapped[0] if trapped else min((found for found, _ in findings), key=_PRECEDENCE.index)
    deciding = [reason for found, reason in findings if found == machine_class]
    others = [reason for found, reason in findings if found != machine_class]
    # A proxy fetch counts as a person's open unless another rule speaks against it (e.g. its speed).
    human = machine_class in COUNTED_AS_HUMAN and not others
    return Classification(machine_class, human, (*deciding, *others))
