"""A real browser (Debian's headless Chromium via Playwright) reads a tracked email and clicks a link."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import httpx

from tests.e2e.conftest import init_account
from tests.e2e.test_server import auth, copy_html, send_message, stats
from tests.support import REPO, require, running_server, target_site

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("MAILBEACON_CHROMIUM") or "/usr/bin/chromium"
    require(os.access(path, os.X_OK), f"headless Chromium not found at {path} (apt-get install chromium)")
    return path


def test_chromium_loads_the_pixel_and_follows_a_click(database_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    key = init_account(database_url, f"browser-{uuid.uuid4().hex[:6]}")
    with target_site() as site, running_server(database_url, tmp_path) as server:
        html = (
            "<html><body><h1>Spring sale</h1>"
            f'<p><a id="cta" href="{site.base_url}/sale?from=email">See the sale</a></p></body></html>'
        )
        created = send_message(server.base_url, key, html, ["reader@example.org"])
        tracked = copy_html(server.base_url, key, created["id"], created["recipients"][0]["id"])
        site.pages["/inbox/message.html"] = tracked

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                pixel_responses = []
                page.on("response", lambda r: pixel_responses.append(r) if "/o/" in r.url else None)
                page.goto(f"{site.base_url}/inbox/message.html", wait_until="networkidle")
                user_agent = page.evaluate("navigator.userAgent")
                assert [r.status for r in pixel_responses] == [200]
                assert pixel_responses[0].header_value("content-type") == "image/gif"
                page.click("#cta")
                page.wait_for_url(f"{site.base_url}/sale?from=email")
                assert page.text_content("#landed") == "landed on /sale?from=email"
                (REPO / "test-artifacts").mkdir(exist_ok=True)
                page.screenshot(path=str(REPO / "test-artifacts" / "browser-landed.png"))
            finally:
                browser.close()

        found = httpx.get(f"{server.base_url}/v1/events", headers=auth(key)).json()["events"]
        assert [e["type"] for e in found] == ["opened", "clicked"]
        assert all(e["user_agent"] == user_agent for e in found)
        assert "Chrome/" in user_agent
        assert all(e["human"] for e in found), [e["machine_reason"] for e in found]
        numbers = stats(server.base_url, key, created["id"])
        assert numbers["opens"]["human"]["unique"] == 1
        assert numbers["clicks"]["human"] == {"total": 1, "unique": 1}


def test_api_docs_and_unsubscribe_page_render_offline(database_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    key = init_account(database_url, f"docs-{uuid.uuid4().hex[:6]}")
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    with running_server(database_url, tmp_path) as server:
        created = send_message(
            server.base_url,
            key,
            '<html><body><a href="{{mb_unsubscribe}}">Unsubscribe</a></body></html>',
            ["reader@example.org"],
        )
        tracked = copy_html(server.base_url, key, created["id"], created["recipients"][0]["id"])
        from tests.mail_helpers import tracking_urls

        unsubscribe = tracking_urls(tracked, "u")[0]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                failed: list[str] = []
                page.on("requestfailed", lambda r: failed.append(r.url))
                page.goto(f"{server.base_url}/docs", wait_until="networkidle")
                page.wait_for_selector(".opblock-summary-path")
                assert page.locator(".opblock").count() >= 6
                assert failed == [], "the docs load nothing from outside"
                page.screenshot(path=str(artifacts / "api-docs.png"))

                phone = browser.new_page(viewport={"width": 390, "height": 740})
                phone.goto(unsubscribe)
                phone.screenshot(path=str(artifacts / "unsubscribe-confirm.png"))
                phone.click("button[type=submit]")
                phone.wait_for_selector("text=You are unsubscribed")
                phone.screenshot(path=str(artifacts / "unsubscribe-done.png"))
            finally:
                browser.close()
        found = httpx.get(f"{server.base_url}/v1/events", headers=auth(key)).json()["events"]
        assert [e["type"] for e in found] == ["unsubscribed"]
