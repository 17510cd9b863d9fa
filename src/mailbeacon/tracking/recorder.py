"""The event writer: one thread that commits tracking hits in groups.

A request hands its hit to the writer and waits; the writer takes everything that has queued up,
resolves the recipients and links it needs (from a cache, else one query per batch), writes all the
events in one transaction and only then lets the waiting requests answer. Under load a batch holds
hundreds of hits, so one commit (one fsync) serves them all, and an answered hit is always stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import DBAPIError

from mailbeacon.events import (
    SUPERSEDED_BY_ENGAGEMENT,
    EventType,
    RecipientStatus,
    SuppressionReason,
)
from mailbeacon.store import Store
from mailbeacon.store.suppressions import insert_ignoring_duplicates
from mailbeacon.store.tables import events, links, recipients

log = logging.getLogger(__name__)

CACHE_LIMIT = 200_000
RETRY_FOR_S = 30.0


@dataclass(slots=True)
class Hit:
    type: EventType
    recipient_id: int
    link_position: int | None
    occurred_at: datetime
    ip: str | None
    user_agent: str | None
    method: str
    human: bool
    machine_class: str | None
    machine_reason: str | None
    future: asyncio.Future[Outcome]


@dataclass(frozen=True, slots=True)
class Outcome:
    recorded: bool
    url: str | None = None  # the click's destination, when the link is known


@dataclass(frozen=True, slots=True)
class _Recipient:
    account_id: int
    message_id: int
    email: str


_STOP = object()


class EventRecorder:
    def __init__(self, store: Store, *, batch_window_s: float = 0.0, batch_max: int = 2000) -> None:
        self._store = store
        self._window = batch_window_s
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._recipients: dict[int, _Recipient] = {}
        self._links: dict[tuple[int, int], str] = {}
        self._delivered: set[int] = set()
        self._thread = threading.Thread(target=self._run, name="event-writer", daemon=True)
        self._started = False
        self._stopped = False
        self.committed = 0  # hits stored since start, for logs and tests
        self.transactions = 0

    def start(self) -> None:
        if self._stopped:
            raise RuntimeError("an event recorder cannot be restarted; make a new one")
        if not self._started:
            self._started = True
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Write everything already handed in, then stop."""
        self._stopped = True
        if self._started:
            self._queue.put(_STOP)
            self._thread.join(timeout)

    def submit(self, hit: Hit) -> None:
        if self._stopped or not self._started:
            raise RuntimeError("the event recorder is not running")
        self._queue.put(hit)

    # --- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        with self._store.engine.connect() as conn:
            conn.execution_options(mailbeacon_immediate=True)
            stopping = False
            while not stopping:
                batch, stopping = self._take_batch()
                if batch:
                    self._write_batch(conn, batch)

    def _take_batch(self) -> tuple[list[Hit], bool]:
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch: list[Hit] = [first]
        deadline = time.monotonic() + self._window
        while len(batch) < self._batch_max:
            try:
                remaining = deadline - time.monotonic()
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _write_batch(self, conn: Connection, batch: list[Hit]) -> None:
        started = time.monotonic()
        while True:
            try:
                outcomes = self._store_batch(conn, batch)
                break
            except DBAPIError:
                if conn.in_transaction():
                    conn.rollback()
                if time.monotonic() - started > RETRY_FOR_S:
                    log.exception("could not store %d tracking hits; answering without them", len(batch))
                    outcomes = [Outcome(False, self._known_url(hit)) for hit in batch]
                    break
                log.warning("storing tracking hits failed; retrying", exc_info=True)
                time.sleep(0.5)
        self._settle(zip(batch, outcomes, strict=True))

    def _known_url(self, hit: Hit) -> str | None:
        ref = self._recipients.get(hit.recipient_id)
        if ref is None or hit.link_position is None:
            return None
        return self._links.get((ref.message_id, hit.link_position))

    def _store_batch(self, conn: Connection, batch: list[Hit]) -> list[Outcome]:
        with conn.begin():
            self._load_recipients(conn, {hit.recipient_id for hit in batch})
            self._load_links(conn, batch)
            rows: list[dict[str, Any]] = []
            outcomes: list[Outcome] = []
            engaged: set[int] = set()
            unsubscribed: list[tuple[_Recipient, Hit]] = []
            for hit in batch:
                ref = self._recipients.get(hit.recipient_id)
                url = None
                if ref is not None and hit.link_position is not None:
                    url = self._links.get((ref.message_id, hit.link_position))
                if ref is None or (hit.type is EventType.CLICKED and url is None):
                    outcomes.append(Outcome(False))
                    continue
                rows.append(self._row(ref, hit))
                outcomes.append(Outcome(True, url))
                if hit.type in (EventType.OPENED, EventType.CLICKED):
                    engaged.add(hit.recipient_id)
                elif hit.type is EventType.UNSUBSCRIBED:
                    unsubscribed.append((ref, hit))
            if rows:
                conn.execute(insert(events), rows)
            self._mark_delivered(conn, engaged - self._delivered)
            for ref, hit in unsubscribed:
                conn.execute(
                    insert_ignoring_duplicates(conn.dialect.name).values(
                        account_id=ref.account_id,
                        email=ref.email.lower(),
                        reason=SuppressionReason.UNSUBSCRIBED.value,
                        created_at=hit.occurred_at,
                    )
                )
        self.committed += len(rows)
        self.transactions += 1
        return outcomes

    @staticmethod
    def _row(ref: _Recipient, hit: Hit) -> dict[str, Any]:
        return {
            "account_id": ref.account_id,
            "message_id": ref.message_id,
            "recipient_id": hit.recipient_id,
            "type": hit.type.value,
            "occurred_at": hit.occurred_at,
            "link_position": hit.link_position,
            "ip": hit.ip,
            "user_agent": hit.user_agent,
            "http_method": hit.method,
            "human": hit.human,
            "machine_class": hit.machine_class,
            "machine_reason": hit.machine_reason,
        }

    def _mark_delivered(self, conn: Connection, recipient_ids: set[int]) -> None:
        if not recipient_ids:
            return
        conn.execute(
            update(recipients)
            .where(
                recipients.c.id.in_(sorted(recipient_ids)),
                recipients.c.status.in_([s.value for s in SUPERSEDED_BY_ENGAGEMENT]),
            )
            .values(status=RecipientStatus.DELIVERED.value)
        )
        self._remember(self._delivered, recipient_ids)

    def _load_recipients(self, conn: Connection, wanted: set[int]) -> None:
        missing = sorted(wanted.difference(self._recipients))
        if not missing:
            return
        if len(self._recipients) + len(missing) > CACHE_LIMIT:
            self._recipients.clear()
        for start in range(0, len(missing), 500):
            rows = conn.execute(
                select(
                    recipients.c.id,
                    recipients.c.account_id,
                    recipients.c.message_id,
                    recipients.c.email,
                ).where(recipients.c.id.in_(missing[start : start + 500]))
            )
            for row in rows:
                self._recipients[row.id] = _Recipient(row.account_id, row.message_id, row.email)

    def _load_links(self, conn: Connection, batch: list[Hit]) -> None:
        messages_needed: set[int] = set()
        for hit in batch:
            ref = self._recipients.get(hit.recipient_id)
            if (
                ref is not None
                and hit.link_position is not None
                and (ref.message_id, hit.link_position) not in self._links
            ):
                messages_needed.add(ref.message_id)
        if not messages_needed:
            return
        if len(self._links) > CACHE_LIMIT:
            self._links.clear()
        rows = conn.execute(
            select(links.c.message_id, links.c.position, links.c.url).where(
                links.c.message_id.in_(sorted(messages_needed))
            )
        )
        for row in rows:
            self._links[(row.message_id, row.position)] = row.url

    @staticmethod
    def _remember(cache: set[int], ids: Iterable[int]) -> None:
        if len(cache) > CACHE_LIMIT:
            cache.clear()
        cache.update(ids)

    @staticmethod
    def _settle(results: Iterable[tuple[Hit, Outcome]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Outcome], Outcome]]] = {}
        for hit, outcome in results:
            by_loop.setdefault(hit.future.get_loop(), []).append((hit.future, outcome))
        for loop, pairs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                loop.call_soon_threadsafe(_set_results, pairs)


def _set_results(pairs: list[tuple[asyncio.Future[Outcome], Outcome]]) -> None:
    for future, outcome in pairs:
        if not future.done():
            future.set_result(outcome)
