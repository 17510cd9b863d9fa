"""API keys are stored hashed and open exactly one account."""

from __future__ import annotations

from sqlalchemy import select

from mailbeacon.rewrite import DEFAULT_EXCLUDED_DOMAINS
from mailbeacon.store import Store
from mailbeacon.store.accounts import account_for_api_key, update_settings
from mailbeacon.store.tables import api_keys
from tests.conftest import new_account


def test_keys_are_hashed_and_scoped(store: Store) -> None:
    first = new_account(store)
    second = new_account(store)
    with store.read() as conn:
        stored = [bytes(v) for v in conn.execute(select(api_keys.c.key_hash)).scalars()]
        assert all(first.api_key.encode() not in v for v in stored)
        found = account_for_api_key(conn, first.api_key)
        assert found is not None
        assert found.id == first.account.id
        found = account_for_api_key(conn, second.api_key)
        assert found is not None
        assert found.id == second.account.id
        assert account_for_api_key(conn, first.api_key + "x") is None
        assert account_for_api_key(conn, "not-a-key") is None


def test_excluded_domains_default_and_edit(store: Store) -> None:
    keyed = new_account(store)
    assert keyed.account.excluded_domains == DEFAULT_EXCLUDED_DOMAINS
    with store.write() as conn:
        changed = update_settings(conn, keyed.account.id, {"excluded_domains": [" Example.COM ", ""]})
    assert changed.excluded_domains == ("example.com",)
