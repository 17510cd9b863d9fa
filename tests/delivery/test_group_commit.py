"""The mail path's group commit: shared transactions, a failing job rolls back alone, and on SQLite
the event loop keeps running while another connection holds the write lock."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, delete, select, text

from mailbeacon.store import Store
from mailbeacon.store.batch import BatchWriter
from mailbeacon.store.tables import trusted_networks
from tests.conftest import KeyedAccount, new_account


def adding(account_id: int, network: str, *, fail: bool = False) -> Callable[[Connection], str]:
    def job(conn: Connection) -> str:
        conn.execute(
            text(
                "INSERT INTO trusted_networks (account_id, network, created_at)"
                " VALUES (:account, :network, '2026-01-01 00:00:00.000000')"
            ),
            {"account": account_id, "network": network},
        )
        if fail:
            raise ValueError(network)
        return network

    return job


def networks(store: Store, account_id: int) -> set[str]:
    with store.read() as conn:
        query = select(trusted_networks.c.network).where(trusted_networks.c.account_id == account_id)
        return set(conn.scalars(query))


@pytest.mark.parametrize("on_loop", [True, False])
def test_jobs_share_transactions_and_fail_alone(store: Store, account: KeyedAccount, on_loop: bool) -> None:
    account_id = account.account.id
    # Real networks (other tests read every trusted network), unique in the shared PostgreSQL database.
    octet = uuid.uuid4().int % 250
    names = [f"10.{octet}.{i}.{uuid.uuid4().int % 250}/32" for i in range(8)]

    async def run() -> list[str | BaseException]:
        writer = BatchWriter(store)
        writer.on_loop = on_loop and store.dialect == "sqlite"
        writer.start()
        jobs = [writer.run(adding(account_id, name, fail=i == 3)) for i, name in enumerate(names)]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        await writer.close()
        return results

    results = asyncio.run(run())
    stored = networks(store, account_id)
    with store.write() as conn:  # a network trusts from any test's server: leave none behind
        conn.execute(delete(trusted_networks).where(trusted_networks.c.account_id == account_id))
    assert isinstance(results[3], ValueError)
    assert [r for i, r in enumerate(results) if i != 3] == [n for i, n in enumerate(names) if i != 3]
    assert stored == {n for i, n in enumerate(names) if i != 3}


def test_the_loop_runs_on_while_another_connection_holds_the_write_lock(tmp_path: Path) -> None:
    from mailbeacon.bootstrap import prepare_store

    path = tmp_path / "mailbeacon.db"
    store = Store.from_url(f"sqlite:///{path}")
    prepare_store(store)
    account_id = new_account(store).account.id
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")

    async def run() -> tuple[int, str]:
        writer = BatchWriter(store)
        writer.start()
        pending = asyncio.ensure_future(writer.run(adding(account_id, "192.0.2.0/24")))
        ticks = 0
        for _ in range(20):  # the loop is not blocked while the lock is held
            await asyncio.sleep(0.005)
            ticks += 1
        assert not pending.done()
        holder.execute("COMMIT")
        result = await asyncio.wait_for(pending, timeout=5)
        await writer.close()
        return ticks, result

    assert asyncio.run(run()) == (20, "192.0.2.0/24")
    assert networks(store, account_id) == {"192.0.2.0/24"}
    store.dispose()
