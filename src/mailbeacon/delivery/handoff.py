"""Copies handed from intake straight to a delivery worker of the same process.

A message relayed by SMTP is delivered moments after it is stored, most often by the same process.
Rather than storing its copies as due and having the worker find them again (a claim, then reading
back the message, its copy and its links), intake reserves room with its own worker before storing,
stores the copies already leased to that worker, in the same transaction, and after the commit hands
them over with the rows it wrote. The store stays the truth: should the process die, the lease
runs out and any worker delivers the copies; copies the worker has no room for are queued as due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from mailbeacon.store.deliveries import Lease, QueuedCopy
from mailbeacon.store.messages import StoredMessage, StoredRecipient

if TYPE_CHECKING:
    from mailbeacon.messages.service import CreatedMessage


@dataclass(frozen=True)
class Reservation:
    """Room taken with a worker for the copies of one message, by the position of each recipient."""

    owner: str
    lease: timedelta
    domains: tuple[str | None, ...]  # the domain reserved for each recipient; None: not taken

    def lease_for(self, position: int, now: datetime) -> Lease | None:
        if self.domains[position] is None:
            return None
        return Lease(self.owner, now + self.lease)


@dataclass(frozen=True)
class HandedCopy:
    """A stored, leased copy together with everything its delivery needs, already in memory."""

    copy: QueuedCopy
    message: StoredMessage
    recipient: StoredRecipient
    links: tuple[tuple[int, str], ...]


def handed_copies(created: CreatedMessage) -> list[HandedCopy]:
    """The copies of a just-stored message that were queued leased to the reserving worker."""
    by_id = {copy.id: copy for copy in created.copies}
    links = tuple((link.position, link.url) for link in created.content.links)
    return [HandedCopy(q, created.stored, by_id[q.recipient_id], links) for q in created.leased]
