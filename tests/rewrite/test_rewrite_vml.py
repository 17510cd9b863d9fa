"""Outlook VML bulletproof buttons (our own fixtures: the corpus has none)."""

from __future__ import annotations

from html import escape

from mailbeacon.rewrite import SkippedLink, SlotKind, TrackedLink, scan_html
from tests.rewrite.rewrite_support import (
    DATA_DIR,
    OPEN_URL,
    POLICY,
    UNSUBSCRIBE_URL,
    click_markers,
    pixel,
    read_source,
    restore,
    with_pixel_before_last_body_end,
)

FIXTURES = DATA_DIR / "mailbeacon-vml"
BUY = "https://example.com/buy?a=1&b=2"
ROUND = "https://example.com/vml/round?x=1&y=2"


def test_cerberus_button() -> None:
    result = scan_html(read_source(FIXTURES / "cerberus-button.html"), POLICY)

    assert result.tracked == (
        TrackedLink(BUY, 40, "v:roundrect", in_conditional_comment=True),
        TrackedLink(BUY, 47, "a", in_conditional_comment=False),
    )
    assert result.skipped == (
        SkippedLink("https://apps.apple.com/app/id123456789", 56, "a", "excluded_domain"),
        SkippedLink("https://www.example.com/", 57, "a", "scam_prevention"),
        SkippedLink("mailto:hello@example.com", 58, "a", "mailto"),
        SkippedLink("{{ mb_unsubscribe }}", 59, "a", "unsubscribe"),
    )
    assert result.has_pixel


def test_buttons_cm_style_with_mixed_line_endings_and_upper_case() -> None:
    source = read_source(FIXTURES / "buttons-cm-crlf.html")
    assert "\r\n" in source
    assert "\n<" in source.replace("\r\n", "")

    result = scan_html(source, POLICY)

    assert result.tracked == (
        TrackedLink(ROUND, 8, "v:roundrect", in_conditional_comment=True),
        TrackedLink(ROUND, 12, "a", in_conditional_comment=False),
        TrackedLink("https://example.com/vml/rect?s=%20a&t=(b)", 16, "v:rect", True),
        TrackedLink("https://example.com/area#top", 21, "area", in_conditional_comment=False),
        TrackedLink("https://EXAMPLE.com/UPPER?Q=A#Frag", 23, "a", in_conditional_comment=False),
    )
    assert [(s.url, s.line, s.tag, s.reason) for s in result.skipped] == [
        ("https://play.google.com/store/apps/details?id=com.example", 19, "v:oval", "excluded_domain"),
        (ROUND, 20, "a", "notrack"),
        ("#top", 22, "a", "anchor"),
        ("javascript:void(0)", 22, "a", "javascript"),
        ("tel:+15555550100", 22, "a", "tel"),
        ("sms:+15555550100", 22, "a", "sms"),
    ]


def test_fixtures_render_byte_for_byte() -> None:
    for path in sorted(FIXTURES.glob("*.html")):
        source = read_source(path)
        result = scan_html(source, POLICY)
        rendered = result.template.render({}, OPEN_URL, UNSUBSCRIBE_URL)

        expected = with_pixel_before_last_body_end(source)
        expected = expected.replace("{{ mb_unsubscribe }}", escape(UNSUBSCRIBE_URL))
        expected = expected.replace(" DATA-MB-NOTRACK", "")
        assert rendered.encode("utf-8") == expected.encode("utf-8"), path.name


def test_vml_hrefs_are_rewritten_in_place() -> None:
    source = read_source(FIXTURES / "buttons-cm-crlf.html")
    result = scan_html(source, POLICY)
    markers = click_markers(list(dict.fromkeys(t.url for t in result.tracked)))

    rendered = result.template.render(markers, OPEN_URL, UNSUBSCRIBE_URL)

    assert f"HREF={escape(markers[ROUND])} STYLE=" in rendered
    assert f"href\t=\r\n  '{escape(markers['https://example.com/vml/rect?s=%20a&t=(b)'])}'>" in rendered
    clicks = [s for s in result.template.slots() if s.kind is SlotKind.CLICK]
    restored = restore(rendered, [(escape(markers[s.url]), s.raw) for s in clicks])
    assert restored == with_pixel_before_last_body_end(source).replace(" DATA-MB-NOTRACK", "")
    assert pixel() in rendered
