"""Personalising a 60 KB newsletter for 10,000 recipients: mailbeacon against pytracking 0.2.2.

mailbeacon scans the HTML once (`prepare_content`) and then renders each recipient's copy from the
template (`Personaliser.render`), signing every click, open and unsubscribe token (HMAC-SHA256).
pytracking's `adapt_html` parses the whole document with lxml, rewrites its `<a href>` links and
re-serialises it, once per recipient; with its default configuration (no `cryptography` installed,
no key) its URLs carry base64 JSON, unsigned. Both are timed on the same file,
bench/data/newsletter-60k.html (see bench/newsletter_corpus.py), and their output is checked so that
the benchmark cannot silently time nothing.

    .venv/bin/python bench/personalise_vs_pytracking.py --recipients 10000
"""

from __future__ import annotations

import argparse
import base64
import html as html_lib
import importlib.metadata
import json
import re
import secrets
import statistics
import sys
import time
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from mailbeacon.messages.content import Personaliser, PreparedContent, prepare_content
from mailbeacon.messages.urls import TrackingUrls
from mailbeacon.rewrite import DEFAULT_EXCLUDED_DOMAINS, TrackingPolicy, scan_html
from mailbeacon.tokens import TokenKind, TokenSigner
from newsletter_corpus import OUTPUT, load_newsletter

TRACK_BASE = "https://track.example.com"
PYTRACKING_OPEN = "https://track.example.com/open/"
PYTRACKING_CLICK = "https://track.example.com/click/"
TARGET_RATIO = 50.0  # the product owner's floor: mailbeacon at least 50x pytracking
_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_CLICK_URL = re.compile(re.escape(TRACK_BASE) + r"/c/([A-Za-z0-9_-]+)")
_PYTRACKING_CLICK_URL = re.compile(re.escape(PYTRACKING_CLICK) + r"([A-Za-z0-9_=-]+)")


class CheckFailed(AssertionError):
    """The output is not what the benchmark claims to measure."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def expected_tracked_urls(html: str) -> list[str]:
    """The http(s) hrefs mailbeacon should track, in document order, found by a plain regex.

    Independent of mailbeacon's scanner: every quoted href (inside Outlook conditional comments too),
    entities decoded, minus the default excluded (app-store) domains.
    """
    found: list[str] = []
    for match in _HREF.finditer(html):
        url = html_lib.unescape(match.group(1) if match.group(1) is not None else match.group(2)).strip()
        if not url.lower().startswith(("http://", "https://")):
            continue
        host = url.split("/", 3)[2].lower()
        if any(host == d or host.endswith("." + d) for d in DEFAULT_EXCLUDED_DOMAINS):
            continue
        found.append(url)
    return found


def check_mailbeacon_copy(
    content: PreparedContent, signer: TokenSigner, rendered: str, recipient_id: int, expected: list[str]
) -> None:
    """Every tracked link of the copy carries a valid token for this recipient and the right link."""
    tokens = _CLICK_URL.findall(rendered)
    check(
        len(tokens) == len(expected),
        f"recipient {recipient_id}: {len(tokens)} click URLs, {len(expected)} links",
    )
    urls = {link.position: link.url for link in content.links}
    for token, original in zip(tokens, expected, strict=True):
        verified = signer.verify(token)
        check(verified is not None, f"recipient {recipient_id}: token {token} does not verify")
        assert verified is not None
        check(
            verified.kind is TokenKind.CLICK and verified.recipient_id == recipient_id,
            f"recipient {recipient_id}: token {token} is {verified}",
        )
        check(urls.get(verified.link_position) == original, f"token {token} points to the wrong link")
    check(rendered.count(f"{TRACK_BASE}/o/") == 1, f"recipient {recipient_id}: not exactly one open pixel")
    check(f"{TRACK_BASE}/u/" in rendered, f"recipient {recipient_id}: no unsubscribe URL")
    check("{{ mb_unsubscribe }}" not in rendered, "the unsubscribe placeholder was left in")


class _AnchorCounter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.count = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href is not None and href.startswith(("http://", "https://", "//")):
            self.count += 1


def pytracking_links(html: str) -> int:
    """How many links pytracking's adapt_html rewrites: <a href> with an absolute URL, outside comments."""
    counter = _AnchorCounter()
    counter.feed(html)
    counter.close()
    return counter.count


def check_pytracking_copy(rendered: str, recipient_id: int, links: int, originals: set[str]) -> None:
    encoded = _PYTRACKING_CLICK_URL.findall(rendered)
    check(
        len(encoded) == links,
        f"pytracking, recipient {recipient_id}: {len(encoded)} click URLs, {links} links",
    )
    check(rendered.count(PYTRACKING_OPEN) == 1, f"pytracking, recipient {recipient_id}: no open pixel")
    for data in (encoded[0], encoded[-1]):
        payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(data))
        check(payload["metadata"] == {"recipient_id": recipient_id}, f"pytracking payload {payload}")
        check(payload["url"] in originals, f"pytracking payload points to {payload['url']!r}")


def median_time(function: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--recipients", type=int, default=10_000, help="recipients for mailbeacon (default 10000)"
    )
    parser.add_argument(
        "--pytracking-recipients",
        type=int,
        default=None,
        help="recipients for pytracking (default: as many as --recipients; less to time a sample)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="mailbeacon passes over all recipients; median")
    parser.add_argument("--scan-repeats", type=int, default=30, help="scan_html timings; median (default 30)")
    parser.add_argument("--html", type=Path, default=OUTPUT, help="the newsletter (default %(default)s)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    html = load_newsletter(args.html)
    size = len(html.encode("utf-8"))
    lines = html.count("\n")
    print(
        f"newsletter: {args.html}, {size:,} bytes, {lines:,} lines "
        f"({html.count(chr(13) + chr(10)):,} CRLF), {len(_HREF.findall(html))} hrefs, "
        f"{html.count('<v:roundrect')} <v:roundrect> buttons in <!--[if mso]>"
    )
    expected = expected_tracked_urls(html)
    check(len(set(expected)) >= 20, f"only {len(set(expected))} distinct links in the newsletter")

    # --- mailbeacon -------------------------------------------------------------------------------
    policy = TrackingPolicy(tracking_hosts=frozenset({"track.example.com"}))
    scan_s = median_time(lambda: scan_html(html, policy), args.scan_repeats)
    started = time.perf_counter()
    content = prepare_content(html, None, policy)
    prepare_s = time.perf_counter() - started
    assert content.html is not None
    tracked = content.html.tracked
    check(
        [link.url for link in tracked] == expected,
        f"scan_html tracked {len(tracked)} links, the regex finds {len(expected)}",
    )
    check({link.url for link in content.links} == set(expected), "distinct links differ")
    check(content.has_pixel, "no open pixel slot")
    vml = sum(1 for link in tracked if link.tag == "v:roundrect")
    check(vml == html.count("<v:roundrect"), f"{vml} VML buttons tracked")
    print(
        f"scan_html: {scan_s * 1000:.2f} ms per scan (median of {args.scan_repeats}) = "
        f"{size / scan_s / 1e6:.1f} MB/s; {len(content.links)} distinct links tracked "
        f"({len(tracked)} occurrences, {vml} in <v:roundrect>), {len(content.skipped)} skipped: "
        + ", ".join(f"{s.reason}" for s in content.skipped)
    )
    print(f"prepare_content (once per message): {prepare_s * 1000:.2f} ms")

    signer = TokenSigner({1: secrets.token_bytes(32)})
    personaliser = Personaliser(content, TrackingUrls(signer, TRACK_BASE))
    recipient_ids = range(1, args.recipients + 1)
    for rid in (1, 2):  # warm-up, and a check of the first copies
        copy = personaliser.render(rid).html
        assert copy is not None
        check_mailbeacon_copy(content, signer, copy, rid, expected)
    round_times: list[float] = []
    output_chars = 0
    last = ""
    for _ in range(args.rounds):
        output_chars = 0
        started = time.perf_counter()
        for rid in recipient_ids:
            rendered = personaliser.render(rid).html
            assert rendered is not None
            output_chars += len(rendered)
            last = rendered
        round_times.append(time.perf_counter() - started)
    check_mailbeacon_copy(content, signer, last, recipient_ids[-1], expected)
    # Tracking URLs are shorter than the newsletter's long UTM-tagged ones: copies shrink a little.
    check(output_chars >= len(html) * len(recipient_ids) * 0.8, "mailbeacon rendered too little HTML")
    mb_s = statistics.median(round_times)
    mb_rate = len(recipient_ids) / mb_s
    print(
        f"mailbeacon: {len(recipient_ids):,} recipients in {mb_s:.3f} s (median of {args.rounds}: "
        + ", ".join(f"{t:.3f}" for t in round_times)
        + f") = {mb_rate:,.0f} recipients/s, {mb_s / len(recipient_ids) * 1e6:.1f} us each, "
        f"{output_chars / 1e6:.0f} MB of HTML per pass; every copy has {len(tracked)} signed click URLs, "
        "an open pixel and an unsubscribe URL"
    )

    # --- pytracking --------------------------------------------------------------------------------
    import pytracking
    from pytracking.html import adapt_html

    configuration = pytracking.Configuration(
        base_open_tracking_url=PYTRACKING_OPEN, base_click_tracking_url=PYTRACKING_CLICK
    )
    py_count = args.pytracking_recipients or args.recipients
    py_links = pytracking_links(html)
    originals = {html_lib.unescape(m.group(1) or m.group(2) or "") for m in _HREF.finditer(html)}
    first: str = adapt_html(html, {"recipient_id": 1}, configuration=configuration)  # warm-up
    check_pytracking_copy(first, 1, py_links, originals)
    started = time.perf_counter()
    py_chars = 0
    for rid in range(1, py_count + 1):
        adapted: str = adapt_html(html, {"recipient_id": rid}, configuration=configuration)
        py_chars += len(adapted)
    py_s = time.perf_counter() - started
    check_pytracking_copy(adapted, py_count, py_links, originals)
    py_rate = py_count / py_s
    sample = "" if py_count == args.recipients else f" (a sample: {py_count:,} of {args.recipients:,})"
    print(
        f"pytracking {importlib.metadata.version('pytracking')}: {py_count:,} recipients{sample} in "
        f"{py_s:.3f} s = {py_rate:,.0f} recipients/s, {py_s / py_count * 1e6:.0f} us each; every copy has "
        f"{py_links} click URLs (<a href> only, not the {vml} VML buttons), unsigned base64 JSON; "
        f"lxml re-serialises the document: {len(html):,} -> {len(first):,} chars, {lines:,} -> "
        f"{first.count(chr(10)):,} lines, {first.count(chr(13) + chr(10)):,} CRLF left"
    )

    ratio = mb_rate / py_rate
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print()
    print(f"{'':<12} {'recipients/s':>13} {'us/recipient':>13}")
    print(f"{'mailbeacon':<12} {mb_rate:>13,.0f} {1e6 / mb_rate:>13.1f}")
    print(f"{'pytracking':<12} {py_rate:>13,.0f} {1e6 / py_rate:>13.1f}")
    print(f"ratio mailbeacon / pytracking: {ratio:.1f}x (target >= {TARGET_RATIO:.0f}x: {verdict})")
    print(f"scan_html throughput: {size / scan_s / 1e6:.1f} MB/s on {size:,} bytes")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CheckFailed as exc:
        print(f"CHECK FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
