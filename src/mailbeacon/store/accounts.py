"""Accounts, their tracking settings and their API keys."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from mailbeacon.rewrite import DEFAULT_EXCLUDED_DOMAINS
from mailbeacon.store.tables import accounts, api_keys

API_KEY_PREFIX = "mb_"


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    track_opens: bool
    track_clicks: bool
    track_unsubscribes: bool
    scam_prevention: bool
    path_preserving_links: bool
    excluded_domains: tuple[str, ...]
    tracking_base_url: str | None
    timezone: str
    keep_replies: bool = False


SETTING_FIELDS = (
    "track_opens",
    "track_clicks",
    "track_unsubscribes",
    "scam_prevention",
    "path_preserving_links",
    "excluded_domains",
    "tracking_base_url",
    "timezone",
    "keep_replies",
)


def _account(row: Any) -> Account:
    excluded = row.excluded_domains
    return Account(
        id=row.id,
        name=row.name,
        track_opens=row.track_opens,
        track_clicks=row.track_clicks,
        track_unsubscribes=row.track_unsubscribes,
        scam_prevention=row.scam_prevention,
        path_preserving_links=row.path_preserving_links,
        excluded_domains=DEFAULT_EXCLUDED_DOMAINS if excluded is None else tuple(excluded),
        tracking_base_url=row.tracking_base_url,
        timezone=row.timezone,
        keep_replies=row.keep_replies,
    )


def create_account(conn: Connection, name: str) -> Account:
    account_id = conn.execute(
        insert(accounts).values(name=name, created_at=datetime.now(UTC)).returning(accounts.c.id)
    ).scalar_one()
    found = get_account(conn, account_id)
    assert found is not None
    return found


def get_account(conn: Connection, account_id: int) -> Account | None:
    row = conn.execute(select(accounts).where(accounts.c.id == account_id)).one_or_none()
    return None if row is None else _account(row)


def find_account_by_name(conn: Connection, name: str) -> Account | None:
    row = conn.execute(
        select(accounts).where(accounts.c.name == name).order_by(accounts.c.id).limit(1)
    ).one_or_none()
    return None if row is None else _account(row)


def update_settings(conn: Connection, account_id: int, changes: dict[str, Any]) -> Account:
    unknown = set(changes) - set(SETTING_FIELDS)
    if unknown:
        raise ValueError(f"unknown account settings: {', '.join(sorted(unknown))}")
    if "excluded_domains" in changes and changes["excluded_domains"] is not None:
        changes["excluded_domains"] = [d.strip().lower() for d in changes["excluded_domains"] if d.strip()]
    if changes:
        conn.execute(update(accounts).where(accounts.c.id == account_id).values(**changes))
    found = get_account(conn, account_id)
    if found is None:
        raise LookupError(f"no account {account_id}")
    return found


def hash_api_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def create_api_key(conn: Connection, account_id: int, name: str) -> str:
    """Make a new key and return it; only its hash is stored, so this is the one time it is seen."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        insert(api_keys).values(
            account_id=account_id,
            name=name,
            prefix=key[:10],
            key_hash=hash_api_key(key),
            created_at=datetime.now(UTC),
        )
    )
    return key


def account_for_api_key(conn: Connection, key: str) -> Account | None:
    if not key.startswith(API_KEY_PREFIX) or len(key) > 100:
        return None
    row = conn.execute(
        select(accounts)
        .join(api_keys, api_keys.c.account_id == accounts.c.id)
        .where(api_keys.c.key_hash == hash_api_key(key), api_keys.c.revoked_at.is_(None))
    ).one_or_none()
    return None if row is None else _account(row)
