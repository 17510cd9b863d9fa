"""Feedback mail end to end: bounces, complaints, replies and unsubscribes come back by SMTP (to the
bounce domain), through the API or the CLI, and land on the copy they are about."""

from __future__ import annotations

import email.policy
import json
import smtplib
import uuid
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import init_account
from tests.e2e.smtp_fixtures import Arrival, Receiver, receiver, relaying_server, wait_until
from tests.support import ServerProcess, run_cli

BOUNCE_DOMAIN = "bounces.track.test"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def sink() -> Any:
    with receiver() as found:
        yield found


def send(server: ServerProcess, key: str, to: str, subject: str = "Hello") -> dict[str, Any]:
    body = {
        "from": {"email": "news@sender.example"},
        "to": [{"email": to}],
        "subject": subject,
        "html": '<p><a href="https://example.com/offer">Offer</a></p>',
        "send": True,
    }
    response = httpx.post(f"{server.base_url}/v1/messages", json=body, headers=auth(key))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def recipient(server: ServerProcess, key: str, message_id: int) -> dict[str, Any]:
    response = httpx.get(f"{server.base_url}/v1/messages/{message_id}/recipients", headers=auth(key))
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()[0]
    return found


def events(server: ServerProcess, key: str, **params: Any) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.base_url}/v1/events", params=params, headers=auth(key))
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    return found


def suppressed(server: ServerProcess, key: str, address: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.base_url}/v1/suppressions", params={"email": address}, headers=auth(key))
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]
    return found


def to_bounce_domain(server: ServerProcess, rcpt: str, message: bytes) -> None:
    """Feedback arrives like any mail from the Internet: no AUTH, addressed to the bounce domain."""
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
        client.sendmail("", [rcpt], message)


def dsn(
    original: Arrival, final_recipient: str, status: str, diagnostic: str, action: str = "failed"
) -> bytes:
    boundary = "dsn-" + uuid.uuid4().hex
    headers = original.data.split(b"\r\n\r\n", 1)[0]
    return (
        (
            "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
            f"To: {original.mail_from}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@mx.example.org>\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n\r\n'
            f"--{boundary}\r\nContent-Type: text/plain\r\n\r\n"
            "This is the mail system at host mx.example.org. Your message could not be delivered.\r\n"
            f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; mx.example.org\r\n\r\n"
            f"Final-Recipient: rfc822; {final_recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
            f"Remote-MTA: dns; mx.example.org\r\nDiagnostic-Code: smtp; {diagnostic}\r\n\r\n"
            f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        ).encode()
        + headers
        + f"\r\n\r\n--{boundary}--\r\n".encode()
    )


def arf(original: Arrival) -> bytes:
    boundary = "arf-" + uuid.uuid4().hex
    return (
        (
            f"From: <feedback@fbl.mailbox.example>\r\nTo: <abuse@sender.example>\r\n"
            f"Subject: FW: Hello\r\nMessage-ID: <{uuid.uuid4().hex}@fbl.mailbox.example>\r\n"
            "MIME-Version: 1.0\r\n"
            f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"\r\n\r\n'
            f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n"
            f"--{boundary}\r\nContent-Type: message/feedback-report\r\n\r\n"
            "Feedback-Type: abuse\r\nUser-Agent: SomeMailbox/1.0\r\nVersion: 1\r\n"
            f"Original-Rcpt-To: <{original.rcpt_tos[0]}>\r\n\r\n"
            f"--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n"
        ).encode()
        + original.data
        + f"\r\n--{boundary}--\r\n".encode()
    )


def reply(original: Arrival, *, auto: bool = False) -> bytes:
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = original.rcpt_tos[0]
    message["To"] = "news@sender.example"
    message["Subject"] = ("Out of office: " if auto else "Re: ") + str(original.message["Subject"])
    message["Message-ID"] = make_msgid(domain="example.org")
    message["In-Reply-To"] = str(original.message["Message-ID"])
    message["References"] = str(original.message["Message-ID"])
    if auto:
        message["Auto-Submitted"] = "auto-replied"
    message.set_content("I am away until Monday." if auto else "Thanks, I am interested. Call me?")
    return message.as_bytes()


def test_a_hard_bounce_to_the_verp_address_bounces_the_copy_and_suppresses_it(
    database_url: str, tmp_path: Path, sink: Receiver
) -> None:
    key = init_account(database_url, f"fb-{uuid.uuid4().hex[:6]}")
    with relaying_server(database_url, tmp_path, sink.port) as server:
        created = send(server, key, "gone@example.org")
        original = sink.wait_for(1)[0]
        assert original.mail_from.endswith(f"@{BOUNCE_DOMAIN}")
        wait_until(lambda: recipient(server, key, created["id"])["status"] == "sent", "sent")
        to_bounce_domain(
            server, original.mail_from, dsn(original, "gone@example.org", "5.1.1", "550 5.1.1 User unknown")
        )

        def bounced_copy() -> dict[str, Any] | None:
            found = recipient(server, key, created["id"])
            return found if found["status"] == "bounced" else None

        copy = wait_until(bounced_copy, "bounced")
        bounced = events(server, key, message_id=created["id"], type="bounced")
        suppression = suppressed(server, key, "gone@example.org")
        # Mail to a suppressed address is dropped, never sent.
        again = send(server, key, "gone@example.org", "Second try")
        inbox = httpx.get(f"{server.base_url}/v1/inbound", headers=auth(key)).json()["data"]
    assert "user_unknown" in copy["status_detail"]
    assert len(bounced) == 1
    data = bounced[0]["data"]
    assert data["enhanced_code"] == "5.1.1"
    assert data["code"] == 550
    assert data["bounce_class"] == "hard"
    assert data["reason"] == "user_unknown"
    assert [s["reason"] for s in suppression] == ["hard_bounce"]
    assert suppression[0]["source_event_id"] == bounced[0]["id"]
    assert again["recipients"][0]["status"] == "dropped"
    assert len(sink.arrivals) == 1
    assert [(i["kind"], i["matched"], i["has_raw"]) for i in inbox] == [("bounce", True, False)]
    assert inbox[0]["explanation"]["matched"]["how"] == "verp"


def test_delay_complaint_reply_auto_reply_and_mailto_unsubscribe(
    database_url: str, tmp_path: Path, sink: Receiver
) -> None:
    key = init_account(database_url, f"fb-{uuid.uuid4().hex[:6]}")
    with relaying_server(database_url, tmp_path, sink.port) as server:
        first = send(server, key, "slow@example.org")
        second = send(server, key, "angry@example.org")
        third = send(server, key, "chatty@example.org")
        arrivals = {a.rcpt_tos[0]: a for a in sink.wait_for(3)}

        def all_sent() -> bool:
            return all(recipient(server, key, c["id"])["status"] == "sent" for c in (first, second, third))

        wait_until(all_sent, "all three sent")
        slow = arrivals["slow@example.org"]
        to_bounce_domain(
            server,
            slow.mail_from,
            dsn(slow, "slow@example.org", "4.2.2", "452 4.2.2 Mailbox full, will retry", action="delayed"),
        )
        # A complaint fetched from a feedback-loop mailbox and handed in through the API.
        complaint = httpx.post(
            f"{server.base_url}/v1/inbound",
            content=arf(arrivals["angry@example.org"]),
            headers={**auth(key), "Content-Type": "message/rfc822"},
        )
        assert complaint.status_code == 201, complaint.text
        chatty = arrivals["chatty@example.org"]
        # Replies come to the sender, who forwards them (here: the CLI reading a file).
        reply_file = tmp_path / "reply.eml"
        reply_file.write_bytes(reply(chatty))
        out = run_cli("inbound", str(reply_file), "--database-url", database_url)
        assert "reply -> replied" in out
        reply_file.write_bytes(reply(chatty, auto=True))
        assert "auto_reply -> auto_replied" in run_cli(
            "inbound", str(reply_file), "--database-url", database_url
        )
        # The mailto half of List-Unsubscribe: mail to it unsubscribes that copy's recipient.
        unsubscribe = str(chatty.message["List-Unsubscribe"]).split("mailto:")[1].rstrip(">")
        to_bounce_domain(server, unsubscribe, b"From: chatty@example.org\r\nSubject: unsubscribe\r\n\r\n\r\n")
        wait_until(lambda: events(server, key, type="unsubscribed"), "the unsubscribe")
        slow_copy = recipient(server, key, first["id"])
        kinds = {
            created["id"]: [e["type"] for e in events(server, key, message_id=created["id"])]
            for created in (first, second, third)
        }
        suppressions = {
            a: [s["reason"] for s in suppressed(server, key, a)]
            for a in ("angry@example.org", "chatty@example.org")
        }
    assert slow_copy["status"] == "deferred"
    assert kinds[first["id"]] == ["queued", "sent", "deferred"]
    assert kinds[second["id"]] == ["queued", "sent", "complained"]
    assert kinds[third["id"]] == ["queued", "sent", "replied", "auto_replied", "unsubscribed"]
    assert suppressions == {"angry@example.org": ["complaint"], "chatty@example.org": ["unsubscribed"]}


def test_unmatched_mail_is_kept_and_explain_stores_nothing(
    database_url: str, tmp_path: Path, sink: Receiver
) -> None:
    key = init_account(database_url, f"fb-{uuid.uuid4().hex[:6]}")
    other_key = init_account(database_url, f"fb-other-{uuid.uuid4().hex[:6]}")
    stray = (
        b"From: someone@example.net\r\nTo: postmaster@bounces.track.test\r\nSubject: hello?\r\n"
        b"Message-ID: <stray-" + uuid.uuid4().hex.encode() + b"@example.net>\r\n\r\nIs this thing on?\r\n"
    )
    with relaying_server(database_url, tmp_path, sink.port) as server:
        created = send(server, key, "x@example.org")
        original = sink.wait_for(1)[0]
        wait_until(lambda: recipient(server, key, created["id"])["status"] == "sent", "sent")
        bounce = dsn(original, "x@example.org", "5.1.1", "550 5.1.1 no such user")
        explained = tmp_path / "bounce.eml"
        explained.write_bytes(bounce.replace(original.mail_from.encode(), b"someone-else@example.net"))
        verdict = json.loads(
            run_cli(
                "inbound",
                "--explain",
                str(explained),
                "--to",
                original.mail_from,
                "--database-url",
                database_url,
                env={"MAILBEACON_BOUNCE_DOMAIN": BOUNCE_DOMAIN},
            )
        )
        # Another account's key cannot bounce this account's copy through the API.
        foreign = httpx.post(
            f"{server.base_url}/v1/inbound",
            content=bounce,
            headers={**auth(other_key), "Content-Type": "message/rfc822"},
        ).json()
        posted = httpx.post(
            f"{server.base_url}/v1/inbound",
            content=stray,
            headers={**auth(key), "Content-Type": "message/rfc822"},
        ).json()
        raw = httpx.get(f"{server.base_url}/v1/inbound/{posted['id']}/raw", headers=auth(key))
        unmatched = httpx.get(
            f"{server.base_url}/v1/inbound", params={"unmatched": "true"}, headers=auth(key)
        ).json()["data"]
        status_after = recipient(server, key, created["id"])["status"]
        hidden = httpx.get(f"{server.base_url}/v1/inbound/{posted['id']}", headers=auth(other_key))
    assert verdict["kind"] == "bounce"
    assert verdict["recipients"][0]["status"] == "5.1.1"
    assert verdict["matched"]["recipient_id"] == created["recipients"][0]["id"]
    assert verdict["matched"]["how"] == "verp"
    assert status_after == "sent"  # neither --explain nor the other account's report changed anything
    assert foreign["matched"] is False
    assert posted["matched"] is False
    assert raw.content == stray
    assert [u["id"] for u in unmatched] == [posted["id"]]
    assert hidden.status_code == 404


def test_suppressions_api(database_url: str, tmp_path: Path, sink: Receiver) -> None:
    key = init_account(database_url, f"fb-{uuid.uuid4().hex[:6]}")
    other_key = init_account(database_url, f"fb-other-{uuid.uuid4().hex[:6]}")
    with relaying_server(database_url, tmp_path, sink.port) as server:
        base = f"{server.base_url}/v1/suppressions"
        added = httpx.post(base, json={"email": "Blocked@Example.org"}, headers=auth(key))
        bad = httpx.post(base, json={"email": "not an address"}, headers=auth(key))
        dropped = send(server, key, "blocked@example.org")
        others = httpx.get(base, headers=auth(other_key)).json()["data"]
        removed = httpx.delete(f"{base}/blocked@example.org", headers=auth(key))
        missing = httpx.delete(f"{base}/blocked@example.org", headers=auth(key))
        sent = send(server, key, "blocked@example.org", "Now allowed")
        sink.wait_for(1)
    assert added.status_code == 201
    assert added.json()["email"] == "blocked@example.org"
    assert added.json()["reason"] == "manual"
    assert bad.status_code == 422
    assert "email" in bad.text
    assert dropped["recipients"][0]["status"] == "dropped"
    assert others == []
    assert removed.status_code == 204
    assert missing.status_code == 404
    assert sent["recipients"][0]["status"] == "queued"
    assert sink.arrivals[0].rcpt_tos == ["blocked@example.org"]
