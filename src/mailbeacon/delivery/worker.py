"""The delivery worker: leases due copies from the queue, hands each to the next hop, logs the outcome.

Any number of workers, in any number of processes on any number of hosts, share one queue: a copy is
leased to one worker at a time (see store/deliveries.py), and its outcome is written together with
the end of its lease in one transaction, so a copy is attempted by one worker at a time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from mailbeacon.delivery.compose import Composer, OutgoingCopy
from mailbeacon.delivery.handoff import HandedCopy, Reservation
from mailbeacon.delivery.mx import DnsFailure
from mailbeacon.delivery.outcomes import LeaseLost, record_outcome
from mailbeacon.delivery.routing import Router
from mailbeacon.delivery.transport import Outcome, Reply, SmtpTransport, Verdict
from mailbeacon.store import Store
from mailbeacon.store.batch import BatchWriter
from mailbeacon.store.deliveries import QueuedCopy, claim_due, release_leases, renew_leases
from mailbeacon.store.messages import get_message, get_recipient, list_links
from mailbeacon.store.suppressions import suppressed_among

log = logging.getLogger(__name__)

# Copies of one domain a worker takes straight from intake, as a multiple of its connections per
# domain: enough for bursts to wait in memory for a connection rather than go through the store.
HANDOFF_DEPTH = 4


@dataclass(frozen=True)
class RetryPolicy:
    initial_s: float = 60.0
    max_s: float = 3600.0

    def delay(self, attempts_before: int) -> timedelta:
        """Exponential backoff with ±10% jitter, so copies deferred together do not return together."""
        base = min(self.max_s, self.initial_s * 2 ** min(attempts_before, 30))
        return timedelta(seconds=base * random.uniform(0.9, 1.1))


@dataclass(frozen=True)
class WorkerLimits:
    concurrency: int = 50
    per_domain: int = 5
    lease_s: float = 600.0
    poll_s: float = 1.0


class DeliveryWorker:
    def __init__(
        self,
        store: Store,
        composer: Composer,
        router: Router,
        transport: SmtpTransport,
        *,
        limits: WorkerLimits,
        retry: RetryPolicy,
        writer: BatchWriter,
    ) -> None:
        self.store = store
        self.writer = writer
        self.composer = composer
        self.router = router
        self.transport = transport
        self.limits = limits
        self.retry = retry
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._stopping = False
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._domains: dict[str, asyncio.Semaphore] = {}
        # Copies per domain this worker holds (attempts under way or waiting for their domain's
        # connections, and room reserved by intake), and room reserved overall.
        self._load: collections.Counter[str] = collections.Counter()
        self._reserved = 0
        self._runner: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._renewer: asyncio.Task[None] | None = None
        self.attempted = 0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._runner = asyncio.create_task(self._run(), name="delivery-worker")
        self._renewer = asyncio.create_task(self._renew_leases(), name="delivery-lease-renewal")

    def wake(self) -> None:
        """New copies were queued (in this process, from any thread): look now, not at the next poll."""
        if self._loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    # --- copies handed over by intake in this process (see delivery/handoff.py) -----------------

    def reserve(self, domains: Sequence[str]) -> Reservation | None:
        """Room for the copies of a message about to be stored, one domain per recipient; None when
        there is room for none (they are queued as due, for any worker). On the event loop."""
        if self._stopping or self._loop is None:
            return None
        room = self.limits.concurrency - len(self._inflight) - self._reserved
        depth = self.limits.per_domain * HANDOFF_DEPTH
        taken: list[str | None] = []
        for domain in (d.lower() for d in domains):
            if room > 0 and self._load[domain] < depth:
                room -= 1
                self._load[domain] += 1
                self._reserved += 1
                taken.append(domain)
            else:
                taken.append(None)
        if not any(taken):
            return None
        return Reservation(self.owner, timedelta(seconds=self.limits.lease_s), tuple(taken))

    def cancel(self, reservation: Reservation) -> None:
        """Give back the room of a reservation (its message was not stored, or its copies handed)."""
        for domain in reservation.domains:
            if domain is not None:
                self._reserved -= 1
                self._load[domain] -= 1
                if not self._load[domain]:
                    del self._load[domain]

    def take(self, reservation: Reservation, handed: Sequence[HandedCopy]) -> None:
        """Start delivering copies stored leased to this worker. A worker stopping leaves them to its
        stop(), which hands every copy it holds a lease on back to the queue."""
        self.cancel(reservation)
        if self._stopping:
            return
        for item in handed:
            self._start(item.copy, item)

    async def stop(self, grace_s: float = 30.0) -> None:
        """Stop leasing; let attempts under way finish (up to ``grace_s``); hand the rest back."""
        self._stopping = True
        self._wake.set()
        if self._runner is not None:
            await self._runner
        waited = 0.0
        while self._reserved and waited < grace_s:  # messages being stored with leases to this worker
            await asyncio.sleep(0.01)
            waited += 0.01
        if self._inflight:
            _, pending = await asyncio.wait(list(self._inflight.values()), timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        with self.store.write() as conn:
            release_leases(conn, self.owner)
        await self.transport.close()

    async def _run(self) -> None:
        while not self._stopping:
            free = self.limits.concurrency - len(self._inflight) - self._reserved
            claimed: list[QueuedCopy] = []
            if free > 0:
                try:
                    # Domains already at their limit are left for later, so that one big campaign to
                    # one domain does not take every slot while other domains' mail waits.
                    busy = [domain for domain, slots in self._domains.items() if slots.locked()]
                    claimed = await self.writer.run(functools.partial(self._claim, limit=free, busy=busy))
                except Exception:
                    log.exception("could not lease copies from the delivery queue; trying again")
            for copy in claimed:
                self._start(copy, None)
            if len(claimed) == free and free > 0:
                continue  # there may be more due right now
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.limits.poll_s)
            self.transport.close_idle()

    def _start(self, copy: QueuedCopy, handed: HandedCopy | None) -> None:
        task = asyncio.create_task(self._attempt(copy, handed), name=f"deliver-{copy.recipient_id}")
        self._inflight[copy.recipient_id] = task
        self._load[copy.domain] += 1
        task.add_done_callback(functools.partial(self._done, copy))

    def _done(self, copy: QueuedCopy, _task: asyncio.Task[None]) -> None:
        self._inflight.pop(copy.recipient_id, None)
        self._load[copy.domain] -= 1
        if not self._load[copy.domain]:
            del self._load[copy.domain]
        self._wake.set()

    def _claim(self, conn: Connection, limit: int, busy: list[str]) -> list[QueuedCopy]:
        now = datetime.now(UTC)
        return claim_due(conn, self.owner, now, timedelta(seconds=self.limits.lease_s), limit, busy)

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.limits.lease_s / 3)
            if self._inflight:
                until = datetime.now(UTC) + timedelta(seconds=self.limits.lease_s)
                try:
                    await asyncio.to_thread(self._renew, list(self._inflight), until)
                except Exception:
                    log.exception("could not renew delivery leases")

    def _renew(self, recipient_ids: list[int], until: datetime) -> None:
        with self.store.write() as conn:
            renew_leases(conn, self.owner, recipient_ids, until)

    async def _attempt(self, copy: QueuedCopy, handed: HandedCopy | None) -> None:
        semaphore = self._domains.setdefault(copy.domain, asyncio.Semaphore(self.limits.per_domain))
        async with semaphore:  # the domain's connections: held to build and send, not to record
            started = datetime.now(UTC)
            clock = time.monotonic()
            final = False
            suppressed: str | None = None
            outcome: Outcome | None = None
            failure: str | None = None
            try:
                if handed is not None:
                    # Its suppressions were checked in the transaction that queued it, a moment ago.
                    outgoing = self.composer.compose(handed.message, handed.recipient, handed.links)
                elif self.store.dialect == "sqlite":
                    outgoing, suppressed = self._compose(copy)  # a few local reads: no thread needed
                else:
                    outgoing, suppressed = await asyncio.to_thread(self._compose, copy)
            except LookupError as exc:
                failure = f"could not build the message: {exc}"  # gone from the store: nothing to retry
            except Exception as exc:
                # Anything else (the store briefly unreachable, an unreadable DKIM key) may pass: retry.
                log.exception("could not build copy %d for delivery", copy.recipient_id)
                reply = Reply(None, "4.3.0", f"could not build the message: {type(exc).__name__}")
                outcome = Outcome("temporary", reply, stage="internal")
            else:
                if suppressed is None:
                    outcome, final = await self._send_safely(copy, outgoing)
            duration_ms = int((time.monotonic() - clock) * 1000)
        retry_at = datetime.now(UTC) + self.retry.delay(copy.attempts)
        try:
            await self.writer.run(
                functools.partial(
                    self._record,
                    copy=copy,
                    outcome=outcome,
                    failure=failure,
                    suppressed=suppressed,
                    final=final,
                    started=started,
                    duration_ms=duration_ms,
                    retry_at=retry_at,
                )
            )
        except LeaseLost:
            log.warning("copy %d: its lease ran out before the outcome was recorded", copy.recipient_id)
        except Exception:
            # The lease runs out and the copy is attempted again: better twice than never.
            log.exception("could not record the delivery outcome of copy %d", copy.recipient_id)
        self.attempted += 1
        if len(self._domains) > 10_000 and not semaphore.locked():
            self._domains.pop(copy.domain, None)

    def _record(
        self,
        conn: Connection,
        copy: QueuedCopy,
        outcome: Outcome | None,
        failure: str | None,
        suppressed: str | None,
        final: bool,
        started: datetime,
        duration_ms: int,
        retry_at: datetime,
    ) -> None:
        record_outcome(
            conn,
            self.owner,
            copy,
            outcome,
            failure,
            suppressed=suppressed,
            final=final,
            started=started,
            duration_ms=duration_ms,
            retry_at=retry_at,
        )

    async def _send_safely(self, copy: QueuedCopy, outgoing: OutgoingCopy) -> tuple[Outcome, bool]:
        """Whatever goes wrong while sending ends as a logged, temporary outcome: a copy must never
        stay leased with nothing recorded (it would be retried forever and never expire)."""
        try:
            return await self._send(copy, outgoing)
        except Exception as exc:
            log.exception("delivery of copy %d failed unexpectedly", copy.recipient_id)
            reply = Reply(None, "4.3.0", f"internal error: {type(exc).__name__}")
            return Outcome("temporary", reply, stage="internal"), False

    def _compose(self, copy: QueuedCopy) -> tuple[OutgoingCopy, str | None]:
        """The copy ready to send, and the suppression reason if its address was suppressed since it
        was queued (a bounce, complaint or unsubscribe in the meantime): then it is not sent."""
        with self.store.read() as conn:
            message = get_message(conn, copy.account_id, copy.message_id)
            recipient = get_recipient(conn, copy.account_id, copy.message_id, copy.recipient_id)
            links = [
                (position, url) for position, url, _ in list_links(conn, copy.account_id, copy.message_id)
            ]
            suppressed = suppressed_among(conn, copy.account_id, [recipient.email]) if recipient else {}
        if message is None or recipient is None:
            raise LookupError("the message or its copy is gone from the store")
        return self.composer.compose(message, recipient, links), next(iter(suppressed.values()), None)

    async def _send(self, copy: QueuedCopy, outgoing: OutgoingCopy) -> tuple[Outcome, bool]:
        try:
            hops = await self.router.route(copy.domain)
        except DnsFailure as failure:
            verdict: Verdict = "temporary" if failure.temporary else "permanent"
            if failure.temporary:
                reply = Reply(None, "4.4.3", failure.reason)
            elif failure.null_mx:
                reply = Reply(556, "5.1.10", failure.reason)  # RFC 7505: the domain accepts no mail
            else:
                reply = Reply(None, failure.enhanced or "5.1.2", failure.reason)
            return Outcome(verdict, reply, None, False, "dns"), True
        outcome = await self.transport.deliver(
            hops.hops, hops.tls, outgoing.envelope_from, outgoing.recipient, outgoing.data
        )
        return outcome, hops.final
