"""Ingest: turning journalled tracking hits into events.

The hot path only appends hits to the journal (``store/hit_journal.py``). Every web process ingests
in the background; anything that reads events, statuses or numbers first calls ``catch_up``, so a
hit that was answered before the read is always counted by it, whichever process took the hit.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from functools import cache
from pathlib import Path

from mailbeacon.config import Settings
from mailbeacon.enrich import CopyClick, Enricher, HitFacts
from mailbeacon.events import EventType
from mailbeacon.store import Store
from mailbeacon.store.hit_journal import journal_tail, waiting_up_to
from mailbeacon.store.ingest_batch import BatchHit, EnrichedHit, Ingested, ingest_hits

log = logging.getLogger(__name__)

INGEST_CHUNK = 2000


@cache
def enricher_for(database: Path | None = None, asn_database: Path | None = None) -> Enricher:
    """One Enricher per process and pair of database files (the bundled IPinfo Lite by default)."""
    return Enricher.open(database, asn_database)


def enricher_from(settings: Settings) -> Enricher:
    """The Enricher for the IP databases a configuration names."""
    return enricher_for(settings.geoip_database, settings.geoip_asn_database)


def classified(enricher: Enricher, hits: list[BatchHit]) -> list[EnrichedHit]:
    """Where each open and click came from, on what, and whether a person made it (enrich/)."""
    clicks: dict[int, list[CopyClick]] = defaultdict(list)
    for hit in hits:
        if hit.type == EventType.CLICKED.value:
            clicks[hit.recipient_id].append(CopyClick(hit.received_us / 1e6, hit.link_position, hit.ip))
    found = []
    for hit in hits:
        at = hit.received_us / 1e6
        click = hit.type == EventType.CLICKED.value
        facts = HitFacts(
            kind="click" if click else "open",
            method=hit.http_method,
            user_agent=hit.user_agent,
            requested_with=hit.requested_with,
            ip=hit.ip,
            purpose=hit.purpose,
            seconds_since_sent=None if hit.sent_at is None else at - float(hit.sent_at),
            at=at,
            link_position=hit.link_position,
            link_count=hit.link_count,
            copy_clicks=clicks[hit.recipient_id] if click else (),
        )
        fields = enricher.enrich(facts).event_fields()
        found.append(EnrichedHit(hit.id, *(fields[name] for name in EnrichedHit._fields[1:])))
    return found


def ingest_some(store: Store, limit: int = INGEST_CHUNK, enricher: Enricher | None = None) -> Ingested:
    """Ingest up to ``limit`` of the oldest hits, in one transaction."""
    chosen = enricher or enricher_for()
    with store.write() as conn:
        return ingest_hits(conn, limit, lambda hits: classified(chosen, hits))


def catch_up(store: Store, enricher: Enricher | None = None) -> int:
    """Ingest every hit journalled before this call; returns how many hits were ingested."""
    with store.read() as conn:
        newest = journal_tail(conn)
    total = 0
    while newest is not None:
        done = ingest_some(store, enricher=enricher)
        total += done.hits
        if not done.hits:
            break
        with store.read() as conn:
            if not waiting_up_to(conn, newest):
                break
    return total
