"""Group commit for the mail path: write jobs from many SMTP sessions and deliveries share transactions.

One thread takes every job waiting and runs them in one transaction, each inside its own savepoint,
so a job that fails rolls back alone; then one commit (one fsync) makes them all durable, and only
then do their callers hear back. A message is acknowledged (250) after that commit, never before.
On SQLite this also keeps a process's writers from queueing on the database's single write lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection

from mailbeacon.store.database import Store
from mailbeacon.store.driver import Driver, Statement

log = logging.getLogger(__name__)

T = TypeVar("T")
Job = tuple[Callable[[Connection], Any], "concurrent.futures.Future[Any]"]


class BatchWriter:
    def __init__(self, store: Store, *, max_batch: int = 500) -> None:
        self.store = store
        self.max_batch = max_batch
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mail-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Finish every job already submitted, then stop."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None

    def submit(self, job: Callable[[Connection], T]) -> concurrent.futures.Future[T]:
        if self._thread is None:
            raise RuntimeError("the batch writer is not running")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((job, future))
        return future

    async def run(self, job: Callable[[Connection], T]) -> T:
        """Run ``job`` in a shared transaction; returns once that transaction is committed."""
        return await asyncio.wrap_future(self.submit(job))

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
            self._write(batch)

    def _write(self, batch: list[Job]) -> None:
        if len(batch) == 1:
            self._write_one(*batch[0])
            return
        outcomes: list[tuple[concurrent.futures.Future[Any], Any, BaseException | None]] = []
        try:
            with self.store.write() as conn:
                driver = Driver(conn)
                for job, future in batch:
                    # Savepoints on the driver's cursor: SQLAlchemy's begin_nested() costs ~150 µs.
                    driver.execute(_SAVEPOINT, ())
                    try:
                        value = job(conn)
                    except Exception as exc:
                        driver.execute(_ROLLBACK_TO, ())
                        outcomes.append((future, None, exc))
                    else:
                        outcomes.append((future, value, None))
                    driver.execute(_RELEASE, ())
        except Exception as exc:  # the transaction itself failed: nothing of this batch is stored
            log.exception("a batch of %d writes failed", len(batch))
            for _job, future in batch:
                future.set_exception(exc)
            return
        for future, value, error in outcomes:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)

    def _write_one(self, job: Callable[[Connection], Any], future: concurrent.futures.Future[Any]) -> None:
        """A job alone needs no savepoint: if it fails, its transaction rolls back."""
        try:
            with self.store.write() as conn:
                value = job(conn)
        except Exception as exc:
            future.set_exception(exc)
        else:
            future.set_result(value)


_SAVEPOINT = Statement("SAVEPOINT mailbeacon_job")
_ROLLBACK_TO = Statement("ROLLBACK TO SAVEPOINT mailbeacon_job")
_RELEASE = Statement("RELEASE SAVEPOINT mailbeacon_job")
