"""End-to-end helpers: accounts made by the real CLI, and a delivery queue that no test leaves behind."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import delete

from mailbeacon.store import Store
from mailbeacon.store.tables import deliveries
from tests.support import run_cli


def init_account(database_url: str, name: str) -> str:
    out = run_cli("init", "--database-url", database_url, "--account", name)
    match = re.search(r"API key \(shown only now, keep it safe\): (mb_\S+)", out)
    assert match, out
    return match.group(1)


@pytest.fixture(autouse=True)
def empty_delivery_queue(request: pytest.FixtureRequest) -> Iterator[None]:
    """The PostgreSQL database is shared by the whole run: a copy one test leaves queued (deferred to a
    receiver that is gone) would otherwise be delivered by the next test's server to its receiver."""
    if "database_url" not in request.fixturenames:
        yield
        return
    url: str = request.getfixturevalue("database_url")
    yield
    store = Store.from_url(url)
    try:
        with store.write() as conn:
            conn.execute(delete(deliveries))
    finally:
        store.dispose()
