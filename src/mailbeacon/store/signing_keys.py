"""The keys that sign tracking tokens, shared by every process through the store."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import Connection, func, insert, select

from mailbeacon.store.tables import signing_keys


def load_signing_keys(conn: Connection) -> dict[int, bytes]:
    return {row.id: bytes(row.secret) for row in conn.execute(select(signing_keys))}


def add_signing_key(conn: Connection) -> int:
    """Add a fresh key; the newest key signs, all kept keys verify."""
    next_id = (conn.execute(select(func.max(signing_keys.c.id))).scalar() or 0) + 1
    conn.execute(
        insert(signing_keys).values(id=next_id, secret=secrets.token_bytes(32), created_at=datetime.now(UTC))
    )
    return int(next_id)


def ensure_signing_key(conn: Connection) -> None:
    if conn.execute(select(func.count()).select_from(signing_keys)).scalar_one() == 0:
        add_signing_key(conn)
