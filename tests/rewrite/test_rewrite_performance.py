"""Scanning is linear in the input, and rendering is cheap.

The bounds are lax (the machine may be busy); the point is to catch quadratic or
backtracking behaviour, which turns these inputs into minutes. The real benchmark lives
elsewhere.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable

import pytest

from mailbeacon.rewrite import ScanResult, TrackingPolicy, scan_html, scan_text
from tests.rewrite.rewrite_support import DATA_DIR, OPEN_URL, POLICY, UNSUBSCRIBE_URL, read_source

GARBAGE_HTML = {
    "unclosed double quotes": '<a href="' * 100_000,
    "unclosed single quotes": "<a href='" * 100_000,
    "less-than signs": "<" * 1_000_000,
    "unquoted attributes, no tag end": "<a href=x " * 100_000,
    "unclosed comments": "<!--" * 250_000,
    "conditional comment openers": "<!--[if mso]>" * 80_000,
    "bang and question marks": "<!<?" * 250_000,
    "closed links": '<a href="https://x.com/">' * 40_000,
    "one link, then tags without its end": '<a href="https://x.com/">' + "<b>" * 300_000,
    "unclosed style": "<style>" + "</styl" * 150_000,
    "entities in one href": '<a href="https://x.com/?' + "&amp" * 200_000 + '">',
    "placeholder openers in one href": '<a href="https://x.com/' + "{{" * 400_000 + '">',
    "unsubscribe near-misses": "{{ mb_unsubscrib }}" * 50_000,
}
GARBAGE_TEXT = {
    "scheme repeated": "http://" * 150_000,
    "closing parentheses": "http://x.com/" + ")" * 1_000_000,
    "placeholder openers": "https://x.com/" + "{{a" * 300_000,
}


def _timed(scan: Callable[[str, TrackingPolicy], ScanResult], source: str) -> float:
    started = time.perf_counter()
    scan(source, POLICY)
    return time.perf_counter() - started


@pytest.mark.parametrize("name", GARBAGE_HTML)
def test_html_garbage_scans_in_linear_time(name: str) -> None:
    source = GARBAGE_HTML[name]
    assert len(source) >= 800_000
    assert _timed(scan_html, source) < 1.0


@pytest.mark.parametrize("name", GARBAGE_TEXT)
def test_text_garbage_scans_in_linear_time(name: str) -> None:
    assert _timed(scan_text, GARBAGE_TEXT[name]) < 1.0


def test_throughput_on_a_real_template() -> None:
    source = read_source(DATA_DIR / "mailchimp-email-blueprints" / "fancy-2-1-3-leftsidebar.html")
    rounds = 20
    elapsed = sum(_timed(scan_html, source) for _ in range(rounds))
    megabytes_per_second = len(source) * rounds / elapsed / 1e6
    assert megabytes_per_second > 2


def test_render_is_cheap() -> None:
    # ~60 KB with ~25 distinct links: the newsletter size the renderer is meant for.
    block = read_source(DATA_DIR / "konsav" / "general.html")
    numbers = itertools.count()
    source = re.sub(
        r'href="https://[^"]*"', lambda _: f'href="https://x.com/{next(numbers)}?a=1&amp;b=2"', block * 3
    )
    result = scan_html(source, POLICY)
    urls = sorted({link.url for link in result.tracked})
    assert len(source) > 50_000
    assert len(urls) >= 20
    recipients = 2_000
    click_urls = [
        {url: f"https://t.example/c/{r}-{i}?s=1&t=2" for i, url in enumerate(urls)} for r in range(recipients)
    ]
    started = time.perf_counter()
    for recipient in click_urls:
        result.template.render(recipient, OPEN_URL, UNSUBSCRIBE_URL)
    per_recipient = (time.perf_counter() - started) / recipients
    assert per_recipient < 0.001
