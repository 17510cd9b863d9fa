"""The open pixel, click redirect and unsubscribe endpoints, in-process on SQLite and PostgreSQL."""

from __future__ import annotations

import ipaddress
from typing import Any

from starlette.testclient import TestClient

from mailbeacon.app import MailbeaconApp
from mailbeacon.config import Settings
from mailbeacon.store import Store
from mailbeacon.tracking.pixel import TRANSPARENT_GIF
from tests.conftest import KeyedAccount
from tests.mail_helpers import body_of, copy_of, create_message, tracking_urls

CHROME_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
)


def local(url: str) -> str:
    return url.replace("http://track.test", "")


def tracked_copy(client: TestClient, account: KeyedAccount, **overrides: Any) -> tuple[dict[str, Any], str]:
    created = create_message(client, account.auth, **overrides)
    mail = copy_of(client, account.auth, created["id"], created["recipients"][0]["id"])
    return created, body_of(mail, "html")


def events(client: TestClient, account: KeyedAccount, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get("/v1/events", params=params, headers=account.auth).json()[
        "events"
    ]
    return found


def stats(client: TestClient, account: KeyedAccount, message_id: int) -> dict[str, Any]:
    found: dict[str, Any] = client.get(f"/v1/messages/{message_id}/stats", headers=account.auth).json()
    return found


def test_pixel_records_an_open(client: TestClient, account: KeyedAccount) -> None:
    created, html = tracked_copy(client, account)
    response = client.get(local(tracking_urls(html, "o")[0]), headers={"User-Agent": CHROME_UA})
    assert response.status_code == 200
    assert response.content == TRANSPARENT_GIF
    assert len(response.content) == 43
    assert response.headers["content-type"] == "image/gif"
    assert "no-store" in response.headers["cache-control"]
    [event] = events(client, account, type="opened")
    assert event["recipient_id"] == created["recipients"][0]["id"]
    assert event["user_agent"] == CHROME_UA
    assert event["human"] is True
    assert event["ip"] == "203.0.113.5"
    assert event["occurred_at"].endswith("Z") or event["occurred_at"].endswith("+00:00")


def test_click_records_and_redirects_to_the_recorded_url(client: TestClient, account: KeyedAccount) -> None:
    created, html = tracked_copy(client, account)
    first, second = tracking_urls(html, "c")
    response = client.get(local(first), headers={"User-Agent": CHROME_UA})
    assert response.status_code == 302
    assert response.headers["location"] == "https://shop.example.com/sale?x=1&y=2#top"
    assert client.get(local(second)).headers["location"] == "https://blog.example.com/post"
    numbers = stats(client, account, created["id"])
    assert numbers["clicks"]["all"] == {"total": 2, "unique": 1}
    assert numbers["opens"]["all"] == {"total": 0, "unique": 1}, "a click implies an open"
    assert numbers["opens_from_clicks"] == {"all": 1, "human": 0}, "and says so"
    # Both links of the message within a second: a link scanner's burst, not a reader.
    assert {e["machine_class"] for e in events(client, account, type="clicked")} == {"scanner"}
    assert numbers["clicks"]["human"] == {"total": 0, "unique": 0}
    assert numbers["statuses"] == {"delivered": 1, "created": 1}, "a click implies delivery"
    assert [(link["position"], link["clicks"]["all"]["total"]) for link in numbers["links"]] == [
        (0, 1),
        (1, 1),
    ]


def test_tampered_tokens_record_nothing_and_never_redirect(client: TestClient, account: KeyedAccount) -> None:
    created, html = tracked_copy(client, account)
    click = local(tracking_urls(html, "c")[0])
    pixel = local(tracking_urls(html, "o")[0])
    token = click.rsplit("/", 1)[1]
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (flipped, token[:-2], token + "x", "", "../../etc/passwd", "A" * 200, "%ff%fe"):
        response = client.get(f"/c/{bad}")
        assert response.status_code == 404, bad
        assert "location" not in response.headers
    # the open token is not a click token, and vice versa
    assert client.get("/c/" + pixel.rsplit("/", 1)[1].removesuffix(".gif")).status_code == 404
    bad_pixel = client.get(pixel[:-8] + ".gif")
    assert bad_pixel.status_code == 200
    assert bad_pixel.content == TRANSPARENT_GIF, "no broken image"
    assert client.get(f"/?_mb={flipped}").status_code == 404
    assert events(client, account) == []
    assert stats(client, account, created["id"])["clicks"]["all"]["total"] == 0


def test_head_and_missing_user_agent_are_not_human(client: TestClient, account: KeyedAccount) -> None:
    created, html = tracked_copy(client, account)
    click = local(tracking_urls(html, "c")[0])
    head = client.head(click, headers={"User-Agent": CHROME_UA})
    assert head.status_code == 302
    assert head.headers["location"].startswith("https://shop.example.com/")
    client.get(local(tracking_urls(html, "o")[0]), headers={"User-Agent": ""})
    client.get(click, headers={"User-Agent": CHROME_UA})
    found = {
        (e["type"], e["human"], e["machine_class"], e["machine_reason"]) for e in events(client, account)
    }
    assert {f[:3] for f in found} == {
        ("clicked", False, "scanner"),
        ("opened", False, "unknown"),
        ("clicked", True, "human"),
    }
    reasons = {kind + (" human" if human else ""): reason for kind, human, _, reason in found}
    assert "HEAD request" in reasons["clicked"]
    assert "no user agent" in reasons["opened"]
    assert "Chrome" in reasons["clicked human"]
    numbers = stats(client, account, created["id"])
    assert numbers["clicks"]["all"]["total"] == 2
    assert numbers["clicks"]["human"]["total"] == 1
    assert numbers["opens"]["human"]["total"] == 0
    assert numbers["opens"]["all"]["total"] == 1


def test_one_click_unsubscribe(client: TestClient, account: KeyedAccount) -> None:
    created, html = tracked_copy(client, account)
    url = local(tracking_urls(html, "u")[0])
    page = client.get(url)
    assert page.status_code == 200
    assert "<form" in page.text
    assert events(client, account) == [], "looking at the page (or a scanner fetching it) changes nothing"
    done = client.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200
    assert "set-cookie" not in done.headers
    [event] = events(client, account, type="unsubscribed")
    assert event["recipient"] == "ada@example.org"
    assert stats(client, account, created["id"])["unsubscribes"] == 1
    again = create_message(client, account.auth)
    assert [r["suppressed"] for r in again["recipients"]] == [True, False], "remembered for the account"
    copies = client.get(f"/v1/messages/{again['id']}/recipients", headers=account.auth).json()
    assert [(c["status"], c["status_detail"]) for c in copies] == [
        ("dropped", "suppressed: unsubscribed"),
        ("created", None),
    ]
    refused = client.get(
        f"/v1/messages/{again['id']}/recipients/{copies[0]['id']}/mime", headers=account.auth
    )
    assert refused.status_code == 409
    numbers = stats(client, account, again["id"])
    assert numbers["recipients"] == 2
    assert numbers["statuses"] == {"dropped": 1, "created": 1}
    other_pixel = tracking_urls(
        body_of(copy_of(client, account.auth, again["id"], copies[1]["id"]), "html"), "o"
    )
    client.get(local(other_pixel[0]), headers={"User-Agent": CHROME_UA})
    assert stats(client, account, again["id"])["rates"]["open_rate"] == 1.0, "rates leave dropped copies out"
    assert client.post(url[:-2] + "xx").status_code == 404


def test_path_preserving_links(client: TestClient, account: KeyedAccount) -> None:
    client.patch("/v1/account", json={"path_preserving_links": True}, headers=account.auth)
    _created, html = tracked_copy(client, account)
    links = [u for u in html.split('"') if "_mb=" in u]
    assert links[0].startswith("http://track.test/sale?x=1&amp;y=2&amp;_mb=")
    assert links[1].startswith("http://track.test/post?_mb=")
    response = client.get(local(links[0].replace("&amp;", "&")))
    assert response.status_code == 302
    assert response.headers["location"] == "https://shop.example.com/sale?x=1&y=2#top"
    assert [e["type"] for e in events(client, account)] == ["clicked"]


def test_forwarded_for_is_believed_only_from_trusted_proxies(
    database_url: str, store: Store, account: KeyedAccount
) -> None:
    settings = Settings(
        database_url=database_url,
        public_base_url="http://track.test",
        trusted_proxies="10.0.0.0/8",
        roles=["web"],
    )

    def app() -> MailbeaconApp:
        return MailbeaconApp(settings, store=Store.from_url(database_url))

    with TestClient(app(), base_url="http://track.test", client=("10.1.2.3", 5000)) as via_proxy:
        _c, html = tracked_copy(via_proxy, account)
        pixel = local(tracking_urls(html, "o")[0])
        via_proxy.get(pixel, headers={"X-Forwarded-For": "203.0.113.9, 10.9.9.9", "User-Agent": CHROME_UA})
    with TestClient(app(), base_url="http://track.test", client=("198.51.100.7", 5000)) as direct:
        direct.get(pixel, headers={"X-Forwarded-For": "203.0.113.66", "User-Agent": CHROME_UA})
        ips = [e["ip"] for e in events(direct, account)]
    assert ips == ["203.0.113.9", "198.51.100.7"]


def test_hits_are_committed_in_groups(client: TestClient, account: KeyedAccount, app: MailbeaconApp) -> None:
    import concurrent.futures

    created, html = tracked_copy(client, account)
    pixel = local(tracking_urls(html, "o")[0])
    before = app.recorder.transactions
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(
            pool.map(lambda _: client.get(pixel, headers={"User-Agent": CHROME_UA}).status_code, range(200))
        )
    assert codes == [200] * 200
    assert stats(client, account, created["id"])["opens"]["all"]["total"] == 200
    assert app.recorder.transactions - before < 200, "several hits share a transaction"


def test_hits_are_enriched_and_classified_when_ingested(
    settings: Settings, store: Store, account: KeyedAccount
) -> None:
    """An Apple Mail Privacy Protection prefetch from Apple's network, and a reader on Android, both
    behind a trusted proxy that names them in X-Forwarded-For."""
    proxied = settings.model_copy(update={"trusted_proxies": [ipaddress.ip_network("203.0.113.0/24")]})
    generic_webkit = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    )
    android = (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Version/4.0 Chrome/131.0.6778.81 Mobile Safari/537.36"
    )
    app = MailbeaconApp(proxied, store=store)
    peer = ("203.0.113.5", 50000)
    with TestClient(app, base_url="http://track.test", client=peer, follow_redirects=False) as client:
        created, html = tracked_copy(client, account)
        from_apple = {"User-Agent": generic_webkit, "X-Forwarded-For": "17.58.0.1"}
        assert client.get(local(tracking_urls(html, "o")[0]), headers=from_apple).status_code == 200
        from_phone = {
            "User-Agent": android,
            "X-Requested-With": "com.samsung.android.email.provider",
            "X-Forwarded-For": "66.249.84.1",
        }
        assert client.get(local(tracking_urls(html, "c")[0]), headers=from_phone).status_code == 302
        opened, clicked = (events(client, account, type=kind)[0] for kind in ("opened", "clicked"))
        numbers = stats(client, account, created["id"])
    assert (opened["machine_class"], opened["human"], opened["country"], opened["asn"]) == (
        "apple_privacy",
        False,
        "US",
        714,
    )
    assert opened["client"] == "Apple Mail"
    assert (clicked["machine_class"], clicked["human"], clicked["client"], clicked["platform"]) == (
        "human",
        True,
        "Samsung Email",
        "mobile",
    )
    assert clicked["asn"] == 15169
    assert numbers["opens"]["all"] == {"total": 1, "unique": 1}
    assert numbers["opens"]["human"] == {"total": 0, "unique": 1}, "the human click proves a human open"
