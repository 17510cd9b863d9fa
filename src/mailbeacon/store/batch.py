"""Group commit for the mail path: write jobs from many SMTP sessions and deliveries share transactions.

Every job waiting is run in one transaction, each inside its own savepoint, so a job that fails rolls
back alone; then one commit (one fsync) makes them all durable, and only then do their callers hear
back. A message is acknowledged (250) after that commit, never before.

Where the jobs run depends on the database:

* SQLite: the statements run on the event loop itself, for every job submitted since the last
  transaction; the commit (the fsync: 0.2 ms on a quiet disk, 4-30 ms on a busy one) runs on a
  thread, and the loop serves its sessions meanwhile while the next jobs gather. Running the
  statements on a thread was measured 5-40x slower per transaction under load: each statement
  releases the GIL, and getting it back from a busy event loop takes up to the interpreter's switch
  interval (5 ms). The loop never waits for the write lock either: while another process (or the
  tracking writer) holds it, the jobs wait and the loop tries again a moment later; and once it has
  found the lock taken, it leaves that moment free after each of its own commits, or two processes
  sharing a database would not take turns (the one committing would begin again at once).
* PostgreSQL: all of it on a thread of its own, since every statement waits for the network.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

from sqlalchemy import Connection, RootTransaction
from sqlalchemy.exc import OperationalError

from mailbeacon.store.database import Store
from mailbeacon.store.driver import Driver, Statement
from mailbeacon.store.engine import IMMEDIATE

log = logging.getLogger(__name__)

LOCK_RETRY_S = 0.001
CONTENTION_MEMORY_S = 1.0

T = TypeVar("T")
# The caller's future: an asyncio one on the loop, a thread-safe one for the writer thread.
Waiter: TypeAlias = concurrent.futures.Future[Any] | asyncio.Future[Any]
Job = tuple[Callable[[Connection], Any], Waiter]
Outcomes = list[tuple[Any, Exception | None]]  # each job's value or error, in order


class BatchWriter:
    def __init__(self, store: Store, *, max_batch: int = 500) -> None:
        self.store = store
        self.max_batch = max_batch
        self.on_loop = store.dialect == "sqlite"
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        # On the loop: the jobs for the next transaction, and the thread that commits.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[Job] = []
        self._flush_due = False
        self._committing = False
        self._contended_at = -CONTENTION_MEMORY_S  # when the write lock was last found taken
        self._committer: concurrent.futures.ThreadPoolExecutor | None = None

    def start(self) -> None:
        """Call on the event loop whose coroutines will submit jobs."""
        if self.on_loop:
            self._loop = asyncio.get_running_loop()
            self._committer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mail-commit")
        elif self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mail-writer", daemon=True)
            self._thread.start()

    async def close(self) -> None:
        """Finish every job already submitted, then stop."""
        if self.on_loop:
            while self._waiting or self._committing:
                self._flush()
                await asyncio.sleep(LOCK_RETRY_S)
            self._loop = None
            if self._committer is not None:
                self._committer.shutdown()
                self._committer = None
        elif self._thread is not None:
            self._jobs.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    async def run(self, job: Callable[[Connection], T]) -> T:
        """Run ``job`` in a shared transaction; returns once that transaction is committed."""
        if self._loop is not None:
            waiter: asyncio.Future[T] = self._loop.create_future()
            self._waiting.append((job, waiter))
            self._flush_soon()
            return await waiter
        if self._thread is None:
            raise RuntimeError("the batch writer is not running")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((job, future))
        return await asyncio.wrap_future(future)

    # --- SQLite: on the event loop ---------------------------------------------------------------

    def _flush_soon(self, delay: float = 0.0) -> None:
        if self._flush_due or self._loop is None:
            return
        self._flush_due = True
        if delay:
            self._loop.call_later(delay, self._flush)
        else:
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        if self._committing or not self._waiting:
            return  # the jobs gathering now go in once the commit under way is done
        batch = self._waiting[: self.max_batch]
        try:
            begun = self._begin_if_free()
        except Exception as exc:
            del self._waiting[: len(batch)]
            self._failed(batch, exc)
            self._flush_soon()
            return
        if begun is None:  # the write lock is taken: try again shortly
            self._contended_at = time.monotonic()
            self._flush_soon(LOCK_RETRY_S)
            return
        del self._waiting[: len(batch)]
        conn, transaction = begun
        try:
            outcomes = self._run_batch(conn, batch)
        except Exception as exc:  # a job alone failed: nothing to commit
            transaction.rollback()
            conn.close()
            self._failed(batch, exc)
            self._flush_soon()
            return
        assert self._loop is not None
        assert self._committer is not None
        self._committing = True
        commit = self._loop.run_in_executor(self._committer, _commit, conn, transaction)
        commit.add_done_callback(lambda done: self._committed(batch, outcomes, done))

    def _committed(self, batch: list[Job], outcomes: Outcomes, done: asyncio.Future[None]) -> None:
        self._committing = False
        error = done.exception()
        if error is None:
            self._answer(batch, outcomes)
        else:
            self._failed(batch, error if isinstance(error, Exception) else RuntimeError(str(error)))
        # Another process wanting the lock polls for it: leave it a moment before taking it again.
        contended = time.monotonic() - self._contended_at < CONTENTION_MEMORY_S
        self._flush_soon(LOCK_RETRY_S if contended else 0.0)

    def _begin_if_free(self) -> tuple[Connection, RootTransaction] | None:
        """A write transaction (BEGIN IMMEDIATE) if SQLite's write lock is free now, else None."""
        conn = self.store.engine.connect()
        try:
            conn.execution_options(**{IMMEDIATE: True})
            raw = conn.connection.driver_connection
            assert raw is not None
            timeout = raw.execute("PRAGMA busy_timeout").fetchone()[0]
            raw.execute("PRAGMA busy_timeout = 0")
            try:
                transaction = conn.begin()
            except OperationalError as exc:
                if getattr(exc.orig, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY:
                    raise
                conn.close()
                return None
            finally:
                raw.execute(f"PRAGMA busy_timeout = {int(timeout)}")
        except BaseException:
            conn.close()
            raise
        return conn, transaction

    # --- PostgreSQL: on a thread ----------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._jobs.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            try:
                with self.store.write() as conn:
                    outcomes = self._run_batch(conn, batch)
            except Exception as exc:
                self._failed(batch, exc)
            else:
                self._answer(batch, outcomes)

    # --- both -----------------------------------------------------------------------------------

    def _run_batch(self, conn: Connection, batch: list[Job]) -> Outcomes:
        """Run the jobs in the caller's transaction; a job that fails rolls back alone (a savepoint
        each, on the driver's cursor: SQLAlchemy's begin_nested() costs ~150 µs). A job alone needs
        no savepoint: if it fails, this raises and its transaction rolls back."""
        if len(batch) == 1:
            return [(batch[0][0](conn), None)]
        outcomes: Outcomes = []
        driver = Driver(conn)
        for job, _waiter in batch:
            driver.execute(_SAVEPOINT, ())
            try:
                outcomes.append((job(conn), None))
            except Exception as exc:
                driver.execute(_ROLLBACK_TO, ())
                outcomes.append((None, exc))
            driver.execute(_RELEASE, ())
        return outcomes

    def _answer(self, batch: list[Job], outcomes: Outcomes) -> None:
        for (_job, waiter), (value, error) in zip(batch, outcomes, strict=True):
            if waiter.done():  # its caller gave up waiting (a connection lost, say)
                continue
            if error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(value)

    def _failed(self, batch: list[Job], error: Exception) -> None:
        if len(batch) > 1:
            log.error("a batch of %d writes failed", len(batch), exc_info=error)
        for _job, waiter in batch:
            if not waiter.done():
                waiter.set_exception(error)


def _commit(conn: Connection, transaction: RootTransaction) -> None:
    try:
        transaction.commit()
    finally:
        conn.close()


_SAVEPOINT = Statement("SAVEPOINT mailbeacon_job")
_ROLLBACK_TO = Statement("ROLLBACK TO SAVEPOINT mailbeacon_job")
_RELEASE = Statement("RELEASE SAVEPOINT mailbeacon_job")
