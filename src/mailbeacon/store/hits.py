"""The queries behind tracking hits: who a recipient copy is, where its links go, and storing events."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import Connection, select, text, update

from mailbeacon.events import SUPERSEDED_BY_ENGAGEMENT, RecipientStatus
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


def mark_delivered(conn: Connection, recipient_ids: Iterable[int]) -> None:
    """An open or click proves delivery: move copies still short of it to delivered."""
    ids = sorted(recipient_ids)
    for start in range(0, len(ids), _CHUNK):
        conn.execute(
            update(recipients)
            .where(
                recipients.c.id.in_(ids[start : start + _CHUNK]),
                recipients.c.status.in_([s.value for s in SUPERSEDED_BY_ENGAGEMENT]),
            )
            .values(status=RecipientStatus.DELIVERED.value)
        )


class EventRow(NamedTuple):
    """One tracking event as inserted by the hot path (the columns it fills, in this order)."""

    account_id: int
    message_id: int
    recipient_id: int
    type: str
    occurred_at: datetime
    link_position: int | None
    ip: str | None
    user_agent: str | None
    http_method: str
    human: bool
    machine_class: str | None
    machine_reason: str | None


_COLUMNS = ", ".join(EventRow._fields)
_INSERT_SQLITE = f"INSERT INTO events ({_COLUMNS}) VALUES ({', '.join('?' * len(EventRow._fields))})"
_INSERT_POSTGRES = f"INSERT INTO events ({_COLUMNS}) VALUES ({', '.join(['%s'] * len(EventRow._fields))})"
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy's DateTime keeps times in SQLite (UTC here)


def insert_events(conn: Connection, rows: Sequence[EventRow]) -> None:
    """Insert events; call it last in the transaction, right before the commit (see EVENT_ORDER_LOCK).

    This is the hottest statement of all, so it goes straight to the driver's executemany with
    plain tuples; the values are converted here exactly as the column types would convert them.
    """
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        take_event_order_lock(conn)
        conn.exec_driver_sql(_INSERT_POSTGRES, list(rows))
        return
    conn.exec_driver_sql(_INSERT_SQLITE, [_for_sqlite(row) for row in rows])


def _for_sqlite(row: EventRow) -> tuple[object, ...]:
    when = row.occurred_at.astimezone(UTC).strftime(_SQLITE_TIME)
    return (*row[:4], when, *row[5:9], int(row.human), *row[10:])
