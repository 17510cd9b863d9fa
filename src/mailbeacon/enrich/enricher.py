"""One object for the ingest step: geo + device + machine classification of a hit, with caches."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailbeacon.enrich.device import Device, describe_agent
from mailbeacon.enrich.geo import NO_NETWORK, GeoLookup, Network
from mailbeacon.enrich.machine import Classification, HitFacts, Kind, classify_with
from mailbeacon.events import MachineClass

NETWORK_CACHE_SIZE = 65536


@dataclass(frozen=True, slots=True)
class Enrichment:
    """Everything mailbeacon makes of one hit."""

    kind: Kind
    network: Network
    device: Device
    classification: Classification

    @property
    def client(self) -> str | None:
        if self.classification.machine_class == MachineClass.APPLE_PRIVACY:
            return "Apple Mail"
        return self.device.client

    @property
    def platform(self) -> str:
        if self.classification.machine_class == MachineClass.APPLE_PRIVACY:
            return "unknown"  # the prefetch looks the same from a Mac, an iPhone or an iPad
        if self.kind == "click" and self.device.client is None and self.device.is_browser:
            return "unknown"  # the link opened in the device's browser: that tells nothing of the mail client
        return self.device.platform

    def event_fields(self) -> dict[str, Any]:
        """The columns of the events table this fills, by name."""
        device = self.device
        return {
            "human": self.classification.human,
            "machine_class": self.classification.machine_class.value,
            "machine_reason": self.classification.reason,
            "country": self.network.country,
            "asn": self.network.asn,
            "as_org": self.network.as_org,
            "client": self.client,
            "platform": self.platform,
            "data": {
                "evidence": list(self.classification.evidence),
                **{k: v for k, v in (("browser", device.browser), ("os", device.os)) if v},
                **{k: v for k, v in (("device", device.device), ("app", device.app)) if v},
            },
        }


class Enricher:
    """Geo lookups cached by IP and device parses cached by user agent (both bounded); no database use.

    One per process, shared by its threads.
    """

    def __init__(self, geo: GeoLookup, network_cache_size: int = NETWORK_CACHE_SIZE) -> None:
        self.geo = geo
        self.network = functools.lru_cache(maxsize=network_cache_size)(geo.lookup)

    @classmethod
    def open(cls, database: Path | None = None, asn_database: Path | None = None) -> Enricher:
        """With the bundled IPinfo Lite database unless given files (settings geoip_database and
        geoip_asn_database)."""
        return cls(GeoLookup.open(database, asn_database))

    def close(self) -> None:
        self.geo.close()

    def enrich(self, hit: HitFacts) -> Enrichment:
        """Look up the hit's network (unless given) and device, and classify it."""
        network = self.network(hit.ip) if hit.network is NO_NETWORK and hit.ip else hit.network
        device = describe_agent(hit.user_agent, hit.requested_with)
        return Enrichment(hit.kind, network, device, classify_with(hit, device, network))
