"""Fixtures: the two stores (SQLite and PostgreSQL), accounts with keys, and the in-process app."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from starlette.testclient import TestClient

from mailbeacon.app import MailbeaconApp
from mailbeacon.bootstrap import add_account, prepare_store
from mailbeacon.config import Settings
from mailbeacon.store import Store
from mailbeacon.store.accounts import Account
from tests.support import require

PG_ADMIN_URL = os.environ.get("MAILBEACON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_reachable() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated, dropped at the end."""
    require(_pg_reachable(), f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
    name = f"mb_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    store = Store.from_url(url)
    prepare_store(store)
    store.dispose()
    yield url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'mailbeacon.db'}"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    prepare_store(store)
    yield store
    store.dispose()


@dataclass(frozen=True)
class KeyedAccount:
    account: Account
    api_key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def new_account(store: Store, prefix: str = "acct") -> KeyedAccount:
    created = add_account(store, f"{prefix}-{uuid.uuid4().hex[:8]}")
    return KeyedAccount(created.account, created.api_key)


@pytest.fixture
def account(store: Store) -> KeyedAccount:
    return new_account(store)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, public_base_url="http://track.test", roles=["web"])


@pytest.fixture
def app(settings: Settings, store: Store) -> MailbeaconApp:
    return MailbeaconApp(settings, store=store)


@pytest.fixture
def client(app: MailbeaconApp) -> Iterator[TestClient]:
    with TestClient(
        app, base_url="http://track.test", follow_redirects=False, client=("203.0.113.5", 50000)
    ) as test_client:
        yield test_client
