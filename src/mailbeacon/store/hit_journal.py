"""The hit journal: tracking hits appended by the hot path, later ingested (``store/ingest_batch.py``).

Appending is the only store work a tracking request waits for, so it is one multi-row INSERT into a
table with no index but its key.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine

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
