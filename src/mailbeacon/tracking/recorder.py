"""The event writer: tracking hits committed in groups, inside the event loop.

A request hands its hit to the recorder and waits on a future. The first hit of a new batch
schedules a flush for the loop's next turn (or after the batch window), so every hit whose request
the loop handled in the meantime joins the same transaction: under load one commit, one fsync,
serves hundreds of hits. Only after the commit are the futures resolved and the requests answer,
so an answered hit is always stored.

With SQLite the flush runs on the loop itself: a transaction of a few hundred rows takes about a
millisecond, less than handing work to a thread and contending for the GIL costs. With PostgreSQL
each batch goes to one writer thread, which waits on the network without holding the GIL while the
loop gathers the next batch (measured: see docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from mailbeacon.events import EventType, SuppressionReason
from mailbeacon.store import Store
from mailbeacon.store.hits import (
    EventRow,
    RecipientRef,
    insert_events,
    load_links,
    load_recipients,
    mark_delivered,
)
from mailbeacon.store.suppressions import suppress

log = logging.getLogger(__name__)

CACHE_LIMIT = 200_000
RETRY_FOR_S = 30.0
RETRY_PAUSE_S = 0.5
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


class EventRecorder:
    def __init__(self, store: Store, *, batch_window_s: float = 0.0, batch_max: int = 2000) -> None:
        self._store = store
        self._window = batch_window_s
        self._batch_max = batch_max
        self._pending: list[Hit] = []
        self._flush_scheduled = False
        self._writing = False
        self._unsettled = 0  # batches handed to the store and not yet answered (retries included)
        self._idle: asyncio.Event | None = None
        # SQLite commits in the loop: a batch takes about a millisecond, less than a thread hand-off
        # and GIL contention cost. PostgreSQL waits on the network, which a thread does without the
        # GIL: one writer thread, one batch at a time, while the loop gathers the next batch.
        self._writer = ThreadPoolExecutor(1, "event-writer") if store.dialect == "postgresql" else None
        self._recipients: dict[int, RecipientRef] = {}
        self._links: dict[tuple[int, int], str] = {}
        self._delivered: set[int] = set()
        self._started = False
        self._stopped = False
        self.committed = 0  # hits stored since start, for logs and tests
        self.transactions = 0

    def start(self) -> None:
        if self._stopped:
            raise RuntimeError("an event recorder cannot be restarted; make a new one")
        self._started = True

    async def stop(self) -> None:
        """Write everything already handed in (waiting out retries), then refuse new hits."""
        self._stopped = True
        while self._pending or self._unsettled:
            self._idle = asyncio.Event()
            if self._pending and not self._writing:
                self._flush()
            if self._pending or self._unsettled:
                await self._idle.wait()
        if self._writer is not None:
            self._writer.shutdown(wait=True)

    def submit(self, hit: Hit) -> None:
        """Queue a hit; its future resolves once it is stored (or known not to be storable)."""
        if self._stopped or not self._started:
            raise RuntimeError("the event recorder is not running")
        self._pending.append(hit)
        if not self._flush_scheduled and not self._writing:
            self._flush_scheduled = True
            loop = hit.future.get_loop()
            if self._window > 0:
                loop.call_later(self._window, self._flush)
            else:
                loop.call_soon(self._flush)

    # --- writing ------------------------------------------------------------------------------

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._writing or not self._pending:
            return
        batch = self._pending[: self._batch_max]
        del self._pending[: self._batch_max]
        self._unsettled += 1
        if self._pending and self._writer is None:
            # More than one batch waits: the rest goes next turn, whatever becomes of this one.
            self._flush_scheduled = True
            batch[0].future.get_loop().call_soon(self._flush)
        self._dispatch(batch, time.monotonic())

    def _dispatch(self, batch: list[Hit], started: float) -> None:
        loop = batch[0].future.get_loop()
        if self._writer is None:
            try:
                outcomes = self._store_splitting(batch)
            except Exception as exc:
                self._failed(batch, started, exc)
                return
            self._settle(batch, outcomes)
            return
        self._writing = True
        written = loop.run_in_executor(self._writer, self._store_splitting, batch)
        written.add_done_callback(lambda done: self._written(batch, started, done))

    def _written(self, batch: list[Hit], started: float, done: asyncio.Future[list[Outcome]]) -> None:
        self._writing = False
        error = done.exception()
        if error is not None:
            self._failed(batch, started, error)
        else:
            self._settle(batch, done.result())
        if self._pending:
            self._flush()

    def _failed(self, batch: list[Hit], started: float, error: BaseException) -> None:
        if isinstance(error, DBAPIError) and time.monotonic() - started <= RETRY_FOR_S:
            log.warning("storing %d tracking hits failed; retrying", len(batch), exc_info=error)
            batch[0].future.get_loop().call_later(RETRY_PAUSE_S, self._dispatch, batch, started)
            return
        # Nothing may escape: the waiting requests must always get an answer.
        log.error("could not store %d tracking hits; answering without them", len(batch), exc_info=error)
        self._settle(batch, [Outcome(False, self._known_url(hit), failed=True) for hit in batch])

    def _store_splitting(self, batch: list[Hit]) -> list[Outcome]:
        try:
            return self._store_once(batch)
        except (DataError, IntegrityError):
            if len(batch) == 1:
                log.exception("a tracking hit the store refuses was dropped: %r", batch[0])
                return [Outcome(False, self._known_url(batch[0]), failed=True)]
            # One bad hit must not sink the others: store them one by one.
            return [outcome for hit in batch for outcome in self._store_splitting([hit])]

    def _store_once(self, batch: list[Hit]) -> list[Outcome]:
        with self._store.write() as conn:
            outcomes, engaged = self._store_batch(conn, batch)
        # Only after the commit: a rolled-back attempt must not make the retry skip these.
        if len(self._delivered) > CACHE_LIMIT:
            self._delivered.clear()
        self._delivered.update(engaged)
        self.committed += sum(1 for outcome in outcomes if outcome.recorded)
        self.transactions += 1
        return outcomes

    def _store_batch(self, conn: Connection, batch: list[Hit]) -> tuple[list[Outcome], set[int]]:
        self._resolve(conn, batch)
        rows: list[EventRow] = []
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
            if hit.type is EventType.OPENED or hit.type is EventType.CLICKED:
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

    def _settle(self, batch: list[Hit], outcomes: list[Outcome]) -> None:
        for hit, outcome in zip(batch, outcomes, strict=True):
            if not hit.future.done():  # a client that hung up cancelled its wait
                hit.future.set_result(outcome)
        self._unsettled -= 1
        if self._idle is not None and not self._unsettled and not self._pending:
            self._idle.set()


def _row(ref: RecipientRef, hit: Hit) -> EventRow:
    agent = hit.user_agent
    if agent:
        # PostgreSQL cannot store NUL characters in text; they carry no meaning in a user agent.
        agent = agent[:MAX_USER_AGENT].replace("\x00", "")
    return EventRow(
        ref.account_id,
        ref.message_id,
        hit.recipient_id,
        hit.type.value,
        hit.occurred_at,
        hit.link_position,
        hit.ip,
        agent,
        hit.method[:8],
        hit.human,
        hit.machine_class,
        hit.machine_reason,
    )
