"""Putting copies on the delivery queue, in the transaction that stores them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from mailbeacon.events import EventType
from mailbeacon.store.deliveries import enqueue
from mailbeacon.store.events import insert_event


@dataclass(frozen=True)
class CopyToSend:
    recipient_id: int
    email: str
    dropped_because: str | None = None  # the suppression reason, when the address may not be mailed


def queue_copies(
    conn: Connection,
    account_id: int,
    message_id: int,
    copies: Sequence[CopyToSend],
    now: datetime,
    max_age: timedelta,
) -> None:
    """Queue every copy whose address may be mailed and log the others as ``dropped``, each with its event.

    The copies are stored by the caller already with their status (``queued`` or ``dropped``).
    """
    queued: list[tuple[int, int, int, str]] = []
    for copy in copies:
        if copy.dropped_because is not None:
            insert_event(
                conn,
                account_id=account_id,
                message_id=message_id,
                recipient_id=copy.recipient_id,
                type=EventType.DROPPED,
                at=now,
                data={"reason": f"suppressed: {copy.dropped_because}"},
            )
            continue
        queued.append((account_id, message_id, copy.recipient_id, copy.email.rpartition("@")[2]))
    enqueue(conn, queued, now, max_age)
    for _, _, recipient_id, _ in queued:
        insert_event(
            conn,
            account_id=account_id,
            message_id=message_id,
            recipient_id=recipient_id,
            type=EventType.QUEUED,
            at=now,
        )
