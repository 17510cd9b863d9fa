"""The SMTP relay end to end: real clients submit, the real server tracks, signs and relays to a real
receiving server, and feedback mail comes back through the same SMTP port."""

from __future__ import annotations

import asyncio
import email.policy
import hashlib
import shutil
import smtplib
import subprocess
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import dkim
import httpx
import pytest

from mailbeacon.delivery.dkim import DkimKeyring, generate_key
from mailbeacon.store import Store
from mailbeacon.store.accounts import account_for_api_key
from tests.e2e.conftest import init_account
from tests.e2e.smtp_fixtures import Receiver, receiver, relaying_server, unverified_tls, wait_until
from tests.mail_helpers import tracking_urls
from tests.support import ServerProcess, run_cli

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def newsletter(
    to: str = "reader@example.org", *, track: str | None = None, extra: dict[str, str] | None = None
) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "Sender <news@sender.example>"
    mail["To"] = to
    mail["Subject"] = "The November issue"
    mail["X-Mailbeacon-Campaign"] = "november"
    mail["X-Mailbeacon-Tags"] = "newsletter, monthly"
    if track is not None:
        mail["X-Mailbeacon-Track"] = track
    for name, value in (extra or {}).items():
        mail[name] = value
    mail.set_content("Read it at https://example.com/issue/11 today.\n")
    mail.add_alternative(
        '<html><body><p>Read <a href="https://example.com/issue/11?utm=mail&amp;x=1">the issue</a>.</p>'
        '<p><a href="mailto:editor@sender.example">Write to us</a></p></body></html>\n',
        subtype="html",
    )
    mail.add_attachment(PDF, maintype="application", subtype="pdf", filename="issue-11.pdf")
    return mail


def message_status(server: ServerProcess, key: str, message_id: int) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.base_url}/v1/messages/{message_id}/recipients", headers=auth(key))
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def events_of(server: ServerProcess, key: str, message_id: int) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.base_url}/v1/events", params={"message_id": message_id}, headers=auth(key))
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    return found


def submit_with_auth(server: ServerProcess, key: str, mail: EmailMessage, to: list[str]) -> int:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
        client.starttls(context=unverified_tls())
        client.login("any-user", key)
        code, reply = client.mail("news@sender.example")
        assert code == 250
        for rcpt in to:
            assert client.rcpt(rcpt)[0] == 250
        code, reply = client.data(mail.as_bytes(policy=email.policy.SMTP))
    assert code == 250, reply
    return int(reply.decode().rsplit(" ", 1)[1])


def attachment_digest(message: EmailMessage) -> str:
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        return hashlib.sha256(payload).hexdigest()
    raise AssertionError("no attachment arrived")


@pytest.fixture
def sink() -> Any:
    with receiver() as found:
        yield found


def test_submitted_mail_arrives_tracked_signed_and_intact(
    database_url: str, tmp_path: Path, sink: Receiver
) -> None:
    key = init_account(database_url, f"relay-{uuid.uuid4().hex[:6]}")
    generated = generate_key("sender.example", "mb2026")
    DkimKeyring().save(generated, tmp_path / "data" / "dkim")
    with relaying_server(database_url, tmp_path, sink.port) as server:
        mail = newsletter()
        message_id = submit_with_auth(server, key, mail, ["reader@example.org"])
        arrival = sink.wait_for(1)[0]
        wait_until(lambda: message_status(server, key, message_id)[0]["status"] == "sent", "status sent")
        types = [e["type"] for e in events_of(server, key, message_id)]
    assert types == ["queued", "sent"]
    # VERP: the return path names this copy, on the bounce domain.
    assert arrival.mail_from.startswith("bounces+")
    assert arrival.mail_from.endswith("@bounces.track.test")
    assert arrival.rcpt_tos == ["reader@example.org"]
    received = arrival.message
    assert "X-Mailbeacon-Campaign" not in received
    assert "X-Mailbeacon-Tags" not in received
    unsubscribe = received["List-Unsubscribe"]
    assert "/u/" in unsubscribe
    assert "mailto:unsubscribe+" in unsubscribe
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # The links are tracking links; the mailto is not; the attachment is byte for byte the same.
    html = received.get_body(("html",))
    assert html is not None
    html_text = html.get_content()
    assert len(tracking_urls(html_text, "c")) == 1
    assert "mailto:editor@sender.example" in html_text
    assert len(tracking_urls(html_text, "o")) == 1
    plain = received.get_body(("plain",))
    assert plain is not None
    assert "/c/" in plain.get_content()
    assert "https://example.com/issue/11" not in arrival.data.decode("utf-8", "replace")
    assert attachment_digest(received) == hashlib.sha256(PDF).hexdigest()
    # DKIM: signed with the sender domain's key, and the signature verifies against its DNS record.
    records = {f"{generated.dns_name}.".encode(): generated.txt_record.encode()}
    assert received["DKIM-Signature"] is not None
    assert "d=sender.example" in received["DKIM-Signature"]
    assert dkim.verify(arrival.data, dnsfunc=lambda name, timeout=5: records.get(name))


def test_never_an_open_relay(database_url: str, tmp_path: Path, sink: Receiver) -> None:
    key = init_account(database_url, f"relay-{uuid.uuid4().hex[:6]}")
    with relaying_server(database_url, tmp_path, sink.port) as server:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
            client.ehlo()
            client.mail("spammer@elsewhere.example")
            code, reply = client.rcpt("victim@example.net")
        assert code == 554
        assert b"Relay access denied" in reply
        # AUTH is offered only over TLS, so a password never crosses the wire in clear.
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
            client.ehlo()
            with pytest.raises(smtplib.SMTPException):
                client.login("any-user", key)
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
            client.starttls(context=unverified_tls())
            with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
                client.login("any-user", "mb_not-a-key")
        assert refused.value.smtp_code == 535
        listed = httpx.get(f"{server.base_url}/v1/events", headers=auth(key)).json()["events"]
    assert listed == []
    assert sink.arrivals == []


def test_trusted_network_and_credential_defaults(database_url: str, tmp_path: Path, sink: Receiver) -> None:
    key = init_account(database_url, f"relay-{uuid.uuid4().hex[:6]}")
    login = f"crm-app-{uuid.uuid4().hex[:6]}"
    account = run_cli(
        "smtp", "list", "--database-url", database_url, "--account", _account_id(database_url, key)
    )
    assert "SMTP logins" in account
    out = run_cli(
        "smtp",
        "credential",
        login,
        "--track",
        "none",
        "--database-url",
        database_url,
        "--account",
        _account_id(database_url, key),
    )
    password = out.split("password (shown only now): ")[1].split()[0]
    assert f"username: {login}" in out
    run_cli(
        "smtp",
        "trust",
        "127.0.0.0/8",
        "--database-url",
        database_url,
        "--account",
        _account_id(database_url, key),
    )
    # Every client of these tests comes from 127.0.0.1: trust it only for as long as this test runs.
    try:
        with relaying_server(database_url, tmp_path, sink.port) as server:
            # From a trusted network: no AUTH needed; the account's defaults track everything.
            with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
                client.send_message(newsletter("trusted@example.org"), to_addrs=["trusted@example.org"])
            # With the credential made with --track none: nothing is tracked.
            with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
                client.starttls(context=unverified_tls())
                client.login(login, password)
                client.send_message(newsletter("plain@example.org"), to_addrs=["plain@example.org"])
            # The credential's default gives way to the message's own header.
            with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
                client.starttls(context=unverified_tls())
                client.login(login, password)
                mail = newsletter("clicks@example.org", track="clicks")
                client.send_message(mail, to_addrs=["clicks@example.org"])
            arrivals = {a.rcpt_tos[0]: a for a in sink.wait_for(3)}
    finally:
        run_cli("smtp", "untrust", "127.0.0.0/8", "--database-url", database_url)

    def html_of(address: str) -> str:
        body = arrivals[address].message.get_body(("html",))
        assert body is not None
        text: str = body.get_content()
        return text

    assert tracking_urls(html_of("trusted@example.org"), "c")
    assert tracking_urls(html_of("trusted@example.org"), "o")
    assert not tracking_urls(html_of("plain@example.org"), "c")
    assert not tracking_urls(html_of("plain@example.org"), "o")
    assert "https://example.com/issue/11?utm=mail&amp;x=1" in html_of("plain@example.org")
    assert arrivals["plain@example.org"].message["List-Unsubscribe"] is None
    assert tracking_urls(html_of("clicks@example.org"), "c")
    assert not tracking_urls(html_of("clicks@example.org"), "o")


def _account_id(database_url: str, key: str) -> str:
    store = Store.from_url(database_url)
    try:
        with store.read() as conn:
            account = account_for_api_key(conn, key)
    finally:
        store.dispose()
    assert account is not None
    return str(account.id)


def test_bad_submissions_are_refused_with_a_reason_and_store_nothing(
    database_url: str, tmp_path: Path, sink: Receiver
) -> None:
    key = init_account(database_url, f"relay-{uuid.uuid4().hex[:6]}")
    with relaying_server(
        database_url,
        tmp_path,
        sink.port,
        MAILBEACON_SMTP_MAX_RECIPIENTS="3",
        MAILBEACON_SMTP_MAX_MESSAGE_BYTES="50000",
    ) as server:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
            client.starttls(context=unverified_tls())
            client.login("u", key)
            client.mail("news@sender.example")
            codes = [client.rcpt(f"r{i}@example.org")[0] for i in range(4)]
            assert codes == [250, 250, 250, 452]
            client.rset()
            mail = newsletter(extra={"X-Mailbeacon-Metadata": "{not json"})
            with pytest.raises(smtplib.SMTPDataError) as bad_option:
                client.sendmail(
                    "news@sender.example", ["r@example.org"], mail.as_bytes(policy=email.policy.SMTP)
                )
            assert bad_option.value.smtp_code == 554
            assert b"X-Mailbeacon-Metadata" in bad_option.value.smtp_error
            mail = newsletter(extra={"X-Mailbeacon-Trak": "none"})
            with pytest.raises(smtplib.SMTPDataError) as typo:
                client.sendmail(
                    "news@sender.example", ["r@example.org"], mail.as_bytes(policy=email.policy.SMTP)
                )
            assert typo.value.smtp_code == 554
            assert b"X-Mailbeacon-Trak" in typo.value.smtp_error
            huge = b"Subject: big\r\n\r\n" + b"x" * 80 + b"\r\n" * 1 + (b"y" * 998 + b"\r\n") * 60
            with pytest.raises(smtplib.SMTPException) as too_big:
                client.sendmail("news@sender.example", ["r@example.org"], huge)
            assert "552" in str(too_big.value)
        listed = httpx.get(f"{server.base_url}/v1/events", headers=auth(key)).json()["events"]
    assert listed == []
    assert sink.arrivals == []


def test_aiosmtplib_submission_and_api_send(database_url: str, tmp_path: Path, sink: Receiver) -> None:
    key = init_account(database_url, f"relay-{uuid.uuid4().hex[:6]}")
    with relaying_server(database_url, tmp_path, sink.port) as server:
        submit = aiosmtplib.send(
            newsletter("async@example.org"),
            hostname="127.0.0.1",
            port=server.smtp_port,
            start_tls=True,
            validate_certs=False,
            username="anyone",
            password=key,
        )
        asyncio.run(submit)
        body = {
            "from": {"email": "news@sender.example"},
            "to": [{"email": "api@example.org"}],
            "subject": "Sent by the API",
            "html": '<p><a href="https://example.com/a">A</a></p>',
            "send": True,
        }
        created = httpx.post(f"{server.base_url}/v1/messages", json=body, headers=auth(key)).json()
        assert created["recipients"][0]["status"] == "queued"
        arrivals = {a.rcpt_tos[0]: a for a in sink.wait_for(2)}
        wait_until(
            lambda: message_status(server, key, created["id"])[0]["status"] == "sent", "the API copy sent"
        )
        attempts = httpx.get(
            f"{server.base_url}/v1/messages/{created['id']}/recipients/{created['recipients'][0]['id']}/attempts",
            headers=auth(key),
        ).json()
    assert set(arrivals) == {"async@example.org", "api@example.org"}
    assert len(attempts) == 1
    assert attempts[0]["outcome"] == "sent"
    assert attempts[0]["code"] == 250
    assert attempts[0]["host"] == "127.0.0.1"
    assert "receiver took it" in attempts[0]["reply"]
    assert "/c/" in arrivals["api@example.org"].data.decode()


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks (Debian package) is not installed")
def test_swaks_submission(database_url: str, tmp_path: Path, sink: Receiver) -> None:
    key = init_account(database_url, f"relay-{uuid.uuid4().hex[:6]}")
    with relaying_server(database_url, tmp_path, sink.port) as server:
        result = subprocess.run(
            [
                *("swaks", "--server", f"127.0.0.1:{server.smtp_port}", "--tls", "--auth", "LOGIN"),
                *("--auth-user", "swaks", "--auth-password", key, "--from", "news@sender.example"),
                *("--to", "swaks@example.org", "--header", "Subject: via swaks"),
                *("--body", "See https://example.com/swaks"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        arrival = sink.wait_for(1)[0]
    assert arrival.rcpt_tos == ["swaks@example.org"]
    assert "/c/" in arrival.data.decode()
