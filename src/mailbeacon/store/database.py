"""The Store: an engine plus read and write transactions that mean the same on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from mailbeacon.store.engine import IMMEDIATE, make_engine


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 8, sqlite_synchronous: str = "full") -> Store:
        return cls(make_engine(url, pool_size=pool_size, sqlite_synchronous=sqlite_synchronous))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self, *, snapshot: bool = False) -> Iterator[Connection]:
        """A read transaction; with ``snapshot`` every query in it sees the same moment, so numbers
        read by several queries add up (SQLite's read transactions always do)."""
        with self.engine.connect() as conn:
            if snapshot and self.dialect == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction that commits on success and rolls back on any error."""
        with self.engine.connect() as conn:
            conn.execution_options(**{IMMEDIATE: True})
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        self.engine.dispose()
