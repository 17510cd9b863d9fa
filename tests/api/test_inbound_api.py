"""POST /v1/inbound and the replies setting, in-process on SQLite and PostgreSQL."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.conftest import KeyedAccount
from tests.mail_helpers import copy_of, create_message


def reply_to(message_id_header: str, sender: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: news@sender.example\r\nSubject: Re: Our November news\r\n"
        f"Message-ID: <reply-{abs(hash(message_id_header))}@example.org>\r\n"
        f"In-Reply-To: {message_id_header}\r\nReferences: {message_id_header}\r\n\r\n"
        "Sounds good, tell me more.\r\n"
    ).encode()


def post(client: TestClient, account: KeyedAccount, raw: bytes) -> dict[str, object]:
    response = client.post(
        "/v1/inbound", content=raw, headers={**account.auth, "Content-Type": "message/rfc822"}
    )
    assert response.status_code == 201, response.text
    found: dict[str, object] = response.json()
    return found


def test_replies_are_events_and_kept_only_when_the_account_asks(
    client: TestClient, account: KeyedAccount
) -> None:
    created = create_message(client, account.auth)
    ada = created["recipients"][0]
    copy = copy_of(client, account.auth, created["id"], ada["id"])
    first = post(client, account, reply_to(str(copy["Message-ID"]), "Ada <ada@example.org>"))
    assert first["kind"] == "reply"
    assert first["matched"] is True
    assert first["has_raw"] is False
    assert client.get(f"/v1/inbound/{first['id']}/raw", headers=account.auth).status_code == 404

    patched = client.patch("/v1/account", json={"keep_replies": True}, headers=account.auth)
    assert patched.json()["keep_replies"] is True
    raw = reply_to(str(copy["Message-ID"]), "ada@example.org")
    second = post(client, account, raw)
    assert second["has_raw"] is True
    assert client.get(f"/v1/inbound/{second['id']}/raw", headers=account.auth).content == raw

    replied = client.get(
        "/v1/events", params={"type": "replied", "message_id": created["id"]}, headers=account.auth
    ).json()["events"]
    assert [(e["recipient_id"], e["data"]["from"]) for e in replied] == [
        (ada["id"], "ada@example.org"),
        (ada["id"], "ada@example.org"),
    ]


def test_empty_body_is_refused(client: TestClient, account: KeyedAccount) -> None:
    response = client.post("/v1/inbound", content=b"  ", headers=account.auth)
    assert response.status_code == 422
    assert "raw message" in response.text


def test_unmatched_mail_over_the_limit_is_explained_but_not_kept(
    client: TestClient, account: KeyedAccount
) -> None:
    big = b"From: someone@example.net\r\nSubject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 2200
    posted = post(client, account, big)
    assert posted["matched"] is False
    assert posted["has_raw"] is False
    explanation = posted["explanation"]
    assert isinstance(explanation, dict)
    assert explanation["not_kept"] == "larger than 2097152 bytes"
    assert posted["size"] == len(big)
