"""Messages, their recipient copies and their links."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select

from mailbeacon.store.driver import Driver, Statement, placeholders
from mailbeacon.store.tables import links, messages, recipients


@dataclass(frozen=True)
class NewRecipient:
    email: str
    name: str | None
    status: str
    message_id_header: str
    status_detail: str | None = None


@dataclass(frozen=True)
class StoredMessage:
    id: int
    account_id: int
    created_at: datetime
    from_email: str
    from_name: str | None
    subject: str
    campaign: str | None
    tags: list[str]
    metadata: dict[str, Any]
    headers: dict[str, str]
    html: str | None
    text: str | None
    track_opens: bool
    track_clicks: bool
    track_unsubscribes: bool
    policy: dict[str, Any]
    message_id_header: str | None
    in_reply_to: str | None
    thread_id: str
    origin: str = "api"
    source_mime: bytes | None = None
    envelope_from: str | None = None
    smtp_credential_id: int | None = None


@dataclass(frozen=True)
class StoredRecipient:
    id: int
    account_id: int
    message_id: int
    email: str
    name: str | None
    status: str
    status_detail: str | None
    message_id_header: str


_RECIPIENT_COLUMNS = (
    recipients.c.id,
    recipients.c.account_id,
    recipients.c.message_id,
    recipients.c.email,
    recipients.c.name,
    recipients.c.status,
    recipients.c.status_detail,
    recipients.c.message_id_header,
)


# Every message relayed or created runs these: straight through the driver (see store/driver.py).
MESSAGE_COLUMNS = (
    "account_id",
    "created_at",
    "from_email",
    "from_name",
    "subject",
    "campaign",
    "tags",
    "metadata",
    "headers",
    "html",
    "text",
    "track_opens",
    "track_clicks",
    "track_unsubscribes",
    "policy",
    "message_id_header",
    "in_reply_to",
    "thread_id",
    "origin",
    "source_mime",
    "envelope_from",
    "smtp_credential_id",
)
_JSON_COLUMNS = frozenset({"tags", "metadata", "headers", "policy"})
_FLAG_COLUMNS = frozenset({"track_opens", "track_clicks", "track_unsubscribes"})
_INSERT_MESSAGE = Statement(
    f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) VALUES ({placeholders(len(MESSAGE_COLUMNS))})"
    " RETURNING id"
)
_RECIPIENT_INSERTED = (
    "account_id",
    "message_id",
    "email",
    "name",
    "status",
    "status_detail",
    "message_id_header",
    "created_at",
    "updated_at",
)
_INSERT_RECIPIENT = Statement(
    f"INSERT INTO recipients ({', '.join(_RECIPIENT_INSERTED)})"
    f" VALUES ({placeholders(len(_RECIPIENT_INSERTED))}) RETURNING id"
)
_INSERT_LINK = Statement(
    "INSERT INTO links (account_id, message_id, position, url, occurrences) VALUES (?, ?, ?, ?, ?)"
)
_GET_MESSAGE = select(messages).where(
    messages.c.id == bindparam("message_id"), messages.c.account_id == bindparam("account_id")
)
_GET_RECIPIENT = select(*_RECIPIENT_COLUMNS).where(
    recipients.c.id == bindparam("recipient_id"),
    recipients.c.message_id == bindparam("message_id"),
    recipients.c.account_id == bindparam("account_id"),
)
_LIST_LINKS = (
    select(links.c.position, links.c.url, links.c.occurrences)
    .where(links.c.message_id == bindparam("message_id"), links.c.account_id == bindparam("account_id"))
    .order_by(links.c.position)
)


def insert_message(conn: Connection, values: dict[str, Any]) -> int:
    """``values`` has every column of MESSAGE_COLUMNS."""
    driver = Driver(conn)
    row = []
    for column in MESSAGE_COLUMNS:
        value = values[column]
        if column in _JSON_COLUMNS:
            value = driver.json(value)
        elif column in _FLAG_COLUMNS:
            value = driver.flag(value)
        elif column == "created_at":
            value = driver.time(value)
        row.append(value)
    return int(driver.scalar(_INSERT_MESSAGE, row))


def insert_recipients(
    conn: Connection, account_id: int, message_id: int, new: Sequence[NewRecipient], now: datetime
) -> list[int]:
    driver = Driver(conn)
    at = driver.time(now)
    rows = [
        (account_id, message_id, r.email, r.name, r.status, r.status_detail, r.message_id_header, at, at)
        for r in new
    ]
    return [int(i) for i in driver.returning_each(_INSERT_RECIPIENT, rows)]


def insert_links(
    conn: Connection, account_id: int, message_id: int, link_rows: Sequence[tuple[int, str, int]]
) -> None:
    Driver(conn).executemany(_INSERT_LINK, [(account_id, message_id, p, u, n) for p, u, n in link_rows])


def get_message(conn: Connection, account_id: int, message_id: int) -> StoredMessage | None:
    row = conn.execute(_GET_MESSAGE, {"message_id": message_id, "account_id": account_id}).one_or_none()
    if row is None:
        return None
    return StoredMessage(**row._asdict())


def get_recipient(
    conn: Connection, account_id: int, message_id: int, recipient_id: int
) -> StoredRecipient | None:
    row = conn.execute(
        _GET_RECIPIENT, {"recipient_id": recipient_id, "message_id": message_id, "account_id": account_id}
    ).one_or_none()
    return None if row is None else StoredRecipient(**row._asdict())


def list_recipients(conn: Connection, account_id: int, message_id: int) -> list[StoredRecipient]:
    rows = conn.execute(
        select(*_RECIPIENT_COLUMNS)
        .where(recipients.c.message_id == message_id, recipients.c.account_id == account_id)
        .order_by(recipients.c.id)
    )
    return [StoredRecipient(**row._asdict()) for row in rows]


def list_links(conn: Connection, account_id: int, message_id: int) -> list[tuple[int, str, int]]:
    rows = conn.execute(_LIST_LINKS, {"message_id": message_id, "account_id": account_id})
    return [(r.position, r.url, r.occurrences) for r in rows]
