"""Addresses an account must not mail again: unsubscribed, bounced hard, complained, or added by hand."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Insert, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from mailbeacon.store.driver import Driver, Statement, placeholders
from mailbeacon.store.tables import suppressions


def suppressed_among(conn: Connection, account_id: int, emails: Sequence[str]) -> dict[str, str]:
    """The suppressed ones among these addresses (lower-cased), with the reason each is suppressed.

    Checked for every message stored and every copy delivered: on the driver's cursor (store/driver.py).
    """
    lowered = sorted({e.lower() for e in emails})
    driver = Driver(conn)
    found: dict[str, str] = {}
    for start in range(0, len(lowered), 500):
        chunk = lowered[start : start + 500]
        query = Statement(
            "SELECT email, reason FROM suppressions"
            f" WHERE account_id = ? AND email IN ({placeholders(len(chunk))})"
        )
        found.update({str(email): str(reason) for email, reason in driver.rows(query, (account_id, *chunk))})
    return found


def insert_ignoring_duplicates(dialect: str) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING: the first reason an address was suppressed is kept."""
    if dialect == "postgresql":
        return postgresql.insert(suppressions).on_conflict_do_nothing()
    return sqlite.insert(suppressions).on_conflict_do_nothing()


def suppress(
    conn: Connection,
    account_id: int,
    email: str,
    reason: str,
    at: datetime,
    source_event_id: int | None,
) -> None:
    conn.execute(
        insert_ignoring_duplicates(conn.dialect.name).values(
            account_id=account_id,
            email=email.lower(),
            reason=reason,
            created_at=at,
            source_event_id=source_event_id,
        )
    )


@dataclass(frozen=True)
class Suppression:
    id: int
    email: str
    reason: str
    created_at: datetime
    source_event_id: int | None


def list_suppressions(
    conn: Connection, account_id: int, *, after_id: int = 0, limit: int = 100, email: str | None = None
) -> list[Suppression]:
    query = (
        select(suppressions)
        .where(suppressions.c.account_id == account_id, suppressions.c.id > after_id)
        .order_by(suppressions.c.id)
        .limit(limit)
    )
    if email is not None:
        query = query.where(suppressions.c.email == email.lower())
    return [
        Suppression(r.id, r.email, r.reason, r.created_at, r.source_event_id) for r in conn.execute(query)
    ]


def unsuppress(conn: Connection, account_id: int, email: str) -> bool:
    result = conn.execute(
        delete(suppressions).where(
            suppressions.c.account_id == account_id, suppressions.c.email == email.lower()
        )
    )
    return result.rowcount == 1
