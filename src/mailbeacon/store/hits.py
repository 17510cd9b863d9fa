"""The queries behind tracking hits: who a recipient copy is and where its links go."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select, text

from mailbeacon.store.tables import links, recipients

# On PostgreSQL, ids come from a sequence before commit, so a transaction that commits late could add
# an event with an id below one a reader has already paged past. Every transaction that inserts events
# takes this lock just before inserting and holds it to its commit, so events become visible in id
# order and a cursor on the id never skips one. (SQLite serialises writers, so it needs nothing.)
EVENT_ORDER_LOCK = 0x6D62_6576  # "mbev"

_CHUNK = 500


def take_event_order_lock(conn: Connection) -> None:
    """Before inserting events on PostgreSQL (see EVENT_ORDER_LOCK); held until the transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENT_ORDER_LOCK})


@dataclass(frozen=True, slots=True)
class RecipientRef:
    account_id: int
    message_id: int
    email: str


def load_recipients(conn: Connection, ids: Sequence[int]) -> dict[int, RecipientRef]:
    found: dict[int, RecipientRef] = {}
    for start in range(0, len(ids), _CHUNK):
        columns = (recipients.c.id, recipients.c.account_id, recipients.c.message_id, recipients.c.email)
        rows = conn.execute(select(*columns).where(recipients.c.id.in_(ids[start : start + _CHUNK])))
        for row in rows:
            found[row.id] = RecipientRef(row.account_id, row.message_id, row.email)
    return found


def load_links(conn: Connection, message_ids: Sequence[int]) -> dict[tuple[int, int], str]:
    found: dict[tuple[int, int], str] = {}
    for start in range(0, len(message_ids), _CHUNK):
        rows = conn.execute(
            select(links.c.message_id, links.c.position, links.c.url).where(
                links.c.message_id.in_(message_ids[start : start + _CHUNK])
            )
        )
        for row in rows:
            found[(row.message_id, row.position)] = row.url
    return found
