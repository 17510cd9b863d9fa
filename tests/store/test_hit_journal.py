"""The hit journal's own connection: it survives losing its database connection."""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy import func, select

from mailbeacon.store import Store
from mailbeacon.store.hit_journal import JournalRow, JournalUnavailable, JournalWriter
from mailbeacon.store.tables import tracking_hits
from tests.conftest import PG_ADMIN_URL, KeyedAccount, new_account


def rows(account: KeyedAccount, n: int) -> list[JournalRow]:
    now = time.time_ns() // 1000
    return [
        JournalRow(
            now + i, "opened", account.account.id, 10**9 + i, None, None, "test", "GET", True, None, None
        )
        for i in range(n)
    ]


def journalled(store: Store, account: KeyedAccount) -> int:
    with store.read() as conn:
        query = select(func.count()).where(tracking_hits.c.account_id == account.account.id)
        return int(conn.execute(query).scalar_one())


def test_a_batch_of_any_size_is_appended_whole(store: Store, account: KeyedAccount) -> None:
    writer = JournalWriter(store.engine)
    try:
        writer.append(rows(account, 1075))
        assert journalled(store, account) == 1075
    finally:
        writer.close()


def test_a_lost_connection_fails_one_batch_and_the_next_one_reconnects(postgres_url: str) -> None:
    """PostgreSQL only: there the journal's connection is a server process that can be killed."""
    store = Store.from_url(postgres_url)
    account = new_account(store)
    writer = JournalWriter(store.engine)
    try:
        writer.append(rows(account, 3))
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (store.engine.url.database,),
            )
        with pytest.raises(JournalUnavailable):
            writer.append(rows(account, 5))
        writer.append(rows(account, 7))
        assert journalled(store, account) == 10, "the failed batch left nothing behind"
    finally:
        writer.close()
        store.dispose()
