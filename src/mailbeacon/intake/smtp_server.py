"""The SMTP server: submission for accounts (AUTH or a trusted network) and feedback mail for the
bounce domain. Never an open relay: mail for anyone else from anyone unauthenticated is refused.

``250`` after DATA means the message is committed to the store: from then on it is mailbeacon's.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mailbeacon.config import Settings
from mailbeacon.delivery.handoff import handed_copies
from mailbeacon.delivery.worker import DeliveryWorker
from mailbeacon.inbound.recording import receive
from mailbeacon.intake.options import OptionError
from mailbeacon.intake.smtp_protocol import LeanSMTP
from mailbeacon.intake.submission import Envelope as SubmissionEnvelope
from mailbeacon.intake.submission import prepare_submission
from mailbeacon.messages.service import Sending, write_message
from mailbeacon.rewrite.mime import MimeError
from mailbeacon.store import Store
from mailbeacon.store.accounts import Account, get_account
from mailbeacon.store.batch import BatchWriter
from mailbeacon.store.smtp_access import (
    SmtpLogin,
    TrustedNetwork,
    authenticate,
    list_trusted_networks,
    trusted_account,
)
from mailbeacon.tokens import TokenSigner

log = logging.getLogger(__name__)

TRUSTED_NETWORKS_REFRESH_S = 10.0
INLINE_PREPARE_BYTES = 64 * 1024


class IntakeHandler:
    """aiosmtpd's hooks: who may send to whom, and what DATA becomes."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        signer: Callable[[], TokenSigner],
        on_queued: Callable[[], None],
        writer: BatchWriter,
        worker: DeliveryWorker | None = None,
    ) -> None:
        """``worker``: the delivery worker of this process, which takes the copies it has room for
        straight from intake (see delivery/handoff.py)."""
        self.store = store
        self.writer = writer
        self.worker = worker
        self.settings = settings
        self.signer = signer
        self.on_queued = on_queued
        self.bounce_domain = settings.resolved_bounce_domain()
        self.report_address = settings.resolved_dmarc_report_address()
        self._networks: list[TrustedNetwork] = []
        self._accounts: dict[int, tuple[float, Account | None]] = {}
        self._networks_read = 0.0

    # --- who ---------------------------------------------------------------------------------

    def authenticator(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        try:
            username = auth_data.login.decode("utf-8")
            password = auth_data.password.decode("utf-8")
        except UnicodeDecodeError:
            return AuthResult(success=False, handled=False)
        with self.store.read() as conn:
            login = authenticate(conn, username, password)
        if login is None:
            log.info("SMTP AUTH failed for user %r from %s", username[:80], _ip(session))
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=login)

    def _trusted_account(self, session: Session) -> int | None:
        now = time.monotonic()
        if now - self._networks_read > TRUSTED_NETWORKS_REFRESH_S:
            with self.store.read() as conn:
                self._networks = list_trusted_networks(conn)
            self._networks_read = now
        return trusted_account(self._networks, _ip(session))

    def _login(self, session: Session) -> SmtpLogin | None:
        if session.authenticated and isinstance(session.auth_data, SmtpLogin):
            return session.auth_data
        account_id = self._trusted_account(session)
        if account_id is None:
            return None
        # Read with the trusted networks, as often: not once per RCPT and DATA.
        cached = self._accounts.get(account_id)
        if cached is None or cached[0] != self._networks_read:
            with self.store.read() as conn:
                cached = (self._networks_read, get_account(conn, account_id))
            self._accounts[account_id] = cached
        account = cached[1]
        return None if account is None else SmtpLogin(account, None)

    def _is_ours(self, address: str) -> bool:
        """Feedback mail: to the bounce domain, or to the DMARC reports address wherever it is."""
        address = address.strip("<>").lower()
        return address.rpartition("@")[2] == self.bounce_domain or address == self.report_address

    # --- hooks -------------------------------------------------------------------------------

    async def handle_exception(self, error: Exception) -> str:
        """Anything unexpected (the store unreachable, say) is a temporary failure: the client retries.
        aiosmtpd would otherwise answer a permanent 500 carrying the exception's text."""
        log.error("SMTP session error", exc_info=error)
        return "451 4.3.0 Temporary server error; try again later"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        login = self._login(session)
        ours = self._is_ours(address)
        if login is None and not ours:
            return "554 5.7.1 Relay access denied: authenticate (AUTH) or submit from a trusted network"
        if envelope.rcpt_tos and any(self._is_ours(r) for r in envelope.rcpt_tos) != ours:
            # Mail to the bounce domain is feedback for mailbeacon; anything else is relayed. One
            # transaction is one or the other, whichever order the recipients come in.
            return "452 4.5.3 Feedback mail and submissions go in separate transactions"
        if len(envelope.rcpt_tos) >= self.settings.smtp_max_recipients:
            return f"452 4.5.3 Too many recipients (at most {self.settings.smtp_max_recipients} per message)"
        local, _, domain = address.rpartition("@")
        if not local or not domain or len(local.encode()) > 64 or len(domain.encode()) > 255:
            return (
                "553 5.1.3 Recipient address is not valid (RFC 5321: local part up to 64, domain up to 255)"
            )
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if not isinstance(raw, bytes):
            raw = str(raw).encode("utf-8", "surrogateescape")
        if envelope.rcpt_tos and all(self._is_ours(r) for r in envelope.rcpt_tos):
            return await asyncio.to_thread(self._inbound, envelope, raw)
        login = self._login(session)
        if login is None:  # cannot happen after handle_RCPT, but never relay on an assumption
            return "554 5.7.1 Relay access denied"
        mail_from = str(envelope.mail_from or "")
        submitted = SubmissionEnvelope(
            mail_from="" if mail_from == "<>" else mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            client_ip=_ip(session),
            helo=str(session.host_name or ""),
            protocol=_protocol(session),
        )
        prepare = functools.partial(
            prepare_submission,
            login.account,
            login.credential,
            submitted,
            raw,
            hostname=self.settings.smtp_hostname,
            server_base_url=self.settings.resolved_public_base_url(),
        )
        try:
            # A large message is parsed and rewritten beside the event loop, which keeps serving the
            # other sessions (and tracking hits, deliveries) meanwhile; for a small one, the trip to a
            # thread and back costs more than the work.
            prepared = prepare() if len(raw) <= INLINE_PREPARE_BYTES else await asyncio.to_thread(prepare)
        except MimeError as exc:
            return f"554 5.6.0 Message refused: {_one_line(exc.reason)}"
        except OptionError as exc:
            return f"554 5.6.0 Message refused: {_one_line(str(exc))}"
        except Exception:
            log.exception("could not read a submitted message")
            return "451 4.3.0 Could not store the message; try again later"
        worker = self.worker
        reservation = None
        if worker is not None:
            reservation = worker.reserve([r.email.rpartition("@")[2] for r in prepared.new.recipients])
        sending = Sending(timedelta(seconds=self.settings.delivery_max_age_s), reservation)
        try:
            # Committed together with whatever else this process is writing right now (group commit).
            created = await self.writer.run(
                functools.partial(write_message, prepared=prepared, sending=sending)
            )
        except Exception:
            if reservation is not None and worker is not None:
                worker.cancel(reservation)
            log.exception("could not store a submitted message")
            return "451 4.3.0 Could not store the message; try again later"
        if reservation is not None and worker is not None:
            worker.take(reservation, handed_copies(created))
        if len(created.leased) < len(created.recipients):
            self.on_queued()
        return f"250 2.0.0 OK: queued as {created.id}"

    def _inbound(self, envelope: Envelope, raw: bytes) -> str:
        try:
            received = receive(
                self.store,
                raw,
                source="smtp",
                envelope_from=str(envelope.mail_from or ""),
                envelope_to=list(envelope.rcpt_tos),
                signer=self.signer(),
                our_domains=[self.bounce_domain],
                report_addresses=[self.report_address],
            )
        except Exception:
            log.exception("could not store feedback mail")
            return "451 4.3.0 Could not store the message; try again later"
        return f"250 2.0.0 OK: received as inbound {received.inbound_id}"


class LimitedSMTP(LeanSMTP):
    """aiosmtpd's SMTP (made leaner) with a cap on concurrent connections (answered 421, as Postfix does)."""

    def __init__(self, handler: IntakeHandler, counter: list[int], limit: int, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._counter = counter
        self._limit = limit
        self._counted = False
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._counter[0] >= self._limit and not self._counted:
            self._refused = True
            write = getattr(transport, "write", None)  # uvloop's transports are not asyncio subclasses
            if write is not None:
                write(b"421 4.7.0 Too many connections; try again later\r\n")
            transport.close()  # sends what was written, then closes
            return
        if not self._counted:
            self._counter[0] += 1
            self._counted = True
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return  # aiosmtpd never saw this connection
        if self._counted:
            self._counter[0] -= 1
            self._counted = False
        super().connection_lost(error)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    files = settings.resolved_tls_files()
    if files is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(files[0]), str(files[1]))
    return context


async def start_smtp_server(handler: IntakeHandler, settings: Settings) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    context = tls_context(settings)
    counter = [0]

    def factory() -> SMTP:
        return LimitedSMTP(
            handler,
            counter,
            settings.smtp_max_connections,
            data_size_limit=settings.smtp_max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=settings.smtp_hostname,
            ident="mailbeacon ESMTP",
            tls_context=context,
            require_starttls=False,
            timeout=settings.smtp_timeout_s,
            auth_required=False,
            auth_require_tls=True,
            authenticator=handler.authenticator,
            loop=loop,
        )

    # Several processes may listen on one port (SO_REUSEPORT): the kernel spreads connections.
    return await loop.create_server(
        factory, host=settings.resolved_smtp_host(), port=settings.smtp_port, reuse_port=True
    )


def _ip(session: Session) -> str:
    peer = session.peer
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer or "")


def _protocol(session: Session) -> str:
    name = "ESMTP" if session.extended_smtp else "SMTP"
    if session.ssl:
        name += "S"
    if session.authenticated:
        name += "A"
    return name


def _one_line(text: str) -> str:
    return " ".join(text.split())[:400]
