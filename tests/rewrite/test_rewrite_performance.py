"""Scanning is linear in the input, and rendering is cheap.

Times are this process's CPU time, so that other work on the machine (benchmarks, other
test runs) does not make them fail, and the bounds are lax: the point is to catch
quadratic or backtracking behaviour, which turns these inputs into minutes. The real
benchmark lives elsewhere.
"""

from __future__ import annotations

import gc
import itertools
import re
import time
from collections.abc import Callable

import pytest

from mailbeacon.rewrite import ScanResult, TrackingPolicy, scan_html, scan_text
from tests.rewrite.rewrite_support import DATA_DIR, OPEN_URL, POLICY, UNSUBSCRIBE_URL, read_source

Scan = Callable[[str, TrackingPolicy], ScanResult]
MEGABYTE = 1_000_000


def _repeated(unit: str, prefix: str = "", suffix: str = "") -> Callable[[float], str]:
    """Sources of a given size in MB: ``unit`` repeated between ``prefix`` and ``suffix``."""
    return lambda megabytes: prefix + unit * int(megabytes * MEGABYTE / len(unit)) + suffix


# The four inputs named in the requirements come first.
GARBAGE: dict[str, tuple[Scan, Callable[[float], str]]] = {
    "unclosed double quotes": (scan_html, _repeated('<a href="')),
    "less-than signs": (scan_html, _repeated("<")),
    "unquoted attributes, no tag end": (scan_html, _repeated("<a href=x ")),
    "unclosed comments": (scan_html, _repeated("<!--")),
    "unclosed single quotes": (scan_html, _repeated("<a href='")),
    "conditional comment openers": (scan_html, _repeated("<!--[if mso]>")),
    "bang and question marks": (scan_html, _repeated("<!<?")),
    "one link, then tags without its end": (scan_html, _repeated("<b>", '<a href="https://x.com/">')),
    "unclosed style": (scan_html, _repeated("</styl", "<style>")),
    "entities in one href": (scan_html, _repeated("&amp", '<a href="https://x.com/?', '">')),
    "placeholder openers in one href": (scan_html, _repeated("{{", '<a href="https://x.com/', '">')),
    "unsubscribe near-misses": (scan_html, _repeated("{{ mb_unsubscrib }}")),
    # The visible text of each link (read for scam prevention) is full of unclosed markup.
    "links full of comment openers": (
        scan_html,
        _repeated('<a href="https://x.com/">' + "<!--" * 4_000 + "</a>-->"),
    ),
    "links full of less-than signs": (
        scan_html,
        _repeated('<a href="https://x.com/">' + "<" * 16_000 + "</a>"),
    ),
    "links with long dotted text": (
        scan_html,
        _repeated('<a href="https://x.com/">' + "a." * 1_000 + "1</a>"),
    ),
    "text: scheme repeated": (scan_text, _repeated("http://")),
    "text: closing parentheses": (scan_text, _repeated(")", "http://x.com/")),
    "text: placeholder openers": (scan_text, _repeated("{{a", "https://x.com/")),
}
# Valid but extremely dense: 40,000 to 80,000 links in a megabyte, each classified and
# recorded, which costs a few microseconds of Python per link.
DENSE: dict[str, tuple[Scan, Callable[[float], str]]] = {
    "tracked links": (scan_html, _repeated('<a href="https://x.com/">')),
    "notrack links": (scan_html, _repeated("<a data-mb-notrack>")),
    "text: many urls": (scan_text, _repeated("http://x.co ")),
}
# Inputs slow enough (tenths of a second) for the growth rate to be measured reliably.
HEAVY = {**DENSE, "entities in one href": GARBAGE["entities in one href"]}


def _best_of(scan: Scan, source: str, runs: int = 2) -> float:
    times = []
    for _ in range(runs):
        gc.collect()
        started = time.process_time()
        scan(source, POLICY)
        times.append(time.process_time() - started)
    return min(times)


@pytest.mark.parametrize("name", GARBAGE)
def test_a_megabyte_of_garbage_scans_in_well_under_a_second(name: str) -> None:
    scan, make = GARBAGE[name]
    source = make(1.0)
    assert len(source) >= 0.99 * MEGABYTE
    assert _best_of(scan, source) < 1.0


@pytest.mark.parametrize("name", DENSE)
def test_a_megabyte_of_dense_links_scans_in_a_second_or_two(name: str) -> None:
    scan, make = DENSE[name]
    assert _best_of(scan, make(1.0)) < 2.0


@pytest.mark.parametrize("name", HEAVY)
def test_scan_time_grows_linearly(name: str) -> None:
    scan, make = HEAVY[name]
    # Four times the input: about four times the time if linear, sixteen if quadratic.
    ratio = _best_of(scan, make(1.0), runs=3) / _best_of(scan, make(0.25), runs=3)
    assert ratio < 10


def test_throughput_on_a_real_template() -> None:
    source = read_source(DATA_DIR / "mailchimp-email-blueprints" / "fancy-2-1-3-leftsidebar.html")
    rounds = 20
    started = time.process_time()
    for _ in range(rounds):
        scan_html(source, POLICY)
    elapsed = time.process_time() - started
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
    started = time.process_time()
    for recipient in click_urls:
        result.template.render(recipient, OPEN_URL, UNSUBSCRIBE_URL)
    per_recipient = (time.process_time() - started) / recipients
    assert per_recipient < 0.001
