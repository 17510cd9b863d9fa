"""Ingesting one chunk of the hit journal: events, engagement rollups and delivered statuses.

The chunk is first moved out of the journal into a temporary table, ``ingest_batch``, with each hit's
account and message (hits whose recipient is gone are dropped there). Every later statement reads
that table, so the same SQL serves SQLite and PostgreSQL, and the events, the rollups and the
journal's deletion commit together: each hit counts once, in the events and in the rollups alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection

from mailbeacon.events import SUPERSEDED_BY_ENGAGEMENT, EventType, RecipientStatus
from mailbeacon.store.hits import take_event_order_lock


@dataclass(frozen=True, slots=True)
class Ingested:
    hits: int  # journal rows consumed
    events: int  # events written (hits whose recipient no longer exists write none)


def _in_list(values: Sequence[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)  # mailbeacon's own constants, never input


_OPENED, _CLICKED = EventType.OPENED.value, EventType.CLICKED.value
_ENGAGED = _in_list((_OPENED, _CLICKED))
_SUPERSEDED = _in_list(tuple(status.value for status in SUPERSEDED_BY_ENGAGEMENT))
_MOVED_COLUMNS = (
    "id, account_id, message_id, recipient_id, type, occurred_at, link_position, ip, user_agent,"
    " http_method, human, machine_class, machine_reason, received_us, requested_with, purpose"
)
_EVENT_COLUMNS = (
    "account_id, message_id, recipient_id, type, occurred_at, link_position, ip, user_agent,"
    " http_method, human, machine_class, machine_reason, country, asn, as_org, client, platform, data"
)

_SQLITE_BATCH_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS ingest_batch (
    id INTEGER PRIMARY KEY, account_id INTEGER, message_id INTEGER, recipient_id INTEGER, type TEXT,
    occurred_at TEXT, link_position INTEGER, ip TEXT, user_agent TEXT, http_method TEXT,
    human INTEGER, machine_class TEXT, machine_reason TEXT, received_us INTEGER, requested_with TEXT,
    purpose TEXT, country TEXT, asn INTEGER, as_org TEXT, client TEXT, platform TEXT, data TEXT)
"""
_POSTGRES_BATCH_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS ingest_batch (
    id bigint PRIMARY KEY, account_id bigint, message_id bigint, recipient_id bigint, type varchar(24),
    occurred_at timestamptz, link_position integer, ip varchar(45), user_agent text,
    http_method varchar(8), human boolean, machine_class varchar(24), machine_reason text,
    received_us bigint, requested_with text, purpose text, country varchar(2), asn integer,
    as_org varchar(200), client varchar(64), platform varchar(24), data json)
ON COMMIT DELETE ROWS
"""

# SQLite serialises writers, so the statements of one transaction see the same journal.
_SQLITE_UPTO = "SELECT max(id) FROM (SELECT id FROM tracking_hits ORDER BY id LIMIT ?)"
_SQLITE_MOVE = f"""
INSERT INTO ingest_batch ({_MOVED_COLUMNS})
SELECT h.id, r.account_id, r.message_id, h.recipient_id, h.type,
       strftime('%Y-%m-%d %H:%M:%S', h.received_us / 1000000, 'unixepoch')
           || printf('.%06d', h.received_us % 1000000),
       h.link_position, h.ip, h.user_agent, h.http_method, h.human, h.machine_class, h.machine_reason,
       h.received_us, h.requested_with, h.purpose
FROM tracking_hits h JOIN recipients r ON r.id = h.recipient_id AND r.account_id = h.account_id
WHERE h.id <= ?
"""
_SQLITE_DELETE = "DELETE FROM tracking_hits WHERE id <= ?"

# PostgreSQL: journal rows can commit out of id order, so the chunk is exactly what one
# DELETE ... RETURNING took.
_POSTGRES_MOVE = f"""
WITH moved AS (
    DELETE FROM tracking_hits WHERE id IN (SELECT id FROM tracking_hits ORDER BY id LIMIT %s)
    RETURNING *
), kept AS (
    INSERT INTO ingest_batch ({_MOVED_COLUMNS})
    SELECT m.id, r.account_id, r.message_id, m.recipient_id, m.type,
           to_timestamp(m.received_us / 1000000) + (m.received_us %% 1000000) * interval '1 microsecond',
           m.link_position, m.ip, m.user_agent, m.http_method, m.human, m.machine_class, m.machine_reason,
           m.received_us, m.requested_with, m.purpose
    FROM moved m JOIN recipients r ON r.id = m.recipient_id AND r.account_id = m.account_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM kept)
"""


class BatchHit(NamedTuple):
    """An open or click of the chunk, with what its classification needs to know."""

    id: int
    type: str
    received_us: int
    recipient_id: int
    ip: str | None
    user_agent: str | None
    http_method: str
    link_position: int | None
    requested_with: str | None
    purpose: str | None
    link_count: int | None  # tracked links of its message
    sent_at: float | None  # when its copy was first sent, in seconds since the Unix epoch


class EnrichedHit(NamedTuple):
    id: int
    human: bool
    machine_class: str | None
    machine_reason: str | None
    country: str | None
    asn: int | None
    as_org: str | None
    client: str | None
    platform: str | None
    data: dict[str, Any] | None


Enrich = Callable[[list[BatchHit]], list[EnrichedHit]]

_TO_ENRICH = f"""
SELECT b.id, b.type, b.received_us, b.recipient_id, b.ip, b.user_agent, b.http_method, b.link_position,
       b.requested_with, b.purpose, counted.links, sent.at
FROM ingest_batch b
LEFT JOIN (SELECT message_id, count(*) AS links FROM links
           WHERE message_id IN (SELECT message_id FROM ingest_batch) GROUP BY message_id) counted
       ON counted.message_id = b.message_id
LEFT JOIN (SELECT recipient_id, {{epoch}} AS at FROM events
           WHERE type = '{EventType.SENT.value}' AND recipient_id IN (SELECT recipient_id FROM ingest_batch)
           GROUP BY recipient_id) sent
       ON sent.recipient_id = b.recipient_id
WHERE b.type IN ({_ENGAGED}) ORDER BY b.id
"""
# SQLite hands the whole chunk over as one JSON value: one step, so the thread running ingest
# waits for the GIL once rather than once a row.
_SQLITE_TO_ENRICH = (
    "SELECT json_group_array(json_array(id, type, received_us, recipient_id, ip, user_agent, http_method,"
    " link_position, requested_with, purpose, links, at)) FROM ("
    + _TO_ENRICH.format(epoch="(julianday(min(occurred_at)) - 2440587.5) * 86400.0")
    + ")"
)
_POSTGRES_TO_ENRICH = _TO_ENRICH.format(epoch="extract(epoch FROM min(occurred_at))")
_ENRICHED = (
    "human",
    "machine_class",
    "machine_reason",
    "country",
    "asn",
    "as_org",
    "client",
    "platform",
    "data",
)
_SET_ENRICHED = ", ".join(f"{name} = e.{name}" for name in _ENRICHED)
_SQLITE_ENRICHED = f"""
UPDATE ingest_batch SET {_SET_ENRICHED}
FROM (SELECT json_extract(value, '$[0]') AS id,
             {", ".join(f"json_extract(value, '$[{n + 1}]') AS {name}" for n, name in enumerate(_ENRICHED))}
      FROM json_each(?)) AS e
WHERE ingest_batch.id = e.id
"""
_POSTGRES_ENRICHED_TYPES = ("boolean", "text", "text", "text", "integer", "text", "text", "text", "json")
_POSTGRES_ENRICHED = f"""
UPDATE ingest_batch SET {_SET_ENRICHED}
FROM (SELECT (x->>0)::bigint AS id,
             {
    ", ".join(
        f"(x->{n + 1})::{kind} AS {name}" if kind == "json" else f"(x->>{n + 1})::{kind} AS {name}"
        for n, (name, kind) in enumerate(zip(_ENRICHED, _POSTGRES_ENRICHED_TYPES, strict=True))
    )
}
      FROM json_array_elements(%s::json) AS x) AS e
WHERE ingest_batch.id = e.id
"""


def _enrich(conn: Connection, enrich: Enrich, postgres: bool) -> None:
    if postgres:
        found = [BatchHit(*row) for row in conn.exec_driver_sql(_POSTGRES_TO_ENRICH)]
    else:
        found = [BatchHit(*row) for row in json.loads(conn.exec_driver_sql(_SQLITE_TO_ENRICH).scalar_one())]
    if found:
        enriched = json.dumps(enrich(found))
        conn.exec_driver_sql(_POSTGRES_ENRICHED if postgres else _SQLITE_ENRICHED, (enriched,))


_EVENTS = f"INSERT INTO events ({_EVENT_COLUMNS}) SELECT {_EVENT_COLUMNS} FROM ingest_batch ORDER BY id"

_HUMAN = "CASE WHEN human THEN 1 ELSE 0 END"
_PER_RECIPIENT = f"""
per_recipient AS (
    SELECT recipient_id, min(account_id) AS account_id, min(message_id) AS message_id,
        sum(CASE WHEN type = '{_OPENED}' THEN 1 ELSE 0 END) AS opens,
        sum(CASE WHEN type = '{_OPENED}' THEN {_HUMAN} ELSE 0 END) AS human_opens,
        sum(CASE WHEN type = '{_CLICKED}' THEN 1 ELSE 0 END) AS clicks,
        sum(CASE WHEN type = '{_CLICKED}' THEN {_HUMAN} ELSE 0 END) AS human_clicks,
        min(CASE WHEN type = '{_OPENED}' THEN occurred_at END) AS first_opened_at,
        max(CASE WHEN type = '{_OPENED}' THEN occurred_at END) AS last_opened_at,
        min(CASE WHEN type = '{_CLICKED}' THEN occurred_at END) AS first_clicked_at,
        max(CASE WHEN type = '{_CLICKED}' THEN occurred_at END) AS last_clicked_at
    FROM ingest_batch WHERE type IN ({_ENGAGED}) GROUP BY recipient_id
)"""
_COUNTS = ("opens", "human_opens", "clicks", "human_clicks")
_MOMENTS = ("first_opened_at", "last_opened_at", "first_clicked_at", "last_clicked_at")


def _added(table: str, names: Sequence[str]) -> str:
    return ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in names)


def _moments_merged(table: str, least: str, greatest: str) -> str:
    """Earliest firsts and latest lasts of the stored row and the new one (either may be NULL)."""
    merged = []
    for name in _MOMENTS:
        pick = least if name.startswith("first") else greatest
        stored, new = f"{table}.{name}", f"excluded.{name}"
        merged.append(f"{name} = {pick}(coalesce({stored}, {new}), coalesce({new}, {stored}))")
    return ", ".join(merged)


def _newly(before: str, after: str) -> str:
    """Counts the recipients for whom something went from none to some."""
    return f"sum(CASE WHEN {before} = 0 AND {after} > 0 THEN 1 ELSE 0 END)"


_MESSAGE_UNIQUES = (
    "openers",
    "human_openers",
    "pixel_openers",
    "human_pixel_openers",
    "clickers",
    "human_clickers",
)
# Read before the recipients' rows are updated: who is an opener, clicker ... for the first time.
_MESSAGE_ENGAGEMENT = f"""
WITH {_PER_RECIPIENT}, seen AS (
    SELECT p.*, coalesce(e.opens, 0) AS opens0, coalesce(e.human_opens, 0) AS human_opens0,
        coalesce(e.clicks, 0) AS clicks0, coalesce(e.human_clicks, 0) AS human_clicks0
    FROM per_recipient p LEFT JOIN recipient_engagement e ON e.recipient_id = p.recipient_id
)
INSERT INTO message_engagement (message_id, account_id, {", ".join(_COUNTS)}, {", ".join(_MESSAGE_UNIQUES)},
    {", ".join(_MOMENTS)})
SELECT message_id, min(account_id), sum(opens), sum(human_opens), sum(clicks), sum(human_clicks),
    {_newly("opens0 + clicks0", "opens0 + clicks0 + opens + clicks")},
    {_newly("human_opens0 + human_clicks0", "human_opens0 + human_clicks0 + human_opens + human_clicks")},
    {_newly("opens0", "opens")}, {_newly("human_opens0", "human_opens")},
    {_newly("clicks0", "clicks")}, {_newly("human_clicks0", "human_clicks")},
    min(first_opened_at), max(last_opened_at), min(first_clicked_at), max(last_clicked_at)
FROM seen WHERE true GROUP BY message_id
ON CONFLICT (message_id) DO UPDATE SET {_added("message_engagement", _COUNTS + _MESSAGE_UNIQUES)},
    {{moments}}
"""
_RECIPIENT_ENGAGEMENT = f"""
WITH {_PER_RECIPIENT}
INSERT INTO recipient_engagement (recipient_id, account_id, message_id, {", ".join(_COUNTS)},
    {", ".join(_MOMENTS)})
SELECT recipient_id, account_id, message_id, {", ".join(_COUNTS)}, {", ".join(_MOMENTS)}
FROM per_recipient WHERE true
ON CONFLICT (recipient_id) DO UPDATE SET {_added("recipient_engagement", _COUNTS)}, {{moments}}
"""
_PER_LINK_CLICKER = f"""
per_clicker AS (
    SELECT recipient_id, link_position, min(account_id) AS account_id, min(message_id) AS message_id,
        count(*) AS clicks, sum({_HUMAN}) AS human_clicks
    FROM ingest_batch WHERE type = '{_CLICKED}' AND link_position IS NOT NULL
    GROUP BY recipient_id, link_position
)"""
# Read before link_clicks is updated: who clicks this link for the first time.
_LINK_ENGAGEMENT = f"""
WITH {_PER_LINK_CLICKER}, seen AS (
    SELECT p.*, c.clicks AS clicks0, coalesce(c.human_clicks, 0) AS human_clicks0
    FROM per_clicker p
    LEFT JOIN link_clicks c ON c.recipient_id = p.recipient_id AND c.link_position = p.link_position
)
INSERT INTO link_engagement (message_id, link_position, account_id, clicks, human_clicks, clickers,
    human_clickers)
SELECT message_id, link_position, min(account_id), sum(clicks), sum(human_clicks),
    sum(CASE WHEN clicks0 IS NULL THEN 1 ELSE 0 END), {_newly("human_clicks0", "human_clicks")}
FROM seen WHERE true GROUP BY message_id, link_position
ON CONFLICT (message_id, link_position) DO UPDATE SET
    {_added("link_engagement", ("clicks", "human_clicks", "clickers", "human_clickers"))}
"""
_LINK_CLICKS = f"""
WITH {_PER_LINK_CLICKER}
INSERT INTO link_clicks (recipient_id, link_position, account_id, message_id, clicks, human_clicks)
SELECT recipient_id, link_position, account_id, message_id, clicks, human_clicks FROM per_clicker WHERE true
ON CONFLICT (recipient_id, link_position) DO UPDATE SET {_added("link_clicks", ("clicks", "human_clicks"))}
"""
_DELIVERED = f"""
UPDATE recipients SET status = '{RecipientStatus.DELIVERED.value}'
WHERE id IN (SELECT recipient_id FROM ingest_batch WHERE type IN ({_ENGAGED}))
  AND status IN ({_SUPERSEDED})
"""
# SQLite's two-argument min() and max() are its LEAST and GREATEST.
_SQLITE_ROLLUPS = (
    _MESSAGE_ENGAGEMENT.format(moments=_moments_merged("message_engagement", "min", "max")),
    _RECIPIENT_ENGAGEMENT.format(moments=_moments_merged("recipient_engagement", "min", "max")),
    _LINK_ENGAGEMENT,
    _LINK_CLICKS,
    _DELIVERED,
)
_POSTGRES_ROLLUPS = (
    _MESSAGE_ENGAGEMENT.format(moments=_moments_merged("message_engagement", "least", "greatest")),
    _RECIPIENT_ENGAGEMENT.format(moments=_moments_merged("recipient_engagement", "least", "greatest")),
    _LINK_ENGAGEMENT,
    _LINK_CLICKS,
    _DELIVERED,
)


def ingest_hits(conn: Connection, limit: int, enrich: Enrich | None = None) -> Ingested:
    """Move up to ``limit`` of the oldest journalled hits into events and the rollups, in the
    caller's transaction."""
    postgres = conn.dialect.name == "postgresql"
    conn.exec_driver_sql(_POSTGRES_BATCH_TABLE if postgres else _SQLITE_BATCH_TABLE)
    if postgres:
        take_event_order_lock(conn)
        hits, kept = conn.exec_driver_sql(_POSTGRES_MOVE, (limit,)).one()
    else:
        conn.exec_driver_sql("DELETE FROM ingest_batch")
        upto = conn.exec_driver_sql(_SQLITE_UPTO, (limit,)).scalar()
        if upto is None:
            return Ingested(0, 0)
        kept = conn.exec_driver_sql(_SQLITE_MOVE, (upto,)).rowcount
        hits = conn.exec_driver_sql(_SQLITE_DELETE, (upto,)).rowcount
    if kept:
        if enrich is not None:
            _enrich(conn, enrich, postgres)
        conn.exec_driver_sql(_EVENTS)
        for statement in _POSTGRES_ROLLUPS if postgres else _SQLITE_ROLLUPS:
            conn.exec_driver_sql(statement)
    return Ingested(int(hits), int(kept))
