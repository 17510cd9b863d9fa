"""The delivery worker: leases due copies from the queue, hands each to the next hop, logs the outcome.

Any number of workers, in any number of processes on any number of hosts, share one queue: a copy is
leased to one worker at a time (see store/deliveries.py), and its outcome is written together with
the end of its lease in one transaction, so a copy is attempted by one worker at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from mailbeacon.delivery.compose import Composer, OutgoingCopy
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

    async def stop(self, grace_s: float = 30.0) -> None:
        """Stop leasing; let attempts under way finish (up to ``grace_s``); hand the rest back."""
        self._stopping = True
        self._wake.set()
        if self._runner is not None:
            await self._runner
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
            free = self.limits.concurrency - len(self._inflight)
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
                task = asyncio.create_task(self._attempt(copy), name=f"deliver-{copy.recipient_id}")
                self._inflight[copy.recipient_id] = task
                task.add_done_callback(functools.partial(self._done, copy.recipient_id))
            if len(claimed) == free and free > 0:
                continue  # there may be more due right now
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.limits.poll_s)
            self.transport.close_idle()

    def _done(self, recipient_id: int, _task: asyncio.Task[None]) -> None:
        self._inflight.pop(recipient_id, None)
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

    async def _attempt(self, copy: QueuedCopy) -> None:
        semaphore = self._domains.setdefault(copy.domain, asyncio.Semaphore(self.limits.per_domain))
        async with semaphore:
            started = datetime.now(UTC)
            clock = time.monotonic()
            final = False
            suppressed: str | None = None
            outcome: Outcome | None = None
            failure: str | None = None
            try:
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
