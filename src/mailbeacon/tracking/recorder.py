"""The hit recorder: tracking hits committed to the journal in groups, by one writer thread.

A request hands its hit to the recorder and waits on a future. The first hit of a new batch
schedules a flush for the loop's next turn (or after the batch window), so every hit whose request
the loop handled in the meantime joins the same transaction: under load one commit, one fsync,
serves hundreds of hits. Only after the commit are the futures resolved and the requests answer,
so an answered hit is always stored.

The writer thread takes one batch at a time while the loop gathers the next. Its store work is a
few statements per batch (``append_hits``), during which SQLite and the PostgreSQL driver release
the GIL, so the loop keeps serving requests meanwhile. Between batches, and whenever no hits wait,
the same thread ingests journalled hits into events (``tracking/ingest.py``); when hits arrive
faster than that, the journal grows and ingest takes every other turn until it has caught up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from mailbeacon.enrich import Enricher
from mailbeacon.events import EventType, SuppressionReason
from mailbeacon.store import Store
from mailbeacon.store.hit_journal import (
    JournalRefused,
    JournalRow,
    JournalUnavailable,
    JournalWriter,
    append_hits,
    from_micros,
)
from mailbeacon.store.hits import RecipientRef, load_links, load_recipients
from mailbeacon.store.ingest_batch import Ingested
from mailbeacon.store.suppressions import suppress
from mailbeacon.tracking.ingest import INGEST_CHUNK, catch_up, ingest_some

log = logging.getLogger(__name__)

CACHE_LIMIT = 200_000
RETRY_FOR_S = 30.0
RETRY_PAUSE_S = 0.5
MAX_USER_AGENT = 2000
# How long the hits must pause before a journal smaller than a chunk is ingested.
QUIET_S = 0.05
# How often an idle recorder looks for hits other processes journalled and did not ingest.
INGEST_POLL_S = 1.0


@dataclass(slots=True)
class Hit:
    type: EventType
    recipient_id: int
    link_position: int | None
    received_us: int  # microseconds since the Unix epoch
    ip: str | None
    user_agent: str | None
    method: str
    human: bool
    machine_class: str | None
    machine_reason: str | None
    future: asyncio.Future[Outcome]
    requested_with: str | None = None
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    recorded: bool
    url: str | None = None  # the click's destination, when the link is known
    failed: bool = False  # the store could not take the hit (as opposed to: the hit names nothing known)


class EventRecorder:
    def __init__(
        self,
        store: Store,
        *,
        batch_window_s: float = 0.0,
        batch_max: int = 2000,
        enricher: Enricher | None = None,
    ) -> None:
        self._store = store
        self._enricher = enricher
        self._window = batch_window_s
        self._batch_max = batch_max
        self._pending: list[Hit] = []
        self._flush_scheduled = False
        self._busy = False  # the writer thread has a batch or an ingest in hand
        self._unsettled = 0  # batches handed to the writer and not yet answered (retries included)
        self._idle: asyncio.Event | None = None
        self._writer = ThreadPoolExecutor(1, "hit-writer")
        self._journal = JournalWriter(store.engine)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poll: asyncio.TimerHandle | None = None
        self._quiet: asyncio.TimerHandle | None = None
        self._ingest_due = False  # the poll asked for an ingest at the next turn
        self._recipients: dict[int, RecipientRef] = {}
        self._links: dict[tuple[int, int], str] = {}
        self._started = False
        self._stopped = False
        self._closed = False
        self.backlog = 0  # hits journalled by this process and not yet ingested, as far as it knows
        self.committed = 0  # hits journalled since start, for logs and tests
        self.transactions = 0  # journal transactions
        self.ingested = 0  # hits ingested into events by this process

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Accept hits; with ``loop``, also ingest what other processes left in the journal."""
        if self._stopped:
            raise RuntimeError("an event recorder cannot be restarted; make a new one")
        self._started = True
        if loop is not None:
            self._loop = loop
            self._poll = loop.call_later(0, self._poll_journal)

    async def stop(self) -> None:
        """Write everything already handed in (waiting out retries), ingest it, refuse new hits."""
        if self._closed:
            return
        self._stopped = True
        for timer in (self._poll, self._quiet):
            if timer is not None:
                timer.cancel()
        while self._pending or self._unsettled or self._busy:
            self._idle = asyncio.Event()
            if self._pending and not self._busy:
                self._flush()
            if self._pending or self._unsettled or self._busy:
                await self._idle.wait()
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._writer, catch_up, self._store, self._enricher
            )
        except Exception:
            log.exception("could not ingest the journal at shutdown; the next start will")
        self._writer.submit(self._journal.close)
        self._writer.shutdown(wait=True)
        self._closed = True

    def submit(self, hit: Hit) -> None:
        """Queue a hit; its future resolves once it is stored (or known not to be storable)."""
        if self._stopped or not self._started:
            raise RuntimeError("the event recorder is not running")
        self._pending.append(hit)
        if not self._flush_scheduled and not self._busy:
            self._schedule_flush(hit.future.get_loop())

    def _schedule_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        # Not now but at the loop's next turn (or after the window): every request the loop has
        # ready by then joins this batch instead of waiting for the next.
        self._flush_scheduled = True
        if self._window > 0:
            loop.call_later(self._window, self._flush)
        else:
            loop.call_soon(self._flush)

    # --- the loop's side ------------------------------------------------------------------------

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._busy or not self._pending:
            return
        batch = self._pending[: self._batch_max]
        del self._pending[: self._batch_max]
        self._unsettled += 1
        self._dispatch(batch, time.monotonic())

    def _dispatch(self, batch: list[Hit], started: float) -> None:
        self._busy = True
        loop = batch[0].future.get_loop()
        written = loop.run_in_executor(self._writer, self._journal_splitting, batch)
        written.add_done_callback(lambda done: self._written(batch, started, done))

    def _written(self, batch: list[Hit], started: float, done: asyncio.Future[list[Outcome]]) -> None:
        self._busy = False
        error = done.exception()
        if error is not None:
            if self._retrying(batch, started, error):
                return
            # Nothing may escape: the waiting requests must always get an answer.
            log.error("could not store %d tracking hits; answering without them", len(batch), exc_info=error)
            self._settle(batch, [Outcome(False, self._known_url(hit), failed=True) for hit in batch])
        else:
            self._settle(batch, done.result())
        self._next(batch[0].future.get_loop())

    def _retrying(self, batch: list[Hit], started: float, error: BaseException) -> bool:
        transient = isinstance(error, DBAPIError | JournalUnavailable)
        if not transient or time.monotonic() - started > RETRY_FOR_S:
            return False
        log.warning("storing %d tracking hits failed; retrying", len(batch), exc_info=error)
        self._busy = True  # the batch keeps its turn: nothing overtakes it
        batch[0].future.get_loop().call_later(RETRY_PAUSE_S, self._dispatch, batch, started)
        return True

    def _next(self, loop: asyncio.AbstractEventLoop, *, after_ingest: bool = False) -> None:
        """Hand the writer its next job. Ingest goes in chunks, each a transaction of its own: once a
        full chunk has been journalled (taking turns with the hits), when the poll asks for it, or
        after a moment without hits."""
        if not after_ingest and (self.backlog >= INGEST_CHUNK or self._ingest_due):
            self._ingest(loop)
        elif self._pending:
            if not self._flush_scheduled:
                self._schedule_flush(loop)
        else:
            if self.backlog and self._quiet is None:
                self._quiet = loop.call_later(QUIET_S, self._ingest_if_quiet, loop)
            if self._idle is not None and not self._unsettled:
                self._idle.set()

    def _ingest_if_quiet(self, loop: asyncio.AbstractEventLoop) -> None:
        self._quiet = None
        if not self._busy and not self._pending and self.backlog:
            self._ingest(loop)

    def _ingest(self, loop: asyncio.AbstractEventLoop) -> None:
        self._busy = True
        ingested = loop.run_in_executor(self._writer, ingest_some, self._store, INGEST_CHUNK, self._enricher)
        ingested.add_done_callback(lambda done: self._ingested(loop, done))

    def _ingested(self, loop: asyncio.AbstractEventLoop, done: asyncio.Future[Ingested]) -> None:
        self._busy = False
        self._ingest_due = False
        error = done.exception()
        if error is not None:
            # The hits stay journalled; the next poll tries again.
            log.error("could not ingest tracking hits into events", exc_info=error)
            self.backlog = 0
        else:
            hits = done.result().hits
            self.ingested += hits
            # A full chunk means more may wait, journalled by this process or by others.
            self.backlog = max(self.backlog - hits, 1 if hits == INGEST_CHUNK else 0)
        self._next(loop, after_ingest=True)

    def _poll_journal(self) -> None:
        assert self._loop is not None
        if self._stopped:
            return
        if self._busy or self._pending:
            self._ingest_due = True
        else:
            self._ingest(self._loop)
        self._poll = self._loop.call_later(INGEST_POLL_S, self._poll_journal)

    def _settle(self, batch: list[Hit], outcomes: list[Outcome]) -> None:
        for hit, outcome in zip(batch, outcomes, strict=True):
            if not hit.future.done():  # a client that hung up cancelled its wait
                hit.future.set_result(outcome)
        self._unsettled -= 1

    # --- the writer thread's side ------------------------------------------------------------

    def _journal_splitting(self, batch: list[Hit]) -> list[Outcome]:
        try:
            return self._journal_once(batch)
        except (DataError, IntegrityError, JournalRefused):
            if len(batch) == 1:
                log.exception("a tracking hit the store refuses was dropped: %r", batch[0])
                return [Outcome(False, self._known_url(batch[0]), failed=True)]
            # One bad hit must not sink the others: store them one by one.
            return [outcome for hit in batch for outcome in self._journal_splitting([hit])]

    def _journal_once(self, batch: list[Hit]) -> list[Outcome]:
        self._resolve(batch)
        rows: list[JournalRow] = []
        outcomes: list[Outcome] = []
        unsubscribes: list[tuple[RecipientRef, Hit]] = []
        for hit in batch:
            ref = self._recipients.get(hit.recipient_id)
            url = self._known_url(hit)
            if ref is None or (hit.type is EventType.CLICKED and url is None):
                outcomes.append(Outcome(False))
                continue
            rows.append(_row(ref, hit))
            outcomes.append(Outcome(True, url))
            if hit.type is EventType.UNSUBSCRIBED:
                unsubscribes.append((ref, hit))
        if unsubscribes:
            # Suppressed in the journal's own transaction: no mail may go to the address once the
            # page says so, not even before the hit is ingested.
            with self._store.write() as conn:
                append_hits(conn, rows)
                for ref, hit in unsubscribes:
                    at = from_micros(hit.received_us)
                    suppress(conn, ref.account_id, ref.email, SuppressionReason.UNSUBSCRIBED.value, at, None)
        else:
            self._journal.append(rows)
        self.committed += len(rows)
        self.backlog += len(rows)
        self.transactions += 1
        return outcomes

    def _resolve(self, batch: list[Hit]) -> None:
        """Make sure the caches know every recipient and clicked link of the batch (reads on a miss)."""
        if len(self._recipients) > CACHE_LIMIT:
            self._recipients.clear()
        if len(self._links) > CACHE_LIMIT:
            self._links.clear()
        recipients, links = self._recipients, self._links
        if all(
            (ref := recipients.get(hit.recipient_id)) is not None
            and (hit.link_position is None or (ref.message_id, hit.link_position) in links)
            for hit in batch
        ):
            return
        with self._store.read() as conn:
            missing = sorted({hit.recipient_id for hit in batch}.difference(recipients))
            if missing:
                recipients.update(load_recipients(conn, missing))
            messages_needed = {
                ref.message_id
                for hit in batch
                if hit.link_position is not None
                and (ref := recipients.get(hit.recipient_id)) is not None
                and (ref.message_id, hit.link_position) not in links
            }
            if messages_needed:
                links.update(load_links(conn, sorted(messages_needed)))

    def _known_url(self, hit: Hit) -> str | None:
        ref = self._recipients.get(hit.recipient_id)
        if ref is None or hit.link_position is None:
            return None
        return self._links.get((ref.message_id, hit.link_position))


def _row(ref: RecipientRef, hit: Hit) -> JournalRow:
    agent = hit.user_agent
    if agent:
        # PostgreSQL cannot store NUL characters in text; they carry no meaning in a user agent.
        agent = agent[:MAX_USER_AGENT].replace("\x00", "")
    return JournalRow(
        hit.received_us,
        hit.type.value,
        ref.account_id,
        hit.recipient_id,
        hit.link_position,
        hit.ip,
        agent,
        hit.method[:8],
        hit.human,
        hit.machine_class,
        hit.machine_reason,
        hit.requested_with,
        hit.purpose,
    )
