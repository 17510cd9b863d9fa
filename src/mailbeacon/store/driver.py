"""The mail path's hottest statements, run on the database driver's own cursor.

Every relayed message and delivery runs a dozen small statements; through SQLAlchemy Core each costs
~30 µs even prebuilt, through the DBAPI cursor ~2-4 µs. The cursor is the one of the caller's
transaction (same connection, same BEGIN/COMMIT), so these statements mix freely with Core ones.
Values are converted here exactly as the column types would convert them (see store/hits.py, which
does the same for tracking events): times as SQLAlchemy keeps them in SQLite (UTC text), JSON as
``json.dumps`` text, booleans as integers; PostgreSQL (psycopg 3) takes the Python values as they are.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy's DateTime keeps times in SQLite


class Statement:
    """One SQL text written with ``?`` placeholders, in both drivers' spellings."""

    __slots__ = ("postgresql", "sqlite")

    def __init__(self, sql: str) -> None:
        self.sqlite = " ".join(sql.split())
        self.postgresql = self.sqlite.replace("?", "%s")


def placeholders(count: int) -> str:
    return ", ".join("?" * count)


class Driver:
    """The DBAPI cursor of a transaction, and the conversions its values need."""

    __slots__ = ("_cursor", "postgresql")

    def __init__(self, conn: Connection) -> None:
        self.postgresql = conn.dialect.name == "postgresql"
        self._cursor: Any = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def time(self, value: datetime) -> object:
        if self.postgresql:
            return value
        return value.astimezone(UTC).strftime(SQLITE_TIME)

    def json(self, value: object) -> str:
        return json.dumps(value)

    def flag(self, value: bool) -> object:
        return value if self.postgresql else int(value)

    def _sql(self, statement: Statement) -> str:
        return statement.postgresql if self.postgresql else statement.sqlite

    def execute(self, statement: Statement, params: Sequence[object]) -> int:
        """Run one statement; the number of rows it changed."""
        cursor = self._cursor
        cursor.execute(self._sql(statement), params)
        return int(cursor.rowcount)

    def executemany(self, statement: Statement, rows: Sequence[Sequence[object]]) -> None:
        if rows:
            self._cursor.executemany(self._sql(statement), rows)

    def returning_each(self, statement: Statement, rows: Sequence[Sequence[object]]) -> list[Any]:
        """The first column returned for each row inserted, in the rows' order."""
        cursor = self._cursor
        sql = self._sql(statement)
        if not self.postgresql:
            # sqlite3 cannot return rows from executemany; in-process, one statement each is cheap.
            return [cursor.execute(sql, row).fetchone()[0] for row in rows]
        found: list[Any] = []
        cursor.executemany(sql, rows, returning=True)  # psycopg 3: one result set per row, in order
        while True:
            found.append(cursor.fetchone()[0])
            if not cursor.nextset():
                return found

    def rows(self, statement: Statement, params: Sequence[object]) -> list[tuple[Any, ...]]:
        cursor = self._cursor
        cursor.execute(self._sql(statement), params)
        return list(cursor.fetchall())

    def scalar(self, statement: Statement, params: Sequence[object]) -> Any:
        """The first column of the one row the statement returns (``INSERT ... RETURNING id``)."""
        cursor = self._cursor
        cursor.execute(self._sql(statement), params)
        row = cursor.fetchone()
        if row is None:
            raise LookupError("the statement returned no row")
        return row[0]

    def read_time(self, value: Any) -> datetime:
        """A time column as read back: aware UTC, whatever the driver returned."""
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
