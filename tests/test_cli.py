"""The `mailbeacon` command as a user runs it: init, prepare, stats, api-key, keys."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import init_account
from tests.mail_helpers import tracking_urls
from tests.support import mailbeacon_command, run_cli, running_server

NEWSLETTER = """<html><body>
<p><a href="https://example.com/pricing?plan=pro&amp;ref=mail">Pricing</a></p>
<p><a href="mailto:hi@example.com">Write to us</a> or <a href="#top">top</a></p>
<p><a href="https://example.com/pricing?plan=pro&amp;ref=mail">Pricing again</a></p>
<p><a href="{{mb_unsubscribe}}">Unsubscribe</a></p>
</body></html>
"""


def test_init_prepare_and_stats(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    init_account(db, "shop")
    html_file = tmp_path / "newsletter.html"
    html_file.write_text(NEWSLETTER)
    result = subprocess.run(
        [
            *mailbeacon_command(),
            "prepare",
            str(html_file),
            "--to",
            "ada@example.org",
            "--database-url",
            db,
            "--public-base-url",
            "http://127.0.0.1:1",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    tracked = result.stdout
    assert "example.com/pricing" not in tracked
    assert len(tracking_urls(tracked, "c")) == 2
    assert len(tracking_urls(tracked, "o")) == 1
    assert len(tracking_urls(tracked, "u")) == 1
    assert 'href="mailto:hi@example.com"' in tracked
    assert 'href="#top"' in tracked
    # everything but the rewritten URLs and the pixel is byte-identical
    untracked = tracked
    for url in tracking_urls(tracked, "c"):
        untracked = untracked.replace(url, "https://example.com/pricing?plan=pro&amp;ref=mail", 1)
    untracked = untracked.replace(tracking_urls(tracked, "u")[0], "{{mb_unsubscribe}}")
    pixel_tag = untracked[untracked.index("<img") : untracked.index("/>", untracked.index("<img")) + 2]
    assert untracked.replace(pixel_tag, "") == NEWSLETTER
    assert "message 1: 1 distinct links tracked, 3 skipped" in result.stderr
    assert "skipped (mailto)" in result.stderr

    with running_server(db, tmp_path, "--public-base-url", "http://127.0.0.1:1") as server:
        local = tracking_urls(tracked, "c")[0].replace("http://127.0.0.1:1", server.base_url)
        reader = {"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15"}
        assert httpx.get(local, headers=reader).status_code == 302
        assert httpx.get(local, headers=reader).status_code == 302
    table = run_cli("stats", "1", "--database-url", db)
    assert "clicks       unique      1 (100.0%)   total      2" in table
    assert "https://example.com/pricing?plan=pro&ref=mail" in table
    numbers = json.loads(run_cli("stats", "1", "--database-url", db, "--json"))
    assert numbers["clicks"]["all"] == {"total": 2, "unique": 1}


def test_init_refuses_a_second_account_of_the_same_name(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    init_account(db, "shop")
    with pytest.raises(AssertionError, match="exists already"):
        run_cli("init", "--database-url", db, "--account", "shop")
    key = run_cli("api-key", "create", "--database-url", db, "--account", "shop").split()[-1]
    assert key.startswith("mb_")


def test_unknown_message_is_a_clear_error(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    init_account(db, "shop")
    with pytest.raises(AssertionError, match="no message 99"):
        run_cli("stats", "99", "--database-url", db)
