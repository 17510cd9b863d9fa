"""The hit journal: tracking hits appended by the hot path, later ingested (``store/ingest_batch.py``).

Appending is the only store work a tracking request waits for, so it is one multi-row INSERT into a
table with no index but its key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine


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
    requested_with: str | None = None
    purpose: str | None = None


_COLUMNS = ", ".join(JournalRow._fields)


_SQLITE_APPEND = f"""
INSERT INTO tracking_hits ({_COLUMNS})
SELECT {", ".join(f"json_extract(value, '$[{n}]')" for n in range(len(JournalRow._fields)))}
FROM json_each(?)
"""
_POSTGRES_TYPES = (
    "bigint",
    "text",
    "bigint",
    "bigint",
    "integer",
    "text",
    "text",
    "text",
    "boolean",
    "text",
    "text",
    "text",
    "text",
)
assert len(_POSTGRES_TYPES) == len(JournalRow._fields)
_POSTGRES_APPEND = f"""
INSERT INTO tracking_hits ({_COLUMNS})
SELECT {", ".join(f"(hit->>{n})::{kind}" for n, kind in enumerate(_POSTGRES_TYPES))}
FROM json_array_elements(%s::json) AS hit
"""


def append_hits(conn: Connection, rows: Sequence[JournalRow]) -> None:
    """Append hits within the caller's transaction."""
    if rows:
        statement = _POSTGRES_APPEND if conn.dialect.name == "postgresql" else _SQLITE_APPEND
        conn.exec_driver_sql(statement, (json.dumps(rows),))


class JournalUnavailable(Exception):
    """The journal could not be written for now (database down, locked, connection lost)."""


class JournalRefused(Exception):
    """The database refused these rows as they are (a value it cannot store)."""


class JournalWriter:
    """A process's own connection for appending hits, kept open and used through the driver.

    A batch is ONE statement in autocommit mode, its rows passed as one JSON array: the only moment
    the writer thread gives up the GIL for the database and must win it back. Beside an event loop
    that keeps the GIL busy, every extra statement (a BEGIN, a COMMIT, a second INSERT) can cost a
    whole switch interval (5 ms) of waiting; SQLAlchemy's per-statement work is skipped as well.
    Used from one thread at a time (the recorder's writer thread).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._statement = _SQLITE_APPEND if engine.dialect.name == "sqlite" else _POSTGRES_APPEND
        self._dbapi: Any = engine.dialect.loaded_dbapi
        self._connection: Any = None

    def append(self, rows: Sequence[JournalRow]) -> None:
        """Append and commit; raises JournalUnavailable or JournalRefused, having stored nothing."""
        if not rows:
            return
        connection = self._connection or self._connect()
        cursor = connection.cursor()
        try:
            cursor.execute(self._statement, (json.dumps(rows),))
        except self._dbapi.Error as exc:
            self._abandon()
            refused = (self._dbapi.DataError, self._dbapi.IntegrityError)
            raise (JournalRefused if isinstance(exc, refused) else JournalUnavailable)(str(exc)) from exc
        finally:
            cursor.close()

    def close(self) -> None:
        if self._connection is not None:
            # Back to the pool as the pool handed it out (SQLite's is in autocommit mode anyway).
            if self._engine.dialect.name == "postgresql":
                self._connection.dbapi_connection.autocommit = False
            self._connection.close()
            self._connection = None

    def _connect(self) -> Any:
        try:
            connection: Any = self._engine.raw_connection()
            if self._engine.dialect.name == "postgresql":
                connection.dbapi_connection.autocommit = True
        except Exception as exc:
            raise JournalUnavailable(str(exc)) from exc
        self._connection = connection
        return connection

    def _abandon(self) -> None:
        # After any error the connection's state is unknown: roll back and start afresh next time.
        connection, self._connection = self._connection, None
        try:
            connection.rollback()
            connection.invalidate()
        except Exception:  # noqa: S110 - it is being thrown away
            pass


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
