"""Shared pieces of the mail-path end-to-end tests: recording SMTP receivers, mail-only server processes,
submissions with smtplib, trusted networks, and reading what the store says about the copies.

Receivers are real aiosmtpd servers on loopback addresses (127.0.0.2, 127.0.0.3 ... all of 127.0.0.0/8 can
be bound on Linux), so several "MX hosts" can listen on one port, the ``direct_port`` mailbeacon uses.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import signal
import smtplib
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Row, select

from mailbeacon.bootstrap import add_account, prepare_store
from mailbeacon.store import Store
from mailbeacon.store.accounts import Account
from mailbeacon.store.smtp_access import add_trusted_network, remove_trusted_network
from mailbeacon.store.tables import deliveries, delivery_attempts, events, recipients, suppressions
from tests.support import ServerProcess, free_port, mailbeacon_command

T = TypeVar("T")

# --- receivers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One message a receiver accepted (answered 250 after DATA)."""

    receiver: str  # the receiver's address
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    helo: str  # the client's EHLO/HELO name
    at: float  # time.monotonic() when the 250 was given


@dataclass
class RecordingHandler:
    """aiosmtpd hooks that record everything and answer what a test scripted.

    ``rcpt_replies[address]`` and ``data_replies[address]`` are lists of replies given, one per attempt,
    before the default 250 (addresses compared lower-cased). ``hold`` answers 451 to every RCPT and DATA:
    once ``set_hold(True)`` returns, the receiver accepts nothing more.
    ``data_delay_s`` waits before answering DATA (a slow receiver).
    """

    name: str
    messages: list[Received] = field(default_factory=list)
    rcpts: list[tuple[str, str]] = field(default_factory=list)  # (address, reply) of every RCPT seen
    rcpt_replies: dict[str, list[str]] = field(default_factory=dict)
    data_replies: dict[str, list[str]] = field(default_factory=dict)
    hold: bool = False
    data_delay_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set_hold(self, hold: bool) -> None:
        with self.lock:
            self.hold = hold

    def script_rcpt(self, address: str, *replies: str) -> None:
        with self.lock:
            self.rcpt_replies[address.lower()] = list(replies)

    def script_data(self, address: str, *replies: str) -> None:
        with self.lock:
            self.data_replies[address.lower()] = list(replies)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        with self.lock:
            scripted = self.rcpt_replies.get(address.lower())
            reply = scripted.pop(0) if scripted else None
            if reply is None and self.hold:
                reply = "451 4.3.2 Holding mail for a moment, try again later"
            self.rcpts.append((address, reply or "250"))
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_delay_s:
            await _sleep(self.data_delay_s)
        with self.lock:
            if self.hold:
                return "451 4.3.2 Holding mail for a moment, try again later"
            for rcpt in envelope.rcpt_tos:
                scripted = self.data_replies.get(rcpt.lower())
                if scripted:
                    return scripted.pop(0)
            content = envelope.original_content
            assert isinstance(content, bytes)
            self.messages.append(
                Received(
                    self.name,
                    str(envelope.mail_from),
                    tuple(envelope.rcpt_tos),
                    content,
                    str(session.host_name or ""),
                    time.monotonic(),
                )
            )
        return "250 2.0.0 OK: accepted"

    def received_for(self, address: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if address.lower() in (r.lower() for r in m.rcpt_tos)]

    def rcpts_for(self, address: str) -> list[str]:
        with self.lock:
            return [reply for rcpt, reply in self.rcpts if rcpt.lower() == address.lower()]

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.messages)


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


class Receiver:
    """A recording aiosmtpd server on ``address:port`` (see RecordingHandler)."""

    def __init__(self, address: str, port: int) -> None:
        self.address = address
        self.port = port
        self.handler = RecordingHandler(address)
        self._controller = Controller(self.handler, hostname=address, port=port, ready_timeout=10)

    def start(self) -> Receiver:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


def port_free_on_all(addresses: Sequence[str]) -> int:
    """A TCP port free on every one of these loopback addresses (MX hosts share the direct port)."""
    for _ in range(50):
        port = free_port()
        held: list[socket.socket] = []
        try:
            for address in addresses:
                sock = socket.socket()
                held.append(sock)
                sock.bind((address, port))
            return port
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError(f"no port free on all of {', '.join(addresses)}")


@contextmanager
def receivers(addresses: Sequence[str], port: int | None = None) -> Iterator[dict[str, Receiver]]:
    """Receivers on each address, all on one port (``port`` or a free one)."""
    chosen = port if port is not None else port_free_on_all(addresses)
    started: dict[str, Receiver] = {}
    try:
        for address in addresses:
            started[address] = Receiver(address, chosen).start()
        yield started
    finally:
        for receiver in started.values():
            receiver.stop()


# --- the store --------------------------------------------------------------------------------------


def open_store(database_url: str) -> Store:
    store = Store.from_url(database_url, pool_size=2)
    prepare_store(store)
    return store


def make_account(store: Store, prefix: str = "mail") -> Account:
    return add_account(store, f"{prefix}-{os.urandom(4).hex()}").account


def unique_source_address() -> str:
    """A loopback address to submit from, so a /32 trusted network is this test's own even in a database
    other tests share (the most specific trusted network wins, and a network can be trusted only once)."""
    return f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


@contextmanager
def trusted(store: Store, account_id: int, source: str) -> Iterator[str]:
    """Trust ``source``/32 for the account (before the server starts), and forget it afterwards."""
    network = str(ipaddress.ip_network(f"{source}/32"))
    with store.write() as conn:
        add_trusted_network(conn, account_id, network)
    try:
        yield network
    finally:
        with store.write() as conn:
            remove_trusted_network(conn, network)


def recipient_rows(store: Store, account_id: int) -> list[Row[Any]]:
    with store.read() as conn:
        return list(
            conn.execute(
                select(recipients).where(recipients.c.account_id == account_id).order_by(recipients.c.id)
            )
        )


def recipient_row(store: Store, message_id: int, email: str) -> Row[Any]:
    with store.read() as conn:
        row = conn.execute(
            select(recipients).where(recipients.c.message_id == message_id, recipients.c.email == email)
        ).one_or_none()
    assert row is not None, f"no copy of message {message_id} for {email} in the store"
    return row


def events_of(store: Store, recipient_id: int) -> list[Row[Any]]:
    with store.read() as conn:
        return list(
            conn.execute(select(events).where(events.c.recipient_id == recipient_id).order_by(events.c.id))
        )


def attempts_of(store: Store, recipient_id: int) -> list[Row[Any]]:
    with store.read() as conn:
        return list(
            conn.execute(
                select(delivery_attempts)
                .where(delivery_attempts.c.recipient_id == recipient_id)
                .order_by(delivery_attempts.c.id)
            )
        )


def attempts_of_account(store: Store, account_id: int) -> list[Row[Any]]:
    with store.read() as conn:
        return list(
            conn.execute(
                select(delivery_attempts)
                .where(delivery_attempts.c.account_id == account_id)
                .order_by(delivery_attempts.c.id)
            )
        )


def queued_of_account(store: Store, account_id: int) -> list[Row[Any]]:
    with store.read() as conn:
        return list(conn.execute(select(deliveries).where(deliveries.c.account_id == account_id)))


def suppressed_emails(store: Store, account_id: int) -> dict[str, str]:
    with store.read() as conn:
        rows = conn.execute(
            select(suppressions.c.email, suppressions.c.reason).where(suppressions.c.account_id == account_id)
        )
        return {row.email: row.reason for row in rows}


def describe_copy(store: Store, recipient_id: int) -> str:
    """What the store says about a copy, for failure messages."""
    with store.read() as conn:
        row = conn.execute(select(recipients).where(recipients.c.id == recipient_id)).one_or_none()
        queued = conn.execute(select(deliveries).where(deliveries.c.recipient_id == recipient_id)).first()
    lines = [
        f"copy {recipient_id}: "
        + (f"{row.email} status={row.status!r} detail={row.status_detail!r}" if row else "not in the store")
    ]
    if queued is not None:
        lines.append(
            f"  queue: attempts={queued.attempts} next={queued.next_attempt_at} lease={queued.lease_owner} "
            f"until={queued.lease_until} last_error={queued.last_error!r}"
        )
    for event in events_of(store, recipient_id):
        lines.append(f"  event {event.type} at {event.occurred_at}: {event.data}")
    for attempt in attempts_of(store, recipient_id):
        lines.append(
            f"  attempt {attempt.outcome} host={attempt.host} ip={attempt.ip}:{attempt.port} "
            f"code={attempt.code} enhanced={attempt.enhanced_code} reply={attempt.reply!r}"
        )
    return "\n".join(lines)


def wait_for(check: Callable[[], T | None], timeout: float, explain: Callable[[], str]) -> T:
    """Poll ``check`` until it returns something other than None (or False); fail with ``explain()``."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s: {explain()}")
        time.sleep(0.05)


def wait_for_status(
    store: Store,
    message_id: int,
    email: str,
    wanted: str,
    timeout: float = 15,
    server: ServerProcess | None = None,
) -> Row[Any]:
    """The copy once its status is ``wanted``; fails showing its events and attempts otherwise."""

    def check() -> Row[Any] | None:
        row = recipient_row(store, message_id, email)
        return row if row.status == wanted else None

    def explain() -> str:
        row = recipient_row(store, message_id, email)
        text = f"expected the copy for {email} to become {wanted!r}; the store says:\n"
        text += describe_copy(store, int(row.id))
        if server is not None:
            text += "\nserver log (end):\n" + server.log()[-3000:]
        return text

    return wait_for(check, timeout, explain)


# --- submitting -------------------------------------------------------------------------------------


def submit(
    port: int, source: str, mail_from: str, rcpt_tos: Sequence[str], data: bytes, *, timeout: float = 15
) -> int:
    """One message through the SMTP server; returns the message id its ``250 ... queued as N`` names."""
    with smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=timeout) as client:
        return submit_on(client, mail_from, rcpt_tos, data)


def submit_on(client: smtplib.SMTP, mail_from: str, rcpt_tos: Sequence[str], data: bytes) -> int:
    client.ehlo_or_helo_if_needed()
    code, reply = client.mail(mail_from)
    assert code == 250, f"MAIL FROM answered {code} {reply!r}"
    for rcpt in rcpt_tos:
        code, reply = client.rcpt(rcpt)
        assert code == 250, f"RCPT TO {rcpt} answered {code} {reply!r}"
    code, reply = client.data(data)
    assert code == 250, f"DATA answered {code} {reply!r}"
    text = reply.decode()
    assert "queued as " in text, text
    return int(text.rsplit("queued as ", 1)[1].split()[0])


# --- mail-only server processes -----------------------------------------------------------------------


def wait_for_port(host: str, port: int, process: ServerProcess, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise AssertionError(f"server exited early:\n{process.log()}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {host}:{port}:\n{process.log()}")


@contextmanager
def mail_process(
    database_url: str, tmp_path: Path, *roles: str, env: dict[str, str] | None = None, name: str = "mail"
) -> Iterator[ServerProcess]:
    """``mailbeacon serve --role ...`` without the web role: ready once it says it runs (and, with the
    smtp role, once its port answers)."""
    smtp_port = free_port()
    log_path = tmp_path / f"{name}-{smtp_port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                *mailbeacon_command(),
                "serve",
                "--database-url",
                database_url,
                *(f"--role={role}" for role in roles),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env={
                **os.environ,
                "MAILBEACON_SMTP_PORT": str(smtp_port),
                "MAILBEACON_DATA_DIR": str(tmp_path / "data"),
                **(env or {}),
            },
            start_new_session=True,
        )
    server = ServerProcess(process, "", log_path, smtp_port)
    try:
        wait_for(
            lambda: "mailbeacon running" in server.log() or None,
            30,
            lambda: f"`serve --role {' --role '.join(roles)}` did not start:\n{server.log()}",
        )
        if "smtp" in roles:
            wait_for_port("127.0.0.1", smtp_port, server)
        yield server
    finally:
        server.stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
