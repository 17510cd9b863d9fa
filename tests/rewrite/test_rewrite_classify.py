"""The small pieces: entity decoding, URL facts, placeholders, scam detection."""

from __future__ import annotations

import pytest

from mailbeacon.rewrite.entities import unescape_attribute
from mailbeacon.rewrite.placeholders import contains_placeholder
from mailbeacon.rewrite.scam import address_host, visible_text
from mailbeacon.rewrite.urls import hostname, http_authority


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("a&amp;b", "a&b"),
        ("a&amp", "a&"),
        ("a&#38;b&#x26;c&#X26;d", "a&b&c&d"),
        ("&#38&#x26", "&&"),
        ("?a=1&param=2", "?a=1&param=2"),
        ("?a=1&para;m=2", "?a=1¶m=2"),
        ("?copy=1&copy=2", "?copy=1&copy=2"),
        ("&copy 2024", "© 2024"),
        ("&hellip", "&hellip"),
        ("&hellip;", "…"),
        ("&ampx", "&ampx"),
        ("&unknown;", "&unknown;"),
        ("&notit;", "&notit;"),
        ("&notin;&not", "∉¬"),
        ("&copy;=&amp;=", "©=&="),
        ("&amp=1", "&amp=1"),
        ("&#0;&#x110000;", "\ufffd\ufffd"),
        ("no entities", "no entities"),
    ],
)
def test_attribute_entities_decode_like_browsers(raw: str, decoded: str) -> None:
    assert unescape_attribute(raw) == decoded


@pytest.mark.parametrize(
    ("url", "authority"),
    [
        ("https://X.com/p?q#f", ("x.com", "/p?q#f")),
        ("HTTP://x.com:8080", ("x.com:8080", "")),
        ("https://u:p@x.com?q", ("x.com", "?q")),
        ("https://x.com\\evil", ("x.com", "\\evil")),
        ("https://[::1]:80/", ("[::1]:80", "/")),
        ("mailto:a@x.com", None),
        ("https:/x.com", None),
    ],
)
def test_http_authority(url: str, authority: tuple[str, str] | None) -> None:
    assert http_authority(url) == authority


@pytest.mark.parametrize(
    ("host", "name"),
    [("x.com:80", "x.com"), ("x.com.", "x.com"), ("x.com:", "x.com"), ("[::1]:80", "[::1]"), ("x", "x")],
)
def test_hostname(host: str, name: str) -> None:
    assert hostname(host) == name


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{{x}}", True),
        ("a{{ b }}c", True),
        ("{{ unclosed", False),
        ("}} {{", False),
        ("{%x%}", True),
        ("*|X|*", True),
        ("%%X%%", True),
        ("100%", False),
        ("[[x]]", True),
        ("${x}", True),
        ("$x}", False),
        ("https://x.com/?a[0]=1", False),
    ],
)
def test_placeholders(value: str, expected: bool) -> None:
    assert contains_placeholder(value) is expected


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("https://X.com/p", "x.com"),
        ("http://x.com:8080/", "x.com"),
        ("www.example.co.uk", "www.example.co.uk"),
        ("example.com/path?q", "example.com"),
        ("example.com.", "example.com"),
        ("Example.COM:443", "example.com"),
        ("bücher.de", "bücher.de"),
        ("Read more", None),
        ("Visit example.com", None),
        ("1.5", None),
        ("v2.0.1", None),
        ("e.g", None),
        ("", None),
        ("https://", None),
        ("a" * 3000 + ".com", None),
    ],
)
def test_address_host(text: str, host: str | None) -> None:
    assert address_host(text) == host


def test_visible_text() -> None:
    assert visible_text(" <b>x</b>&#46;<!-- a > b -->com\n") == "x.com"
