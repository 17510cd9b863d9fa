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

from sqlalchemy import Connection
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from mailbeacon.events import EventType, SuppressionReason
from mailbeacon.store import Store
from mailbeacon.store.hits import RecipientRef, insert_events, load_links, load_recipients, mark_delivered
from mailbeacon.store.suppressions import suppress

log = logging.getLogger(__name__)

CACHE_LIMIT = 200_000
RETRY_FOR_S = 30.0
MAX_USER_AGENT = 2000


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
    failed: bool = False  # the store could not take the hit (as opposed to: the hit names nothing known)


_STOP = object()


class EventRecorder:
    def __init__(self, store: Store, *, batch_window_s: float = 0.0, batch_max: int = 2000) -> None:
        self._store = store
        self._window = batch_window_s
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._recipients: dict[int, RecipientRef] = {}
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
        if self._stopped or not self._thread.is_alive():
            raise RuntimeError("the event recorder is not running")
        self._queue.put(hit)

    # --- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = self._take_batch()
            if batch:
                self._write_batch(batch)

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

    def _write_batch(self, batch: list[Hit]) -> None:
        # Nothing may escape: a dead writer thread would leave every later request waiting.
        try:
            outcomes = self._store_with_retries(batch)
        except Exception:
            log.exception("could not store %d tracking hits; answering without them", len(batch))
            outcomes = [Outcome(False, self._known_url(hit), failed=True) for hit in batch]
        self._settle(zip(batch, outcomes, strict=True))

    def _store_with_retries(self, batch: list[Hit]) -> list[Outcome]:
        started = time.monotonic()
        while True:
            try:
                return self._store_once(batch)
            except (DataError, IntegrityError):
                if len(batch) == 1:
                    log.exception("a tracking hit the store refuses was dropped: %r", batch[0])
                    return [Outcome(False, self._known_url(batch[0]), failed=True)]
                # One bad hit must not sink the others: store them one by one.
                return [outcome for hit in batch for outcome in self._store_with_retries([hit])]
            except DBAPIError:
                if time.monotonic() - started > RETRY_FOR_S:
                    raise
                log.warning("storing tracking hits failed; retrying", exc_info=True)
                time.sleep(0.5)

    def _store_once(self, batch: list[Hit]) -> list[Outcome]:
        with self._store.write() as conn:
            outcomes, engaged = self._store_batch(conn, batch)
        # Only after the commit: a rolled-back attempt must not make the retry skip these.
        self._remember_delivered(engaged)
        self.committed += sum(1 for outcome in outcomes if outcome.recorded)
        self.transactions += 1
        return outcomes

    def _store_batch(self, conn: Connection, batch: list[Hit]) -> tuple[list[Outcome], set[int]]:
        self._resolve(conn, batch)
        rows: list[dict[str, Any]] = []
        outcomes: list[Outcome] = []
        engaged: set[int] = set()
        for hit in batch:
            ref = self._recipients.get(hit.recipient_id)
            url = self._known_url(hit)
            if ref is None or (hit.type is EventType.CLICKED and url is None):
                outcomes.append(Outcome(False))
                continue
            rows.append(_row(ref, hit))
            outcomes.append(Outcome(True, url))
            if hit.type in (EventType.OPENED, EventType.CLICKED):
                engaged.add(hit.recipient_id)
            elif hit.type is EventType.UNSUBSCRIBED:
                reason = SuppressionReason.UNSUBSCRIBED.value
                suppress(conn, ref.account_id, ref.email, reason, hit.occurred_at, None)
        mark_delivered(conn, engaged - self._delivered)
        insert_events(conn, rows)
        return outcomes, engaged

    def _resolve(self, conn: Connection, batch: list[Hit]) -> None:
        if len(self._recipients) > CACHE_LIMIT:
            self._recipients.clear()
        if len(self._links) > CACHE_LIMIT:
            self._links.clear()
        missing = sorted({hit.recipient_id for hit in batch}.difference(self._recipients))
        if missing:
            self._recipients.update(load_recipients(conn, missing))
        messages_needed = {
            ref.message_id
            for hit in batch
            if hit.link_position is not None
            and (ref := self._recipients.get(hit.recipient_id)) is not None
            and (ref.message_id, hit.link_position) not in self._links
        }
        if messages_needed:
            self._links.update(load_links(conn, sorted(messages_needed)))

    def _known_url(self, hit: Hit) -> str | None:
        ref = self._recipients.get(hit.recipient_id)
        if ref is None or hit.link_position is None:
            return None
        return self._links.get((ref.message_id, hit.link_position))

    def _remember_delivered(self, ids: Iterable[int]) -> None:
        if len(self._delivered) > CACHE_LIMIT:
            self._delivered.clear()
        self._delivered.update(ids)

    @staticmethod
    def _settle(results: Iterable[tuple[Hit, Outcome]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Outcome], Outcome]]] = {}
        for hit, outcome in results:
            by_loop.setdefault(hit.future.get_loop(), []).append((hit.future, outcome))
        for loop, pairs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                loop.call_soon_threadsafe(_set_results, pairs)


def _row(ref: RecipientRef, hit: Hit) -> dict[str, Any]:
    return {
        "account_id": ref.account_id,
        "message_id": ref.message_id,
        "recipient_id": hit.recipient_id,
        "type": hit.type.value,
        "occurred_at": hit.occurred_at,
        "link_position": hit.link_position,
        "ip": hit.ip,
        # PostgreSQL cannot store NUL characters in text; they carry no meaning in a user agent.
        "user_agent": hit.user_agent[:MAX_USER_AGENT].replace("\x00", "")
        if hit.user_agent
        else hit.user_agent,
        "http_method": hit.method[:8],
        "human": hit.human,
        "machine_class": hit.machine_class,
        "machine_reason": hit.machine_reason,
    }


def _set_results(pairs: list[tuple[asyncio.Future[Outcome], Outcome]]) -> None:
    for future, outcome in pairs:
        if not future.done():
            future.set_result(outcome)
