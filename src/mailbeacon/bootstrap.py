"""Setting a store up: schema, signing key, accounts and their keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update

from mailbeacon.store import Store
from mailbeacon.store.accounts import (
    Account,
    create_account,
    create_api_key,
    find_account_by_name,
    get_account,
)
from mailbeacon.store.migrate import upgrade
from mailbeacon.store.signing_keys import ensure_signing_key
from mailbeacon.store.tables import accounts, api_keys

DEMO_ACCOUNT = "demo"
DEMO_KEY_NAME = "demo (replaced at every start)"


@dataclass(frozen=True)
class NewAccount:
    account: Account
    api_key: str


def prepare_store(store: Store) -> None:
    """Bring the schema up to date and make sure tokens can be signed."""
    upgrade(store.engine)
    with store.write() as conn:
        ensure_signing_key(conn)


def add_account(store: Store, name: str) -> NewAccount:
    with store.write() as conn:
        if find_account_by_name(conn, name) is not None:
            raise ValueError(
                f"an account named {name!r} exists already; `mailbeacon api-key create` adds a key"
            )
        account = create_account(conn, name)
        key = create_api_key(conn, account.id, "created by mailbeacon init")
    return NewAccount(account, key)


def demo_account(store: Store) -> NewAccount:
    """The quick start's account, with a fresh key each start (keys are stored hashed, never re-shown)."""
    with store.write() as conn:
        account = find_account_by_name(conn, DEMO_ACCOUNT) or create_account(conn, DEMO_ACCOUNT)
        conn.execute(
            update(api_keys)
            .where(api_keys.c.account_id == account.id, api_keys.c.name == DEMO_KEY_NAME)
            .where(api_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        key = create_api_key(conn, account.id, DEMO_KEY_NAME)
    return NewAccount(account, key)


def resolve_account(store: Store, name_or_id: str | None) -> Account:
    """An account named by name or id, or the only one there is."""
    with store.read() as conn:
        if name_or_id is None:
            ids = conn.execute(select(accounts.c.id).limit(2)).scalars().all()
            if len(ids) != 1:
                raise LookupError("several accounts (or none) exist: name one with --account")
            found = get_account(conn, ids[0])
        elif name_or_id.isdigit():
            found = get_account(conn, int(name_or_id))
        else:
            found = find_account_by_name(conn, name_or_id)
    if found is None:
        raise LookupError(f"no account {name_or_id!r}")
    return found
