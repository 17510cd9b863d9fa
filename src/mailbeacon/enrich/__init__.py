"""Insight into opens and clicks: where from (country, network), what (mail client, platform) and who
(a person or a machine, with the evidence). Pure functions and small objects; no database access.

The ingest step calls one Enricher per process, once per hit::

    enricher = Enricher.open(settings.geoip_database, settings.geoip_asn_database)
    found = enricher.enrich(HitFacts(kind="open", ip=ip, user_agent=ua, method="GET"))
    row.update(found.event_fields())  # human, machine_class, machine_reason, country, asn, as_org,
                                      # client, platform, data

The parts, each usable alone:

- ``GeoLookup.open(database, asn_database).lookup(ip) -> Network(country, asn, as_org)``: IPinfo Lite
  (bundled, the default) or your own IPinfo / MaxMind GeoLite2 files; ``.attribution`` lists the
  notices the data's licences ask for.
- ``describe_agent(user_agent, requested_with) -> Device(client, platform, browser, os, device, app,
  bot)``: platform is "desktop", "webmail", "mobile" or "unknown"; parses are cached.
- ``classify(HitFacts) -> Classification(machine_class, human, evidence)``; ``burst_clicks(clicks,
  link_count)`` finds the clicks of a copy that form a scanner burst; ``purpose_of(headers)`` picks the
  prefetch header a request carries.
"""

from __future__ import annotations

from mailbeacon.enrich.device import Device, describe_agent
from mailbeacon.enrich.enricher import Enricher, Enrichment
from mailbeacon.enrich.geo import GeoLookup, Network
from mailbeacon.enrich.machine import (
    Classification,
    CopyClick,
    HitFacts,
    burst_clicks,
    classify,
    purpose_of,
)

__all__ = [
    "Classification",
    "CopyClick",
    "Device",
    "Enricher",
    "Enrichment",
    "GeoLookup",
    "HitFacts",
    "Network",
    "burst_clicks",
    "classify",
    "describe_agent",
    "purpose_of",
]
