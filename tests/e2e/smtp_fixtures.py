"""A real receiving SMTP server for end-to-end tests, and the mailbeacon server relaying to it."""

from __future__ import annotations

import contextlib
import email
import email.policy
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailbeacon.intake.certificates import make_self_signed
from tests.support import ServerProcess, free_port, running_server


@dataclass
class Arrival:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Receiver:
    """Records what it accepts; ``answer`` may refuse (e.g. "550 5.1.1 no such user")."""

    port: int
    arrivals: list[Arrival] = field(default_factory=list)
    answer: Callable[[Envelope], str | None] = lambda _envelope: None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refusal = self.answer(envelope)
        if refusal is not None:
            return refusal
        content = envelope.original_content or b""
        with self.lock:
            self.arrivals.append(Arrival(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(content)))
        return "250 2.0.0 OK: receiver took it"

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Arrival]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.arrivals) >= count:
                    return list(self.arrivals)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} deliveries at the receiver, got {len(self.arrivals)}")


@contextlib.contextmanager
def receiver(*, smtputf8: bool = True) -> Iterator[Receiver]:
    port = free_port()
    found = Receiver(port)
    controller = Controller(found, hostname="127.0.0.1", port=port, enable_SMTPUTF8=smtputf8)
    controller.start()
    try:
        yield found
    finally:
        controller.stop()


def relay_env(receiver_port: int, **extra: str) -> dict[str, str]:
    return {
        "MAILBEACON_DELIVERY_MODE": "smarthost",
        "MAILBEACON_SMARTHOST": f"127.0.0.1:{receiver_port}",
        "MAILBEACON_SMARTHOST_TLS": "none",
        "MAILBEACON_DELIVERY_POLL_S": "0.2",
        "MAILBEACON_BOUNCE_DOMAIN": "bounces.track.test",
        **extra,
    }


@contextlib.contextmanager
def relaying_server(
    database_url: str, tmp_path: Path, receiver_port: int, *args: str, **extra: str
) -> Iterator[ServerProcess]:
    data_dir = tmp_path / "data"
    if not (data_dir / "tls" / "smtp-cert.pem").exists():
        make_self_signed("mailbeacon.test", data_dir / "tls")
    with running_server(
        database_url, tmp_path, "--data-dir", str(data_dir), *args, env=relay_env(receiver_port, **extra)
    ) as server:
        yield server


def unverified_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def wait_until(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")
