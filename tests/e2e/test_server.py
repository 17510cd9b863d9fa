"""The real server on loopback, driven by a real HTTP client, as a sender and a recipient would."""

from __future__ import annotations

import signal
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mailbeacon.store import Store
from mailbeacon.store.tables import events
from mailbeacon.tracking.ingest import catch_up
from tests.e2e.conftest import init_account
from tests.mail_helpers import body_of, parse_mime, tracking_urls
from tests.support import run_cli, running_server, target_site

UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def send_message(base: str, key: str, html: str, to: list[str]) -> dict[str, Any]:
    body = {
        "from": {"email": "sales@sender.example"},
        "to": [{"email": e} for e in to],
        "subject": "Hello",
        "html": html,
    }
    response = httpx.post(f"{base}/v1/messages", json=body, headers=auth(key))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def copy_html(base: str, key: str, message_id: int, recipient_id: int) -> str:
    response = httpx.get(f"{base}/v1/messages/{message_id}/recipients/{recipient_id}/mime", headers=auth(key))
    assert response.status_code == 200, response.text
    return body_of(parse_mime(response.content), "html")


def stats(base: str, key: str, message_id: int) -> dict[str, Any]:
    response = httpx.get(f"{base}/v1/messages/{message_id}/stats", headers=auth(key))
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def test_message_pixel_click_and_stats(database_url: str, tmp_path: Path) -> None:
    key = init_account(database_url, f"e2e-{uuid.uuid4().hex[:6]}")
    other_key = init_account(database_url, f"other-{uuid.uuid4().hex[:6]}")
    with target_site() as site, running_server(database_url, tmp_path) as server:
        base = server.base_url
        html = f'<html><body><a href="{site.base_url}/landing?utm=1&amp;b=2">Go</a></body></html>'
        created = send_message(base, key, html, ["ada@example.org"])
        rid = created["recipients"][0]["id"]
        tracked = copy_html(base, key, created["id"], rid)
        assert site.base_url not in tracked

        pixel = httpx.get(tracking_urls(tracked, "o")[0], headers={"User-Agent": UA})
        assert pixel.status_code == 200
        assert len(pixel.content) == 43
        with httpx.Client(follow_redirects=True, headers={"User-Agent": UA}) as browser_like:
            landed = browser_like.get(tracking_urls(tracked, "c")[0])
        assert landed.status_code == 200
        assert str(landed.url) == f"{site.base_url}/landing?utm=1&b=2"
        assert site.requests == ["/landing?utm=1&b=2"]

        numbers = stats(base, key, created["id"])
        assert numbers["opens"]["all"] == {"total": 1, "unique": 1}
        assert numbers["clicks"]["all"] == {"total": 1, "unique": 1}
        assert numbers["links"][0]["url"] == f"{site.base_url}/landing?utm=1&b=2"

        # tampering: nothing recorded, never a redirect
        click = tracking_urls(tracked, "c")[0]
        tampered = click[:-1] + ("B" if click[-1] == "A" else "A")
        response = httpx.get(tampered)
        assert response.status_code == 404
        assert "location" not in response.headers
        assert httpx.get(f"{base}/c/{'A' * 30}").status_code == 404
        assert httpx.get(f"{base}/anything?_mb=forged").status_code == 404
        assert stats(base, key, created["id"])["clicks"]["all"]["total"] == 1

        # isolation: the other account's key sees nothing of this message
        assert (
            httpx.get(f"{base}/v1/messages/{created['id']}/stats", headers=auth(other_key)).status_code == 404
        )
        other_events = httpx.get(f"{base}/v1/events", headers=auth(other_key)).json()["events"]
        assert other_events == []
        mine = httpx.get(f"{base}/v1/events", headers=auth(key)).json()["events"]
        assert [(e["type"], e["user_agent"]) for e in mine] == [("opened", UA), ("clicked", UA)]


def stored_user_agents(database_url: str, message_id: int) -> set[str]:
    store = Store.from_url(database_url)
    try:
        # As every reader does (the API, `mailbeacon stats`): hits answered but not yet ingested,
        # such as those a killed server left in the journal, are ingested first.
        catch_up(store)
        with store.read() as conn:
            rows = conn.execute(select(events.c.user_agent).where(events.c.message_id == message_id))
            return {str(agent) for agent in rows.scalars()}
    finally:
        store.dispose()


@pytest.mark.parametrize(
    ("stop_signal", "workers"),
    [(signal.SIGTERM, 1), (signal.SIGKILL, 1), (signal.SIGTERM, 2)],
    ids=["sigterm", "kill-9", "sigterm-2-workers"],
)
def test_no_answered_hit_is_lost_on_stop_or_crash(
    database_url: str, tmp_path: Path, stop_signal: signal.Signals, workers: int
) -> None:
    """Every click that got its redirect is in the store, whatever stops the server. Each request
    carries its own user agent, so each answered hit is looked up by itself."""
    key = init_account(database_url, f"load-{uuid.uuid4().hex[:6]}")
    answered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    with running_server(database_url, tmp_path, "--workers", str(workers)) as server:
        to = [f"r{i}@example.org" for i in range(20)]
        html = '<html><body><a href="https://example.com/x">x</a></body></html>'
        created = send_message(server.base_url, key, html, to)
        clicks = [
            tracking_urls(copy_html(server.base_url, key, created["id"], r["id"]), "c")[0]
            for r in created["recipients"]
        ]

        def hammer(worker: int) -> None:
            with httpx.Client(timeout=10) as client:
                for i in range(100_000):
                    if stop.is_set():
                        return
                    agent = f"load-test/{worker}-{i}"
                    try:
                        response = client.get(clicks[i % len(clicks)], headers={"User-Agent": agent})
                    except httpx.HTTPError:
                        return  # the server has gone away
                    if response.status_code == 302:
                        with lock:
                            answered.append(agent)

        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        while len(answered) < 300:
            threading.Event().wait(0.05)
        code = server.stop(stop_signal)
        stop.set()
        for thread in threads:
            thread.join(30)
        if stop_signal == signal.SIGTERM:
            assert code == 0, server.log()
    stored = stored_user_agents(database_url, created["id"])
    lost = [agent for agent in answered if agent not in stored]
    assert len(answered) >= 300
    assert lost == [], f"{len(lost)} of {len(answered)} answered clicks are not stored"


def test_rotated_keys_keep_old_links_and_new_ones_work(database_url: str, tmp_path: Path) -> None:
    key = init_account(database_url, f"rot-{uuid.uuid4().hex[:6]}")
    with running_server(database_url, tmp_path) as server:
        base = server.base_url
        created = send_message(
            base, key, '<html><body><a href="https://example.com/a">a</a></body></html>', ["a@example.org"]
        )
        old_click = tracking_urls(copy_html(base, key, created["id"], created["recipients"][0]["id"]), "c")[0]
        run_cli("keys", "rotate", "--database-url", database_url)
        html_file = tmp_path / "mail.html"
        html_file.write_text('<html><body><a href="https://example.com/b">b</a></body></html>')
        # a separate process (the CLI) signs with the new key; the running server has never seen it
        out = run_cli(
            "prepare",
            str(html_file),
            "--to",
            "b@example.org",
            "--database-url",
            database_url,
            "--public-base-url",
            base,
            "--account",
            _account_name(database_url, key),
        )
        new_click = tracking_urls(out, "c")[0]
        assert new_click.rsplit("/", 1)[1] != old_click.rsplit("/", 1)[1]
        assert httpx.get(new_click).headers.get("location") == "https://example.com/b"
        assert httpx.get(old_click).headers.get("location") == "https://example.com/a"


def _account_name(database_url: str, key: str) -> str:
    from mailbeacon.store.accounts import account_for_api_key

    store = Store.from_url(database_url)
    try:
        with store.read() as conn:
            account = account_for_api_key(conn, key)
            assert account is not None
            return account.name
    finally:
        store.dispose()
