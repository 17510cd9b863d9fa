"""The delivery queue and the attempt log: named queries, one job each."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, or_, select, update

from mailbeacon.store.driver import Driver, Statement
from mailbeacon.store.tables import deliveries, delivery_attempts


@dataclass(frozen=True)
class QueuedCopy:
    recipient_id: int
    account_id: int
    message_id: int
    domain: str
    queued_at: datetime
    expires_at: datetime
    attempts: int


@dataclass(frozen=True)
class Attempt:
    account_id: int
    message_id: int
    recipient_id: int
    started_at: datetime
    duration_ms: int
    outcome: str
    host: str | None = None
    ip: str | None = None
    port: int | None = None
    tls: bool = False
    code: int | None = None
    enhanced_code: str | None = None
    reply: str | None = None


@dataclass(frozen=True)
class Lease:
    owner: str
    until: datetime


@dataclass(frozen=True)
class NewCopy:
    """A copy to queue: (account, message, recipient), its destination domain, and the lease it is
    queued with when a worker of this process takes it straight away (None: any worker, when due)."""

    account_id: int
    message_id: int
    recipient_id: int
    domain: str
    lease: Lease | None = None


_ENQUEUE = Statement(
    "INSERT INTO deliveries (recipient_id, account_id, message_id, domain, queued_at, expires_at,"
    " next_attempt_at, attempts, lease_owner, lease_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def enqueue(conn: Connection, copies: Sequence[NewCopy], now: datetime, max_age: timedelta) -> None:
    """Queue copies, due now. A copy queued with a lease is counted as attempted (see _LEASE)."""
    driver = Driver(conn)
    queued_at, expires_at = driver.time(now), driver.time(now + max_age)
    driver.executemany(
        _ENQUEUE,
        [
            (
                c.recipient_id,
                c.account_id,
                c.message_id,
                c.domain.lower(),
                queued_at,
                expires_at,
                queued_at,
                0 if c.lease is None else 1,
                None if c.lease is None else c.lease.owner,
                None if c.lease is None else driver.time(c.lease.until),
            )
            for c in copies
        ],
    )


@functools.cache
def _due_query(dialect: str, excluding: bool) -> Select[Any]:
    due = (
        select(deliveries)
        .where(
            deliveries.c.next_attempt_at <= bindparam("now"),
            or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < bindparam("now")),
        )
        .order_by(deliveries.c.next_attempt_at, deliveries.c.recipient_id)
        .limit(bindparam("limit"))
    )
    if excluding:
        due = due.where(deliveries.c.domain.not_in(bindparam("busy", expanding=True)))
    if dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    return due


_LEASE = (
    update(deliveries)
    .where(deliveries.c.recipient_id.in_(bindparam("ids", expanding=True)))
    # Counted when taken rather than when recorded: a copy that kills its worker still ages.
    .values(
        lease_owner=bindparam("owner"), lease_until=bindparam("until"), attempts=deliveries.c.attempts + 1
    )
)


def claim_due(
    conn: Connection,
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    exclude_domains: Sequence[str] = (),
) -> list[QueuedCopy]:
    """Lease up to ``limit`` due copies to ``owner``. Call inside a write transaction.

    On PostgreSQL the rows are locked with SKIP LOCKED, so workers on other hosts claiming at the same
    moment take other rows; SQLite's write lock (BEGIN IMMEDIATE) serialises claims on one machine.
    """
    params: dict[str, object] = {"now": now, "limit": limit}
    if exclude_domains:
        params["busy"] = sorted(exclude_domains)[:500]
    rows = conn.execute(_due_query(conn.dialect.name, bool(exclude_domains)), params).all()
    if not rows:
        return []
    ids = [row.recipient_id for row in rows]
    conn.execute(_LEASE, {"ids": ids, "owner": owner, "until": now + lease})
    return [
        QueuedCopy(
            row.recipient_id,
            row.account_id,
            row.message_id,
            row.domain,
            row.queued_at,
            row.expires_at,
            row.attempts,
        )
        for row in rows
    ]


def renew_leases(conn: Connection, owner: str, recipient_ids: Sequence[int], until: datetime) -> None:
    if recipient_ids:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.recipient_id.in_(recipient_ids), deliveries.c.lease_owner == owner)
            .values(lease_until=until)
        )


def release_leases(conn: Connection, owner: str) -> None:
    """A worker stopping cleanly hands its unfinished copies straight back to the queue."""
    conn.execute(
        update(deliveries).where(deliveries.c.lease_owner == owner).values(lease_owner=None, lease_until=None)
    )


# Every delivery runs these: straight through the driver (see store/driver.py).
_FINISH = Statement("DELETE FROM deliveries WHERE recipient_id = ? AND lease_owner = ?")
_RETRY_LATER = Statement(
    "UPDATE deliveries SET next_attempt_at = ?, lease_owner = NULL, lease_until = NULL, last_error = ?"
    " WHERE recipient_id = ? AND lease_owner = ?"
)
_SET_STATUS = Statement("UPDATE recipients SET status = ?, status_detail = ?, updated_at = ? WHERE id = ?")
_RECORD_ATTEMPT = Statement(
    "INSERT INTO delivery_attempts (account_id, message_id, recipient_id, started_at, duration_ms, outcome,"
    " host, ip, port, tls, code, enhanced_code, reply) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def finish(conn: Connection, owner: str, recipient_id: int) -> bool:
    """Take a copy off the queue (it reached a final status); False if the lease was lost."""
    return Driver(conn).execute(_FINISH, (recipient_id, owner)) == 1


def retry_later(conn: Connection, owner: str, recipient_id: int, at: datetime, error: str) -> bool:
    driver = Driver(conn)
    return driver.execute(_RETRY_LATER, (driver.time(at), error[:2000], recipient_id, owner)) == 1


def record_attempt(conn: Connection, attempt: Attempt) -> None:
    driver = Driver(conn)
    driver.execute(
        _RECORD_ATTEMPT,
        (
            attempt.account_id,
            attempt.message_id,
            attempt.recipient_id,
            driver.time(attempt.started_at),
            attempt.duration_ms,
            attempt.outcome,
            attempt.host,
            attempt.ip,
            attempt.port,
            driver.flag(attempt.tls),
            attempt.code,
            attempt.enhanced_code,
            attempt.reply[:4000] if attempt.reply else None,
        ),
    )


def list_attempts(conn: Connection, account_id: int, recipient_id: int) -> list[Attempt]:
    rows = conn.execute(
        select(delivery_attempts)
        .where(
            and_(
                delivery_attempts.c.account_id == account_id,
                delivery_attempts.c.recipient_id == recipient_id,
            )
        )
        .order_by(delivery_attempts.c.id)
    )
    return [
        Attempt(
            r.account_id,
            r.message_id,
            r.recipient_id,
            r.started_at,
            r.duration_ms,
            r.outcome,
            r.host,
            r.ip,
            r.port,
            r.tls,
            r.code,
            r.enhanced_code,
            r.reply,
        )
        for r in rows
    ]


def set_status(conn: Connection, recipient_id: int, status: str, detail: str | None, now: datetime) -> None:
    driver = Driver(conn)
    driver.execute(_SET_STATUS, (status, detail[:2000] if detail else None, driver.time(now), recipient_id))
