"""The composition root: builds every part from Settings and serves them as one ASGI app."""

from __future__ import annotations

import asyncio
import gc
import logging

from mailbeacon.api.app import create_api
from mailbeacon.api.limits import BodySizeLimit
from mailbeacon.api.services import Services
from mailbeacon.config import Settings
from mailbeacon.mail_roles import MailRoles
from mailbeacon.store import Store
from mailbeacon.tracking.client_address import ClientAddress
from mailbeacon.tracking.handler import TrackingHandler, is_tracking_request
from mailbeacon.tracking.ingest import enricher_from
from mailbeacon.tracking.keyring import Keyring
from mailbeacon.tracking.recorder import EventRecorder
from mailbeacon.types import Receive, Scope, Send

log = logging.getLogger(__name__)


class MailbeaconApp:
    """Tracking hits go straight to the bare handler; everything else to the API."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store or Store.from_url(
            settings.resolved_database_url(), sqlite_synchronous=settings.sqlite_synchronous
        )
        self.keyring = Keyring(self.store)
        self.recorder = EventRecorder(
            self.store,
            batch_window_s=settings.event_batch_window_ms / 1000,
            batch_max=settings.event_batch_max,
            enricher=enricher_from(settings),
        )
        self.tracking = TrackingHandler(self.keyring, self.recorder, ClientAddress(settings.trusted_proxies))
        self.services = Services(settings=settings, store=self.store, keyring=self.keyring)
        self.api = BodySizeLimit(create_api(self.services), settings.max_request_bytes)
        self.mail = MailRoles(settings, self.store, self.keyring)
        self.services.on_queued = self._wake_worker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_tracking_request(scope["path"], scope["query_string"]):
            await self.tracking(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self.api(scope, receive, send)

    def _wake_worker(self) -> None:
        if self.mail.worker is not None:
            self.mail.worker.wake()

    def start(self) -> None:
        self.recorder.start(asyncio.get_running_loop())
        # Everything built so far lives as long as the process: keep it out of the garbage
        # collector's full passes, which otherwise stall the hot path for milliseconds.
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        await self.mail.stop()
        await self.recorder.stop()
        self.store.dispose()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.start()
                    await self.mail.start()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                recorder = self.recorder
                log.info(
                    "stopped; this process stored %d tracking hits in %d transactions and ingested %d",
                    recorder.committed,
                    recorder.transactions,
                    recorder.ingested,
                )
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app() -> MailbeaconApp:
    """Factory for the ASGI server: settings come from the environment (the CLI sets them)."""
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return MailbeaconApp(settings)
