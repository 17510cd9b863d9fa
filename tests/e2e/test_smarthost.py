"""Smarthost delivery with STARTTLS and AUTH, as with a provider's submission server."""

from __future__ import annotations

import contextlib
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mailbeacon.intake.certificates import make_self_signed
from tests.e2e.conftest import init_account
from tests.e2e.smtp_fixtures import Receiver, relaying_server, wait_until
from tests.support import free_port

USER, PASSWORD = "relay-user", "s3cret-relay-password"


class Upstream(Receiver):
    logins: list[str]

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data == (USER.encode(), PASSWORD.encode())
        if ok:
            self.logins.append(mechanism)
        return AuthResult(success=ok)


@contextlib.contextmanager
def upstream(tmp_path: Path, *, tls: bool = True) -> Iterator[Upstream]:
    """A submission server; without ``tls`` it offers AUTH in the clear (as a stripped STARTTLS would)."""
    context: ssl.SSLContext | None = None
    if tls:
        cert, key = make_self_signed("smarthost.test", tmp_path / "upstream-tls")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert), str(key))
    port = free_port()
    found = Upstream(port)
    found.logins = []
    controller = Controller(
        found,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=tls,
        auth_required=True,
        auth_require_tls=tls,
        authenticator=found.authenticate,
    )
    controller.start()
    try:
        yield found
    finally:
        controller.stop()


def send(base: str, key: str, to: str) -> dict[str, Any]:
    body = {
        "from": {"email": "app@sender.example"},
        "to": [{"email": to}],
        "subject": "Your receipt",
        "text": "Thanks! Details: https://example.com/receipt/1",
        "send": True,
    }
    response = httpx.post(f"{base}/v1/messages", json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def attempts(base: str, key: str, created: dict[str, Any]) -> list[dict[str, Any]]:
    rid = created["recipients"][0]["id"]
    response = httpx.get(
        f"{base}/v1/messages/{created['id']}/recipients/{rid}/attempts",
        headers={"Authorization": f"Bearer {key}"},
    )
    found: list[dict[str, Any]] = response.json()
    return found


def test_starttls_and_auth_at_the_smarthost(database_url: str, tmp_path: Path) -> None:
    key = init_account(database_url, f"smarthost-{uuid.uuid4().hex[:6]}")
    with (
        upstream(tmp_path) as smarthost,
        relaying_server(
            database_url,
            tmp_path,
            smarthost.port,
            MAILBEACON_SMARTHOST_TLS="starttls",
            MAILBEACON_SMARTHOST_TLS_VERIFY="false",
            MAILBEACON_SMARTHOST_USERNAME=USER,
            MAILBEACON_SMARTHOST_PASSWORD=PASSWORD,
        ) as server,
    ):
        created = send(server.base_url, key, "customer@example.org")
        arrival = smarthost.wait_for(1)[0]
        found = wait_until(
            lambda: [a for a in attempts(server.base_url, key, created) if a["outcome"] == "sent"], "sent"
        )
        log = server.log()
    assert arrival.rcpt_tos == ["customer@example.org"]
    assert smarthost.logins
    assert found[0]["tls"] is True
    assert PASSWORD not in log


def test_an_unverifiable_smarthost_certificate_defers(database_url: str, tmp_path: Path) -> None:
    key = init_account(database_url, f"smarthost-{uuid.uuid4().hex[:6]}")
    with (
        upstream(tmp_path) as smarthost,
        relaying_server(
            database_url,
            tmp_path,
            smarthost.port,
            MAILBEACON_SMARTHOST_TLS="starttls",
            MAILBEACON_SMARTHOST_USERNAME=USER,
            MAILBEACON_SMARTHOST_PASSWORD=PASSWORD,
        ) as server,
    ):
        created = send(server.base_url, key, "customer@example.org")
        found = wait_until(lambda: attempts(server.base_url, key, created), "an attempt")
    assert found[0]["outcome"] == "deferred"
    assert "starttls" in found[0]["reply"]
    assert "certificate" in found[0]["reply"].lower()
    assert smarthost.arrivals == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # that server is the point
def test_the_password_never_goes_out_without_the_tls_asked_for(database_url: str, tmp_path: Path) -> None:
    key = init_account(database_url, f"smarthost-{uuid.uuid4().hex[:6]}")
    with (
        upstream(tmp_path, tls=False) as smarthost,
        relaying_server(
            database_url,
            tmp_path,
            smarthost.port,
            MAILBEACON_SMARTHOST_TLS="opportunistic",
            MAILBEACON_SMARTHOST_USERNAME=USER,
            MAILBEACON_SMARTHOST_PASSWORD=PASSWORD,
        ) as server,
    ):
        created = send(server.base_url, key, "customer@example.org")
        found = wait_until(lambda: attempts(server.base_url, key, created), "an attempt")
    assert found[0]["outcome"] == "deferred"
    assert "without TLS" in found[0]["reply"]
    assert smarthost.logins == []
    assert smarthost.arrivals == []
