"""Putting copies on the delivery queue, in the transaction that stores them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from mailbeacon.events import EventType
from mailbeacon.store.deliveries import Lease, NewCopy, enqueue
from mailbeacon.store.mail_events import MailEvent, insert_mail_events


@dataclass(frozen=True)
class CopyToSend:
    recipient_id: int
    email: str
    dropped_because: str | None = None  # the suppression reason, when the address may not be mailed
    lease: Lease | None = None  # taken by a worker of this process as it is queued


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
    queued: list[NewCopy] = []
    events: list[MailEvent] = []
    for copy in copies:
        if copy.dropped_because is not None:
            reason = {"reason": f"suppressed: {copy.dropped_because}"}
            events.append(
                MailEvent(account_id, message_id, copy.recipient_id, EventType.DROPPED, now, reason)
            )
            continue
        domain = copy.email.rpartition("@")[2]
        queued.append(NewCopy(account_id, message_id, copy.recipient_id, domain, copy.lease))
        events.append(MailEvent(account_id, message_id, copy.recipient_id, EventType.QUEUED, now))
    enqueue(conn, queued, now, max_age)
    insert_mail_events(conn, events)
