"""The migrations build exactly the schema the code declares, on both stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from mailbeacon.store import Store
from mailbeacon.store.migrate import is_up_to_date
from mailbeacon.store.tables import metadata


def test_migrations_match_the_declared_tables(store: Store) -> None:
    assert is_up_to_date(store.engine)
    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []


def test_every_customer_table_carries_its_account(store: Store) -> None:
    shared = {"accounts", "signing_keys", "alembic_version"}
    names = set(inspect(store.engine).get_table_names()) - shared
    assert names >= {"api_keys", "messages", "recipients", "links", "events", "suppressions"}
    for name in names:
        columns = {c["name"] for c in inspect(store.engine).get_columns(name)}
        assert "account_id" in columns, name


def test_sqlite_durability_is_a_setting(tmp_path: Path) -> None:
    base = tmp_path
    for setting, expected in (("full", 2), ("normal", 1)):
        store = Store.from_url(f"sqlite:///{base / f'{setting}.db'}", sqlite_synchronous=setting)
        with store.read() as conn:
            assert conn.execute(text("PRAGMA synchronous")).scalar_one() == expected
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        store.dispose()
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        Store.from_url(f"sqlite:///{base / 'x.db'}", sqlite_synchronous="off")
