"""What operators do while the server runs: suppress an address with copies still queued, add a DKIM
key, look at feedback mail nobody could place."""

from __future__ import annotations

import smtplib
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import Envelope

from tests.e2e.conftest import init_account
from tests.e2e.smtp_fixtures import receiver, relaying_server, unverified_tls, wait_until
from tests.support import ServerProcess, run_cli


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def send(server: ServerProcess, key: str, to: str, sender: str = "news@sender.example") -> dict[str, Any]:
    body = {
        "from": {"email": sender},
        "to": [{"email": to}],
        "subject": "Hello",
        "text": "See https://example.com/x",
        "send": True,
    }
    response = httpx.post(f"{server.base_url}/v1/messages", json=body, headers=auth(key))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def copy_status(server: ServerProcess, key: str, created: dict[str, Any]) -> dict[str, Any]:
    response = httpx.get(f"{server.base_url}/v1/messages/{created['id']}/recipients", headers=auth(key))
    found: dict[str, Any] = response.json()[0]
    return found


def test_a_queued_copy_whose_address_gets_suppressed_is_dropped(database_url: str, tmp_path: Path) -> None:
    key = init_account(database_url, f"ops-{uuid.uuid4().hex[:6]}")
    with receiver() as sink:

        def greylist(envelope: Envelope) -> str | None:
            return "451 4.7.1 Greylisted, try again later"

        sink.answer = greylist
        with relaying_server(
            database_url, tmp_path, sink.port, MAILBEACON_DELIVERY_RETRY_INITIAL_S="0.5"
        ) as server:
            created = send(server, key, "leaving@example.org")
            wait_until(lambda: copy_status(server, key, created)["status"] == "deferred", "deferred")
            added = httpx.post(
                f"{server.base_url}/v1/suppressions", json={"email": "leaving@example.org"}, headers=auth(key)
            )
            assert added.status_code == 201
            sink.answer = lambda _envelope: None

            def dropped_copy() -> dict[str, Any] | None:
                found = copy_status(server, key, created)
                return found if found["status"] == "dropped" else None

            dropped = wait_until(dropped_copy, "dropped")
            kinds = [
                e["type"]
                for e in httpx.get(
                    f"{server.base_url}/v1/events", params={"message_id": created["id"]}, headers=auth(key)
                ).json()["events"]
            ]
    assert dropped["status_detail"] == "suppressed: manual"
    assert kinds[0] == "queued"
    assert kinds[-1] == "dropped"
    assert "deferred" in kinds
    assert sink.arrivals == []


def test_feedback_and_submission_never_share_a_transaction(database_url: str, tmp_path: Path) -> None:
    key = init_account(database_url, f"ops-{uuid.uuid4().hex[:6]}")
    with receiver() as sink, relaying_server(database_url, tmp_path, sink.port) as server:
        for order in (
            ["reader@example.org", "bounces+x@bounces.track.test"],
            ["bounces+x@bounces.track.test", "reader@example.org"],
        ):
            with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
                client.starttls(context=unverified_tls())
                client.login("u", key)
                client.mail("news@sender.example")
                assert client.rcpt(order[0])[0] == 250
                code, reply = client.rcpt(order[1])
                assert code == 452, order
                assert b"separate transactions" in reply


def test_unmatched_mail_by_smtp_is_listed_for_the_operator(database_url: str, tmp_path: Path) -> None:
    with receiver() as sink, relaying_server(database_url, tmp_path, sink.port) as server:
        subject = f"Question {uuid.uuid4().hex[:8]}"
        stray = (
            f"From: someone@example.net\r\nTo: info@bounces.track.test\r\nSubject: {subject}\r\n\r\nHi!\r\n"
        )
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
            client.sendmail("someone@example.net", ["info@bounces.track.test"], stray.encode())
    listed = run_cli("unmatched", "--database-url", database_url, "--limit", "500")
    line = next(line for line in listed.splitlines() if subject in line)
    inbound_id = line.split("\t")[0]
    assert line.endswith(f"\treply\tsomeone@example.net\t{subject}")
    shown = run_cli("unmatched", "--show", inbound_id, "--database-url", database_url)
    assert shown == stray.replace("\r\n", "\n")


def test_a_dkim_key_made_while_running_signs_the_next_message(database_url: str, tmp_path: Path) -> None:
    key = init_account(database_url, f"ops-{uuid.uuid4().hex[:6]}")
    with receiver() as sink, relaying_server(database_url, tmp_path, sink.port) as server:
        send(server, key, "first@example.org", sender="news@later.example")
        first = sink.wait_for(1)[0]
        run_cli("dkim", "generate", "later.example", "--data-dir", str(tmp_path / "data"), "--bits", "1024")
        # Keys are looked for every few seconds.
        wait_until(lambda: _signed_after_send(server, key, sink), "a signed copy", timeout=30)
    assert first.message["DKIM-Signature"] is None


def _signed_after_send(server: ServerProcess, key: str, sink: Any) -> bool:
    count = len(sink.arrivals)
    send(server, key, f"next{count}@example.org", sender="news@later.example")
    arrival = sink.wait_for(count + 1)[-1]
    return "d=later.example" in str(arrival.message["DKIM-Signature"] or "")


def test_a_null_sender_notice_is_relayed_untracked_with_a_null_sender(
    database_url: str, tmp_path: Path
) -> None:
    key = init_account(database_url, f"ops-{uuid.uuid4().hex[:6]}")
    notice = (
        "From: Mail Delivery System <MAILER-DAEMON@sender.example>\r\nTo: customer@example.org\r\n"
        "Subject: Delivery report\r\nContent-Type: text/html\r\n\r\n"
        '<p>See <a href="https://example.com/help">help</a></p>\r\n'
    )
    with receiver() as sink, relaying_server(database_url, tmp_path, sink.port) as server:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
            client.starttls(context=unverified_tls())
            client.login("u", key)
            client.sendmail("<>", ["customer@example.org"], notice.encode())
        arrival = sink.wait_for(1)[0]
    assert arrival.mail_from in ("", "<>")
    assert "https://example.com/help" in arrival.data.decode()
    assert "/o/" not in arrival.data.decode()
    assert arrival.message["List-Unsubscribe"] is None
    assert "@sender.example>" in str(arrival.message["Message-ID"])


def test_connections_over_the_limit_are_told_to_come_back(database_url: str, tmp_path: Path) -> None:
    with (
        receiver() as sink,
        relaying_server(database_url, tmp_path, sink.port, MAILBEACON_SMTP_MAX_CONNECTIONS="2") as server,
    ):
        first = smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10)
        second = smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10)
        try:
            with pytest.raises(smtplib.SMTPConnectError) as refused:
                smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10)
        finally:
            first.quit()
            second.quit()
        # A freed slot is usable again.
        wait_until(lambda: _greets(server.smtp_port), "a connection after the others closed")
        log = server.log()
    assert refused.value.smtp_code == 421
    assert b"Too many connections" in refused.value.smtp_error
    assert "Traceback" not in log


def _greets(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            return client.noop()[0] == 250
    except smtplib.SMTPConnectError:
        return False


def test_an_internationalised_address_needs_smtputf8_at_the_next_hop(
    database_url: str, tmp_path: Path
) -> None:
    key = init_account(database_url, f"ops-{uuid.uuid4().hex[:6]}")
    mail = "From: news@sender.example\r\nTo: jörg@example.org\r\nSubject: Grüße\r\n\r\nHallo\r\n".encode()
    with (
        receiver(smtputf8=False) as old_sink,
        relaying_server(database_url, tmp_path, old_sink.port) as server,
    ):
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
            client.starttls(context=unverified_tls())
            client.login("u", key)
            client.sendmail("news@sender.example", ["jörg@example.org"], mail, mail_options=["SMTPUTF8"])

        def bounced() -> list[dict[str, Any]]:
            events = httpx.get(
                f"{server.base_url}/v1/events", params={"type": "bounced"}, headers=auth(key)
            ).json()["events"]
            return [e for e in events if e["recipient"] == "jörg@example.org"]

        found = wait_until(bounced, "a bounce")
    assert found[0]["data"]["enhanced_code"] == "5.6.7"
    assert old_sink.arrivals == []
    with receiver(smtputf8=True) as sink, relaying_server(database_url, tmp_path / "2", sink.port) as server:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
            client.starttls(context=unverified_tls())
            client.login("u", key)
            client.sendmail("news@sender.example", ["jörg@example.org"], mail, mail_options=["SMTPUTF8"])
        arrival = sink.wait_for(1)[0]
    assert arrival.rcpt_tos == ["jörg@example.org"]
