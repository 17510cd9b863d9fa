"""text/plain scanning."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mailbeacon.rewrite import Slot, SlotKind, TrackedLink, scan_text
from mailbeacon.rewrite.text_scan import trim_url
from tests.rewrite.rewrite_support import POLICY


def urls(text: str) -> list[str]:
    return [link.url for link in scan_text(text, POLICY).tracked]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Go to https://x.com/p now", ["https://x.com/p"]),
        ("HTTP://X.COM/P and https://y.com", ["HTTP://X.COM/P", "https://y.com"]),
        ("<https://x.com/a?b=1&c=2>", ["https://x.com/a?b=1&c=2"]),
        ('"https://x.com/q"', ["https://x.com/q"]),
        ("See https://x.com/p.", ["https://x.com/p"]),
        ("See https://x.com/p?!...", ["https://x.com/p"]),
        ("(https://x.com/p)", ["https://x.com/p"]),
        ("[https://x.com/p], {https://y.com/q}", ["https://x.com/p", "https://y.com/q"]),
        ("'https://x.com/p'", ["https://x.com/p"]),
        (
            "https://en.wikipedia.org/wiki/Mercury_(planet)",
            ["https://en.wikipedia.org/wiki/Mercury_(planet)"],
        ),
        (
            "(see https://en.wikipedia.org/wiki/Bar_(disambiguation)).",
            ["https://en.wikipedia.org/wiki/Bar_(disambiguation)"],
        ),
        ("https://x.com/a.b/c.html;", ["https://x.com/a.b/c.html"]),
        ("https://x.com/#frag:", ["https://x.com/#frag"]),
        ("a\thttps://x.com/1\nhttps://x.com/2\r\n", ["https://x.com/1", "https://x.com/2"]),
        ("no links: ftp://x.com www.x.com x.com mailto:a@x.com", []),
        ("https:// alone", []),
    ],
)
def test_finds_urls(text: str, expected: list[str]) -> None:
    assert urls(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("https://apps.apple.com/app/id1", "excluded_domain"),
        ("https://t.example/c/1", "already_tracked"),
        ("https://x.com/?u={{ user.id }}", "placeholder"),
        ("https://x.com/*|EMAIL|*", "placeholder"),
        ("https://x.com/u/{{mb_unsubscribe}}", "unsubscribe"),
    ],
)
def test_skip_reasons(text: str, reason: str) -> None:
    result = scan_text(f"Hello\n{text}\n", POLICY)
    assert result.tracked == ()
    assert [(s.url, s.line, s.tag, s.reason) for s in result.skipped] == [(text, 2, "text", reason)]


def test_clicks_off() -> None:
    result = scan_text("https://x.com/", replace(POLICY, track_clicks=False))
    assert [s.reason for s in result.skipped] == ["clicks_off"]


def test_render_splices_urls_without_escaping() -> None:
    text = "Buy: https://x.com/b?a=1&b=2.\r\nUnsubscribe: {{ mb_unsubscribe }}\r\n"
    result = scan_text(text, POLICY)
    assert result.tracked == (TrackedLink("https://x.com/b?a=1&b=2", 1, "text", False),)
    assert not result.has_pixel
    assert result.template.slots() == (
        Slot(SlotKind.CLICK, "https://x.com/b?a=1&b=2", escape_html=False, raw="https://x.com/b?a=1&b=2"),
        Slot(SlotKind.UNSUBSCRIBE, "", escape_html=False, raw="{{ mb_unsubscribe }}"),
    )
    rendered = result.template.render(
        {"https://x.com/b?a=1&b=2": "https://t.example/c/1?s=1&t=<2>"}, "unused", "https://t.example/u?a&b"
    )
    assert rendered == "Buy: https://t.example/c/1?s=1&t=<2>.\r\nUnsubscribe: https://t.example/u?a&b\r\n"
    assert result.template.render({}, "", "U") == text.replace("{{ mb_unsubscribe }}", "U")


def test_lines_count_crlf_once() -> None:
    result = scan_text("a\r\nb\r\n\r\nhttps://x.com/ https://y.com/\nhttps://z.com/", POLICY)
    assert [(t.url, t.line) for t in result.tracked] == [
        ("https://x.com/", 4),
        ("https://y.com/", 4),
        ("https://z.com/", 5),
    ]


@pytest.mark.parametrize(
    ("candidate", "url"),
    [
        ("https://x.com/a)", "https://x.com/a"),
        ("https://x.com/(a)", "https://x.com/(a)"),
        ("https://x.com/(a))", "https://x.com/(a)"),
        ("https://x.com/(a)).", "https://x.com/(a)"),
        ("https://x.com/{{id}}", "https://x.com/{{id}}"),
        ("https://x.com/a]", "https://x.com/a"),
        ("https://x.com/a'!", "https://x.com/a"),
        ("https://x.com/a_", "https://x.com/a_"),
    ],
)
def test_trailing_punctuation(candidate: str, url: str) -> None:
    assert trim_url(candidate) == url
