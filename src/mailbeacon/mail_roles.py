"""The mail path's roles in one process: the SMTP server and the delivery worker, started and stopped
together, inside the web server's event loop or on their own (``serve --role smtp|worker``)."""

from __future__ import annotations

import asyncio
import logging
import signal

from mailbeacon.config import Settings
from mailbeacon.delivery.compose import Composer
from mailbeacon.delivery.routing import router_for
from mailbeacon.delivery.transport import SmtpTransport
from mailbeacon.delivery.worker import DeliveryWorker, RetryPolicy, WorkerLimits
from mailbeacon.intake.smtp_server import IntakeHandler, start_smtp_server
from mailbeacon.store import Store
from mailbeacon.store.batch import BatchWriter
from mailbeacon.tracking.keyring import Keyring

log = logging.getLogger(__name__)


class MailRoles:
    def __init__(self, settings: Settings, store: Store, keyring: Keyring) -> None:
        self.settings = settings
        self.store = store
        self.keyring = keyring
        self.worker: DeliveryWorker | None = None
        self.intake: IntakeHandler | None = None
        self._server: asyncio.Server | None = None
        self.writer = BatchWriter(store)

    @property
    def enabled(self) -> bool:
        return "smtp" in self.settings.roles or "worker" in self.settings.roles

    async def start(self) -> None:
        settings = self.settings
        if not self.enabled:
            return
        self.writer.start()
        # aiosmtpd logs every command at INFO (AUTH lines included) and warns about its own deprecations.
        logging.getLogger("mail.log").setLevel(max(logging.ERROR, logging.getLogger().level))
        if "worker" in settings.roles:
            auth = None
            if settings.delivery_mode == "smarthost" and settings.smarthost_username:
                auth = (settings.smarthost_username, settings.smarthost_password.get_secret_value())
            self.worker = DeliveryWorker(
                self.store,
                Composer(
                    self.keyring.current_signer,
                    settings.resolved_bounce_domain(),
                    settings.resolved_dkim_dir(),
                ),
                router_for(settings),
                SmtpTransport(
                    settings.resolved_helo_name(), timeout_s=settings.delivery_timeout_s, auth=auth
                ),
                limits=WorkerLimits(
                    concurrency=settings.delivery_concurrency,
                    per_domain=settings.delivery_domain_concurrency,
                    lease_s=settings.delivery_lease_s,
                    poll_s=settings.delivery_poll_s,
                ),
                retry=RetryPolicy(settings.delivery_retry_initial_s, settings.delivery_retry_max_s),
                writer=self.writer,
            )
            self.worker.start()
        if "smtp" in settings.roles:
            worker = self.worker
            self.intake = IntakeHandler(
                self.store,
                settings,
                self.keyring.current_signer,
                on_queued=worker.wake if worker is not None else _nothing,
                writer=self.writer,
                worker=worker,
            )
            self._server = await start_smtp_server(self.intake, settings)
            log.info("SMTP listening on %s:%d", settings.resolved_smtp_host(), settings.smtp_port)

    async def stop(self) -> None:
        """Refuse new SMTP connections first, then let the worker finish what it has started."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self.worker is not None:
            await self.worker.stop()
        await self.writer.close()


def _nothing() -> None:
    return None


async def run_mail_roles(settings: Settings) -> None:
    """``serve`` without the web role: run until SIGTERM or SIGINT, then stop cleanly."""
    store = Store.from_url(settings.resolved_database_url(), sqlite_synchronous=settings.sqlite_synchronous)
    roles = MailRoles(settings, store, Keyring(store))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await roles.start()
    try:
        await stop.wait()
    finally:
        await roles.stop()
        store.dispose()
