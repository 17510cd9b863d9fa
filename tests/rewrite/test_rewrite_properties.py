"""Property tests: generated documents, and token soup that is barely HTML."""

from __future__ import annotations

from html import escape

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbeacon.rewrite import SlotKind, TrackingPolicy, scan_html, scan_text
from mailbeacon.rewrite.template import Template
from tests.rewrite.html_documents import Document, documents
from tests.rewrite.rewrite_support import (
    OPEN_URL,
    POLICY,
    UNSUBSCRIBE_URL,
    click_markers,
    pixel,
    restore,
)

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _markers_for(document: Document) -> dict[str, str]:
    return click_markers(list(dict.fromkeys(link.url for link in document.links if link.reason is None)))


def _restore_clicks(rendered: str, template: Template, markers: dict[str, str]) -> str:
    clicks = [s for s in template.slots() if s.kind is SlotKind.CLICK]
    return restore(rendered, [(escape(markers[s.url]), s.raw) for s in clicks])


@SETTINGS
@given(documents())
def test_render_without_click_urls_is_the_input(document: Document) -> None:
    result = scan_html(document.html, document.policy)

    rendered = result.template.render({}, OPEN_URL, UNSUBSCRIBE_URL)

    assert result.has_pixel == document.expected_pixel()
    assert rendered == document.expected_output({}, OPEN_URL, UNSUBSCRIBE_URL)
    if not document.has_notrack and "mb_unsubscribe" not in document.html:
        assert rendered.replace(pixel(), "", 1) == document.html


@SETTINGS
@given(documents())
def test_only_tracked_href_values_change(document: Document) -> None:
    result = scan_html(document.html, document.policy)
    markers = _markers_for(document)

    rendered = result.template.render(markers, OPEN_URL, UNSUBSCRIBE_URL)

    assert rendered == document.expected_output(markers, OPEN_URL, UNSUBSCRIBE_URL)
    assert _restore_clicks(rendered, result.template, markers) == document.expected_output(
        {}, OPEN_URL, UNSUBSCRIBE_URL
    )


@SETTINGS
@given(documents())
def test_links_are_tracked_or_skipped_as_expected(document: Document) -> None:
    result = scan_html(document.html, document.policy)

    assert [(t.url, t.line, t.tag, t.in_conditional_comment) for t in result.tracked] == [
        (link.url, link.line, link.tag, link.in_conditional_comment)
        for link in document.links
        if link.reason is None
    ]
    assert [(s.url, s.line, s.tag, s.reason) for s in result.skipped] == [
        (link.url, link.line, link.tag, link.reason) for link in document.links if link.reason is not None
    ]


@SETTINGS
@given(documents(rescannable=True))
def test_rewriting_is_idempotent(document: Document) -> None:
    markers = _markers_for(document)
    once = scan_html(document.html, document.policy).template.render(markers, OPEN_URL, UNSUBSCRIBE_URL)

    again = scan_html(once, document.policy)

    assert again.tracked == ()
    assert not again.has_pixel
    assert again.template.render(markers, OPEN_URL, UNSUBSCRIBE_URL) == once


# Token soup: fragments of markup in any order, unclosed quotes, comments and tags included.
# No "data-mb-notrack" or unsubscribe placeholder, so the output must equal the input.
SOUP = st.lists(
    st.sampled_from(
        [
            "<a",
            "<A",
            " href",
            "=",
            '"',
            "'",
            "https://x.com/p?a=1&amp;b=2",
            "http://y.com",
            ">",
            "</a>",
            "<!--",
            "-->",
            "<!--[if mso]>",
            "<![endif]-->",
            "<!-->",
            "<style>",
            "</style>",
            "<script>",
            "</script",
            "<title>",
            " ",
            "\n",
            "\r\n",
            "x.com",
            "<v:roundrect",
            "<area",
            "<img",
            " src=",
            "</body>",
            "<!",
            "<?",
            "</",
            "<",
            "/",
            "{{",
            "}}",
            "mailto:",
            "#",
            "&",
            "<b>",
            "www.x.com",
            "https://t.example/c/1",
            "<![if !mso]>",
            "<![endif]>",
            "text",
        ]
    ),
    max_size=40,
).map("".join)
NO_OPENS = TrackingPolicy(track_opens=False, tracking_hosts=frozenset({"t.example"}))


@SETTINGS
@given(SOUP, st.booleans())
def test_token_soup_round_trips(html: str, scam_prevention: bool) -> None:
    policy = TrackingPolicy(
        track_opens=False, tracking_hosts=frozenset({"t.example"}), scam_prevention=scam_prevention
    )
    result = scan_html(html, policy)
    markers = click_markers(list(dict.fromkeys(t.url for t in result.tracked)))

    assert result.template.render({}, OPEN_URL, UNSUBSCRIBE_URL) == html
    rendered = result.template.render(markers, OPEN_URL, UNSUBSCRIBE_URL)
    assert _restore_clicks(rendered, result.template, markers) == html
    assert all(t.url.lower().startswith(("http://", "https://")) for t in result.tracked)
    again = scan_html(rendered, policy)
    assert again.tracked == ()
    assert again.template.render(markers, OPEN_URL, UNSUBSCRIBE_URL) == rendered


@SETTINGS
@given(SOUP)
def test_token_soup_pixel_is_the_only_insertion(html: str) -> None:
    result = scan_html(html, POLICY)
    rendered = result.template.render({}, OPEN_URL, UNSUBSCRIBE_URL)
    assert result.has_pixel
    assert rendered.replace(pixel(), "", 1) == html


TEXT_SOUP = st.lists(
    st.sampled_from(
        [
            "http://",
            "https://",
            "HTTPS://",
            "x.com",
            "/",
            "(",
            ")",
            ".",
            ",",
            "!",
            " ",
            "\n",
            "\r\n",
            "<",
            ">",
            '"',
            "'",
            "{{",
            "}}",
            "a",
            "?q=1&b=2",
            "t.example",
            "apps.apple.com",
            "[",
            "]",
            "{{ id }}",
            "#f",
            ":",
        ]
    ),
    max_size=40,
).map("".join)


@SETTINGS
@given(TEXT_SOUP)
def test_text_round_trips(text: str) -> None:
    result = scan_text(text, POLICY)
    markers = click_markers(list(dict.fromkeys(t.url for t in result.tracked)))

    assert result.template.render({}, OPEN_URL, UNSUBSCRIBE_URL) == text
    rendered = result.template.render(markers, OPEN_URL, UNSUBSCRIBE_URL)
    clicks = [s for s in result.template.slots() if s.kind is SlotKind.CLICK]
    assert restore(rendered, [(markers[s.url], s.raw) for s in clicks]) == text
    for link in result.tracked:
        assert link.url.lower().startswith(("http://", "https://"))
        assert link.url[-1] not in ".,;:!?'"
    assert scan_text(rendered, POLICY).tracked == ()
