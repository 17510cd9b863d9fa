"""GET /v1/events: filters and cursor pagination, checked against the hits the test itself made."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.testclient import TestClient

from tests.conftest import KeyedAccount
from tests.mail_helpers import body_of, copy_of, create_message, tracking_urls

UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"


def local(url: str) -> str:
    return url.replace("http://track.test", "")


def page(client: TestClient, account: KeyedAccount, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/events", params=params, headers=account.auth)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def test_filters_and_pages_match_the_hits_made(client: TestClient, account: KeyedAccount) -> None:
    created = create_message(
        client,
        account.auth,
        to=[{"email": "a@example.org"}, {"email": "b@example.org"}, {"email": "c@example.org"}],
    )
    made: list[tuple[str, int]] = []  # (type, recipient id), in the order the hits were made
    marks: list[datetime] = []
    for recipient in created["recipients"]:
        html = body_of(copy_of(client, account.auth, created["id"], recipient["id"]), "html")
        client.get(local(tracking_urls(html, "o")[0]), headers={"User-Agent": UA})
        made.append(("opened", recipient["id"]))
        client.get(local(tracking_urls(html, "c")[0]), headers={"User-Agent": UA})
        made.append(("clicked", recipient["id"]))
        time.sleep(0.01)
        marks.append(datetime.now(UTC))

    everything = page(client, account, limit=1000)
    assert [(e["type"], e["recipient_id"]) for e in everything["events"]] == made
    assert everything["next_cursor"] is None

    # pages of two, followed by cursor, give the same events once each
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        result = page(client, account, **params)
        seen += [e["id"] for e in result["events"]]
        if result["next_cursor"] is None:
            break
        params["cursor"] = result["next_cursor"]
    assert seen == [e["id"] for e in everything["events"]]

    clicks = page(client, account, type="clicked")["events"]
    assert [e["recipient_id"] for e in clicks] == [rid for kind, rid in made if kind == "clicked"]
    assert all(e["url"] == "https://shop.example.com/sale?x=1&y=2#top" for e in clicks)
    both = page(client, account, type=["clicked", "opened"])["events"]
    assert len(both) == len(made)

    second = created["recipients"][1]["id"]
    mine = page(client, account, recipient_id=second)["events"]
    assert [(e["type"], e["recipient"]) for e in mine] == [
        ("opened", "b@example.org"),
        ("clicked", "b@example.org"),
    ]

    window = page(client, account, since=marks[0].isoformat(), until=marks[1].isoformat())["events"]
    assert [(e["type"], e["recipient_id"]) for e in window] == made[2:4]
    later = (marks[-1] + timedelta(hours=1)).isoformat()
    assert page(client, account, since=later)["events"] == []
    assert page(client, account, message_id=created["id"] + 1000)["events"] == []
