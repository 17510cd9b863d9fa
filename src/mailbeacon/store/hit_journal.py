"""The hit journal: tracking hits appended by the hot path, then ingested into events.

Appending is the only store work a tracking request waits for, so it is one multi-row INSERT into a
table with no index but its key. Ingesting moves the oldest hits into ``events`` (with the recipient's
account and message), marks engaged copies delivered and deletes the hits, all in one transaction, so
every journalled hit becomes exactly one event or, if its recipient is gone, none. (Unsubscribes are
also suppressed when they are journalled, not only when ingested.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine

from mailbeacon.events import SUPERSEDED_BY_ENGAGEMENT, EventType, RecipientStatus
from mailbeacon.store.hits import take_event_order_lock

_POWERS = tuple(1 << n for n in range(9, -1, -1))  # 512, 256, ..., 1


class JournalRow(NamedTuple):
    """One hit as the hot path stores it (the journal's columns, in this order)."""

    received_us: int  # microseconds since the Unix epoch
    type: str
    account_id: int
    recipient_id: int
    link_position: int | None
    ip: str | None
    user_agent: str | None
    http_method: str
    human: bool
    machine_class: str | None
    machine_reason: str | None


_COLUMNS = ", ".join(JournalRow._fields)


@cache
def _append_statement(rows: int, placeholder: str) -> str:
    one = "(" + ", ".join([placeholder] * len(JournalRow._fields)) + ")"
    return f"INSERT INTO tracking_hits ({_COLUMNS}) VALUES " + ", ".join([one] * rows)


def _append_chunks(rows: Sequence[JournalRow], placeholder: str) -> Iterator[tuple[str, tuple[object, ...]]]:
    """One statement per power of two (a batch of 75 is 64 + 8 + 2 + 1 rows): few distinct
    statements, so the driver's statement cache always holds them, and the database inserts each
    chunk in one call that, for SQLite, runs without holding the GIL."""
    start = 0
    for size in _POWERS:
        while len(rows) - start >= size:
            chunk = rows[start : start + size]
            yield _append_statement(size, placeholder), tuple(v for row in chunk for v in row)
            start += size


def append_hits(conn: Connection, rows: Sequence[JournalRow]) -> None:
    """Append hits within the caller's transaction."""
    placeholder = "%s" if conn.dialect.name == "postgresql" else "?"
    for statement, values in _append_chunks(rows, placeholder):
        conn.exec_driver_sql(statement, values)


class JournalUnavailable(Exception):
    """The journal could not be written for now (database down, locked, connection lost)."""


class JournalRefused(Exception):
    """The database refused these rows as they are (a value it cannot store)."""


class JournalWriter:
    """A process's own connection for appending hits, kept open and used through the driver.

    A batch costs a BEGIN, one INSERT per power of two and a COMMIT, without SQLAlchemy's
    per-statement and per-transaction work, which at a few hits a batch cost more than the
    inserts. Used from one thread at a time (the recorder's writer thread).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._placeholder = "?" if self._sqlite else "%s"
        self._dbapi: Any = engine.dialect.loaded_dbapi
        self._connection: Any = None

    def append(self, rows: Sequence[JournalRow]) -> None:
        """Append and commit; raises JournalUnavailable or JournalRefused, having rolled back."""
        if not rows:
            return
        connection = self._connection or self._connect()
        cursor = connection.cursor()
        try:
            if self._sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            for statement, values in _append_chunks(rows, self._placeholder):
                cursor.execute(statement, values)
            if self._sqlite:
                cursor.execute("COMMIT")
            else:
                connection.commit()
        except self._engine.dialect.loaded_dbapi.Error as exc:
            self._abandon()
            refused = (
                self._engine.dialect.loaded_dbapi.DataError,
                self._engine.dialect.loaded_dbapi.IntegrityError,
            )
            raise (JournalRefused if isinstance(exc, refused) else JournalUnavailable)(str(exc)) from exc
        finally:
            cursor.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> Any:
        try:
            self._connection = self._engine.raw_connection()
        except Exception as exc:
            raise JournalUnavailable(str(exc)) from exc
        return self._connection

    def _abandon(self) -> None:
        # After any error the connection's state is unknown: roll back and start afresh next time.
        connection, self._connection = self._connection, None
        try:
            connection.rollback()
            connection.invalidate()
        except Exception:  # noqa: S110 - it is being thrown away
            pass


@dataclass(frozen=True, slots=True)
class Ingested:
    hits: int  # journal rows consumed
    events: int  # events written (hits whose recipient no longer exists write none)


_ENGAGED = (EventType.OPENED.value, EventType.CLICKED.value)
_SUPERSEDED = tuple(status.value for status in SUPERSEDED_BY_ENGAGEMENT)
_EVENT_COLUMNS = (
    "account_id, message_id, recipient_id, type, occurred_at, link_position, ip, user_agent,"
    " http_method, human, machine_class, machine_reason"
)


def _in_list(values: Sequence[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)  # constants of mailbeacon's, never input


# SQLite serialises writers, so the statements of one transaction see the same journal.
_SQLITE_UPTO = "SELECT max(id) FROM (SELECT id FROM tracking_hits ORDER BY id LIMIT ?)"
_SQLITE_EVENTS = f"""
INSERT INTO events ({_EVENT_COLUMNS})
SELECT r.account_id, r.message_id, h.recipient_id, h.type,
       strftime('%Y-%m-%d %H:%M:%S', h.received_us / 1000000, 'unixepoch')
           || printf('.%06d', h.received_us % 1000000),
       h.link_position, h.ip, h.user_agent, h.http_method, h.human, h.machine_class, h.machine_reason
FROM tracking_hits h JOIN recipients r ON r.id = h.recipient_id AND r.account_id = h.account_id
WHERE h.id <= ? ORDER BY h.id
"""
_SQLITE_DELIVERED = f"""
UPDATE recipients SET status = '{RecipientStatus.DELIVERED.value}'
WHERE id IN (SELECT recipient_id FROM tracking_hits WHERE id <= ? AND type IN ({_in_list(_ENGAGED)}))
  AND status IN ({_in_list(_SUPERSEDED)})
"""
_SQLITE_DELETE = "DELETE FROM tracking_hits WHERE id <= ?"

# PostgreSQL: journal rows can commit out of id order, so the rows ingested are exactly those one
# DELETE ... RETURNING took, and everything else reads from it in the same statement.
_POSTGRES_INGEST = f"""
WITH moved AS (
    DELETE FROM tracking_hits
    WHERE id IN (SELECT id FROM tracking_hits ORDER BY id LIMIT %s)
    RETURNING *
), joined AS (
    SELECT m.*, r.message_id
    FROM moved m JOIN recipients r ON r.id = m.recipient_id AND r.account_id = m.account_id
), delivered AS (
    UPDATE recipients SET status = '{RecipientStatus.DELIVERED.value}'
    WHERE id IN (SELECT recipient_id FROM joined WHERE type IN ({_in_list(_ENGAGED)}))
      AND status IN ({_in_list(_SUPERSEDED)})
    RETURNING id
), inserted AS (
    INSERT INTO events ({_EVENT_COLUMNS})
    SELECT account_id, message_id, recipient_id, type,
           to_timestamp(received_us / 1000000) + (received_us %% 1000000) * interval '1 microsecond',
           link_position, ip, user_agent, http_method, human, machine_class, machine_reason
    FROM joined ORDER BY id
    RETURNING id
)
SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM inserted), (SELECT count(*) FROM delivered)
"""


def ingest_hits(conn: Connection, limit: int) -> Ingested:
    """Move up to ``limit`` of the oldest journalled hits into events, in the caller's transaction."""
    if conn.dialect.name == "postgresql":
        take_event_order_lock(conn)
        row = conn.exec_driver_sql(_POSTGRES_INGEST, (limit,)).one()
        return Ingested(int(row[0]), int(row[1]))
    upto = conn.exec_driver_sql(_SQLITE_UPTO, (limit,)).scalar()
    if upto is None:
        return Ingested(0, 0)
    events = conn.exec_driver_sql(_SQLITE_EVENTS, (upto,)).rowcount
    conn.exec_driver_sql(_SQLITE_DELIVERED, (upto,))
    hits = conn.exec_driver_sql(_SQLITE_DELETE, (upto,)).rowcount
    return Ingested(hits, events)


def journal_tail(conn: Connection) -> int | None:
    """The id of the newest journalled hit, or None when the journal is empty."""
    newest = conn.exec_driver_sql("SELECT max(id) FROM tracking_hits").scalar()
    return None if newest is None else int(newest)


def waiting_up_to(conn: Connection, newest: int) -> bool:
    """Whether a hit with an id up to ``newest`` is still waiting to be ingested."""
    placeholder = "%s" if conn.dialect.name == "postgresql" else "?"
    statement = f"SELECT 1 FROM tracking_hits WHERE id <= {placeholder} LIMIT 1"
    return conn.exec_driver_sql(statement, (newest,)).first() is not None


def from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)
