"""Ingest: turning journalled tracking hits into events.

The hot path only appends hits to the journal (``store/hit_journal.py``). Every web process ingests
in the background; anything that reads events, statuses or numbers first calls ``catch_up``, so a
hit that was answered before the read is always counted by it, whichever process took the hit.
"""

from __future__ import annotations

import logging

from mailbeacon.store import Store
from mailbeacon.store.hit_journal import journal_tail, waiting_up_to
from mailbeacon.store.ingest_batch import Ingested, ingest_hits

log = logging.getLogger(__name__)

INGEST_CHUNK = 2000


def ingest_some(store: Store, limit: int = INGEST_CHUNK) -> Ingested:
    """Ingest up to ``limit`` of the oldest hits, in one transaction."""
    with store.write() as conn:
        return ingest_hits(conn, limit)


def catch_up(store: Store) -> int:
    """Ingest every hit journalled before this call; returns how many hits were ingested."""
    with store.read() as conn:
        newest = journal_tail(conn)
    total = 0
    while newest is not None:
        done = ingest_some(store)
        total += done.hits
        if not done.hits:
            break
        with store.read() as conn:
            if not waiting_up_to(conn, newest):
                break
    return total
