"""POST /v1/messages and reading messages back, in-process on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from mailbeacon.store import Store
from mailbeacon.store.tables import links, messages, recipients
from tests.conftest import KeyedAccount, new_account
from tests.mail_helpers import body_of, copy_of, create_message, message_body, tracking_urls


def count(store: Store, table: Any, account_id: int) -> int:
    with store.read() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(table).where(table.c.account_id == account_id)
            ).scalar_one()
        )


def test_create_reports_what_was_tracked(client: TestClient, account: KeyedAccount) -> None:
    created = create_message(client, account.auth)
    assert [r["email"] for r in created["recipients"]] == ["ada@example.org", "bob@example.org"]
    tracking = created["tracking"]
    assert tracking["opens"] is True
    assert [link["url"] for link in tracking["links"]] == [
        "https://shop.example.com/sale?x=1&y=2#top",
        "https://blog.example.com/post",
    ]
    assert tracking["links"][0]["occurrences"] == 2, "the same URL in the HTML and text part is one link"
    reasons = {(s["part"], s["reason"]) for s in tracking["skipped"]}
    assert ("html", "mailto") in reasons
    assert ("html", "unsubscribe") in reasons


def test_each_copy_is_a_tracked_rfc5322_message(client: TestClient, account: KeyedAccount) -> None:
    created = create_message(client, account.auth)
    ada, bob = created["recipients"]
    mail = copy_of(client, account.auth, created["id"], ada["id"])
    assert mail["To"] == "Ada <ada@example.org>"
    assert mail["From"] == "Sender News <news@sender.example>"
    assert mail["Subject"] == "Our November news"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = body_of(mail, "html")
    text = body_of(mail, "plain")
    assert "shop.example.com" not in html
    assert "blog.example.com" not in html
    assert 'href="mailto:help@sender.example"' in html, "mailto links are left alone"
    assert len(tracking_urls(html, "c")) == 2
    assert len(tracking_urls(html, "o")) == 1
    assert tracking_urls(html, "u")
    assert tracking_urls(text, "u")
    assert mail["List-Unsubscribe"] == f"<{tracking_urls(html, 'u')[0]}>"
    assert "{{mb_unsubscribe}}" not in html + text
    other = body_of(copy_of(client, account.auth, created["id"], bob["id"]), "html")
    assert set(tracking_urls(other, "c")).isdisjoint(tracking_urls(html, "c")), "tokens are per recipient"
    assert mail["Message-ID"] != copy_of(client, account.auth, created["id"], bob["id"])["Message-ID"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"to": []}, "to"),
        ({"to": [{"email": "ok@example.org"}, {"email": "not an address"}]}, "to[1].email"),
        ({"from": {"email": "nobody"}}, "from.email"),
        ({"html": None, "text": None}, "html"),
        ({"headers": {"From": "evil@example.org"}}, "headers.From"),
        ({"headers": {"X-Ok": "line\r\nBcc: x@example.org"}}, "headers.X-Ok"),
        ({"subject": 5}, "subject"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(
    client: TestClient, account: KeyedAccount, store: Store, change: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/messages", json=message_body(**change), headers=account.auth)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert field in error["message"]
    assert count(store, messages, account.account.id) == 0
    assert count(store, recipients, account.account.id) == 0


def test_a_failure_half_way_stores_nothing(
    client: TestClient, account: KeyedAccount, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mailbeacon.messages.service as service

    def broken(*_args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(service, "insert_links", broken)
    with TestClient(client.app, raise_server_exceptions=False) as failing:
        response = failing.post("/v1/messages", json=message_body(), headers=account.auth)
    assert response.status_code == 500
    assert count(store, messages, account.account.id) == 0
    assert count(store, recipients, account.account.id) == 0
    assert count(store, links, account.account.id) == 0


def test_keys_are_required_and_checked(client: TestClient) -> None:
    assert client.post("/v1/messages", json=message_body()).status_code == 401
    wrong = {"Authorization": "Bearer mb_wrong"}
    response = client.get("/v1/events", headers=wrong)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_one_account_cannot_see_another(client: TestClient, account: KeyedAccount, store: Store) -> None:
    created = create_message(client, account.auth)
    mid, rid = created["id"], created["recipients"][0]["id"]
    intruder = new_account(store, "intruder")
    for path in (
        f"/v1/messages/{mid}",
        f"/v1/messages/{mid}/stats",
        f"/v1/messages/{mid}/recipients",
        f"/v1/messages/{mid}/recipients/{rid}/mime",
    ):
        assert client.get(path, headers=intruder.auth).status_code == 404, path
        assert client.get(path, headers=account.auth).status_code == 200, path
    html = body_of(copy_of(client, account.auth, mid, rid), "html")
    client.get(tracking_urls(html, "o")[0].replace("http://track.test", ""))
    assert client.get(f"/v1/events?message_id={mid}", headers=intruder.auth).json()["events"] == []
    assert len(client.get(f"/v1/events?message_id={mid}", headers=account.auth).json()["events"]) == 1


def test_tracking_switches(client: TestClient, account: KeyedAccount) -> None:
    created = create_message(client, account.auth, track_clicks=False, track_opens=False)
    assert created["tracking"]["links_tracked"] == 0
    assert created["tracking"]["opens"] is False
    html = body_of(copy_of(client, account.auth, created["id"], created["recipients"][0]["id"]), "html")
    assert 'href="https://shop.example.com/sale?x=1&amp;y=2#top"' in html
    assert tracking_urls(html, "o") == []
    patched = client.patch("/v1/account", json={"track_opens": False}, headers=account.auth)
    assert patched.json()["track_opens"] is False
    assert create_message(client, account.auth)["tracking"]["opens"] is False
    assert create_message(client, account.auth, track_opens=True)["tracking"]["opens"] is True


def test_excluded_domains_are_an_account_setting(client: TestClient, account: KeyedAccount) -> None:
    defaults = client.get("/v1/account", headers=account.auth).json()["excluded_domains"]
    assert "apps.apple.com" in defaults
    client.patch(
        "/v1/account", json={"excluded_domains": [*defaults, "blog.example.com"]}, headers=account.auth
    )
    created = create_message(client, account.auth)
    assert [link["url"] for link in created["tracking"]["links"]] == [
        "https://shop.example.com/sale?x=1&y=2#top"
    ]
    assert any(s["reason"] == "excluded_domain" for s in created["tracking"]["skipped"])


def test_threads_follow_references(client: TestClient, account: KeyedAccount) -> None:
    first = create_message(client, account.auth, to=[{"email": "ada@example.org"}])
    root = client.get(f"/v1/messages/{first['id']}", headers=account.auth).json()
    root_id = root["message_id_header"]
    assert root["thread_id"] == root_id
    reply = create_message(
        client,
        account.auth,
        to=[{"email": "ada@example.org"}],
        headers={"In-Reply-To": "<theirs@example.org>", "References": f"{root_id} <theirs@example.org>"},
    )
    assert client.get(f"/v1/messages/{reply['id']}", headers=account.auth).json()["thread_id"] == root_id
    mail = copy_of(client, account.auth, reply["id"], reply["recipients"][0]["id"])
    assert mail["In-Reply-To"] == "<theirs@example.org>"


def test_openapi_describes_the_api(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/v1/messages", "/v1/events", "/v1/messages/{message_id}/stats"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tracking_base_url": "javascript:alert(1)"}, "tracking_base_url"),
        ({"tracking_base_url": "https://t.example.com/?x=1"}, "tracking_base_url"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"excluded_domains": ["not a domain"]}, "excluded_domains"),
        ({"track_opens": "sometimes"}, "track_opens"),
    ],
)
def test_bad_settings_are_refused(
    client: TestClient, account: KeyedAccount, change: dict[str, Any], field: str
) -> None:
    response = client.patch("/v1/account", json=change, headers=account.auth)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field
    assert client.get("/v1/account", headers=account.auth).json()["timezone"] == "UTC"


def test_message_read_back_uses_the_api_field_names(client: TestClient, account: KeyedAccount) -> None:
    created = create_message(client, account.auth)
    message = client.get(f"/v1/messages/{created['id']}", headers=account.auth).json()
    assert message["from"] == {"email": "news@sender.example", "name": "Sender News"}
    assert message["campaign"] == "november"
    assert [link["position"] for link in message["links"]] == [0, 1]


def test_a_huge_upload_is_refused_with_413(database_url: str, store: Store, account: KeyedAccount) -> None:
    from mailbeacon.app import MailbeaconApp
    from mailbeacon.config import Settings

    settings = Settings(
        database_url=database_url,
        public_base_url="http://track.test",
        max_request_bytes=100_000,
        roles=["web"],
    )
    with TestClient(MailbeaconApp(settings, store=Store.from_url(database_url))) as small:
        huge = message_body(html="<p>" + "x" * 200_000 + "</p>")
        response = small.post("/v1/messages", json=huge, headers=account.auth)
        assert response.status_code == 413
        assert "larger than 100000 bytes" in response.json()["error"]["message"]

        def chunks() -> Any:
            for _ in range(30):
                yield b"x" * 10_000

        streamed = small.post("/v1/messages", content=chunks(), headers=account.auth)
        assert streamed.status_code == 413
        assert small.post("/v1/messages", json=message_body(), headers=account.auth).status_code == 201
    assert count(store, messages, account.account.id) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"to": [{"email": "a@example.org", "name": "Ada\r\nBcc: x@example.org"}]}, "to[0].name"),
        ({"from": {"email": "a@example.org", "name": "x\ny"}}, "from.name"),
        ({"to": [{"email": "a@example.org"}, {"email": "A@example.org"}]}, "to[1].email"),
        ({"headers": {"Reply-To": "a@"}}, "headers.Reply-To"),
        ({"headers": {"Reply-To": "x@example.org", "reply-to": "y@example.org"}}, "headers.reply-to"),
        ({"headers": {"Message-ID": "<" + "a" * 1000 + "@example.org>"}}, "headers.Message-ID"),
        ({"headers": {"References": "<" + "a" * 1000 + "@example.org>"}}, "headers.References"),
        ({"metadata": {"score": float("nan")}}, "metadata"),
    ],
)
def test_input_a_copy_could_not_carry_is_refused_up_front(
    client: TestClient, account: KeyedAccount, store: Store, change: dict[str, Any], field: str
) -> None:
    import json

    body = json.dumps(message_body(**change), allow_nan=True)
    response = client.post(
        "/v1/messages", content=body, headers={**account.auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert count(store, messages, account.account.id) == 0


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/messages/{2**63}",
        f"/v1/messages/{2**64}/stats",
        "/v1/messages/0",
        "/v1/messages/-1/recipients",
        f"/v1/messages/1/recipients/{2**63}/mime",
        f"/v1/events?message_id={2**63}",
        f"/v1/events?recipient_id={2**70}",
        "/v1/events?cursor=ZTkyMjMzNzIwMzY4NTQ3NzU4MDk5OTk",
        "/v1/events?cursor=not-a-cursor",
        "/v1/events?since=2026-01-01T00:00:00",
        "/v1/events?type=exploded",
        "/v1/events?limit=100000",
    ],
)
def test_out_of_range_parameters_are_422_not_500(
    client: TestClient, account: KeyedAccount, path: str
) -> None:
    response = client.get(path, headers=account.auth)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"]


@pytest.mark.parametrize("name", ["track_opens", "timezone", "scam_prevention"])
def test_null_is_refused_for_settings_that_cannot_be_unset(
    client: TestClient, account: KeyedAccount, name: str
) -> None:
    response = client.patch("/v1/account", json={name: None}, headers=account.auth)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == name


def test_null_resets_the_tracking_domain_and_excluded_domains(
    client: TestClient, account: KeyedAccount
) -> None:
    client.patch(
        "/v1/account",
        json={"tracking_base_url": "https://t.example.com", "excluded_domains": []},
        headers=account.auth,
    )
    reset = client.patch(
        "/v1/account", json={"tracking_base_url": None, "excluded_domains": None}, headers=account.auth
    ).json()
    assert reset["tracking_base_url"] is None
    assert "apps.apple.com" in reset["excluded_domains"]
