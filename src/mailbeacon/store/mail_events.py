"""Events of the mail path (queued, dropped, sent, deferred, bounced, failed), written on the driver's
cursor: every relayed message and every delivery writes one (see store/driver.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection

from mailbeacon.events import EventType
from mailbeacon.store.driver import Driver, Statement
from mailbeacon.store.hits import EVENT_ORDER_LOCK


class MailEvent(NamedTuple):
    account_id: int
    message_id: int
    recipient_id: int
    type: EventType
    at: datetime
    data: dict[str, Any] | None = None


_COLUMNS = "account_id, message_id, recipient_id, type, occurred_at, human, data"
_INSERT = Statement(f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)")
_INSERT_RETURNING = Statement(f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id")
_ORDER_LOCK = Statement("SELECT pg_advisory_xact_lock(?)")


def insert_mail_events(conn: Connection, events: Sequence[MailEvent]) -> None:
    if events:
        driver = _locked(conn)
        driver.executemany(_INSERT, [_row(driver, event) for event in events])


def insert_mail_event(conn: Connection, event: MailEvent) -> int:
    """One event, and its id (a suppression names the event that caused it)."""
    driver = _locked(conn)
    return int(driver.scalar(_INSERT_RETURNING, _row(driver, event)))


def _locked(conn: Connection) -> Driver:
    # On PostgreSQL events become visible in id order: see EVENT_ORDER_LOCK in store/hits.py.
    driver = Driver(conn)
    if driver.postgresql:
        driver.rows(_ORDER_LOCK, (EVENT_ORDER_LOCK,))
    return driver


def _row(driver: Driver, event: MailEvent) -> tuple[object, ...]:
    # Not a person's action: human is false. ``data`` None is stored as JSON null, as the column type does.
    return (
        event.account_id,
        event.message_id,
        event.recipient_id,
        event.type.value,
        driver.time(event.at),
        driver.flag(False),
        driver.json(event.data),
    )
