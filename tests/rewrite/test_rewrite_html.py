"""HTML scanning: which hrefs are rewritten, and that nothing else changes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mailbeacon.rewrite import ScanResult, SkippedLink, TrackedLink, TrackingPolicy, scan_html
from tests.rewrite.rewrite_support import OPEN_URL, POLICY, UNSUBSCRIBE_URL

NO_PIXEL = replace(POLICY, track_opens=False)
TRACKED = "https://t.example/c/1?a=1&b=2"
TRACKED_HTML = "https://t.example/c/1?a=1&amp;b=2"


def scan(html: str, policy: TrackingPolicy = NO_PIXEL) -> ScanResult:
    return scan_html(html, policy)


def rewrite(html: str, policy: TrackingPolicy = NO_PIXEL) -> str:
    """Render with every tracked URL mapped to TRACKED."""
    result = scan_html(html, policy)
    return result.template.render({link.url: TRACKED for link in result.tracked}, OPEN_URL, UNSUBSCRIBE_URL)


def tracked_urls(html: str, policy: TrackingPolicy = NO_PIXEL) -> list[str]:
    return [link.url for link in scan(html, policy).tracked]


def reasons(html: str, policy: TrackingPolicy = NO_PIXEL) -> list[str]:
    return [link.reason for link in scan(html, policy).skipped]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('<a href="https://x.com/p">x</a>', f'<a href="{TRACKED_HTML}">x</a>'),
        ("<a href='https://x.com/p'>x</a>", f"<a href='{TRACKED_HTML}'>x</a>"),
        ("<a href=https://x.com/p>x</a>", f"<a href={TRACKED_HTML}>x</a>"),
        ('<a href = "https://x.com/p">x</a>', f'<a href = "{TRACKED_HTML}">x</a>'),
        ('<a\nhref\n=\n"https://x.com/p"\n>x</a>', f'<a\nhref\n=\n"{TRACKED_HTML}"\n>x</a>'),
        ('<A HREF="https://x.com/p">x</A>', f'<A HREF="{TRACKED_HTML}">x</A>'),
        ('<a class=b href="https://x.com/p" id=c>x</a>', f'<a class=b href="{TRACKED_HTML}" id=c>x</a>'),
        ('<a/href="https://x.com/p"/>x</a>', f'<a/href="{TRACKED_HTML}"/>x</a>'),
        ('<a href="https://x.com/p"id=c>x</a>', f'<a href="{TRACKED_HTML}"id=c>x</a>'),
        ('<a href=" https://x.com/p\n">x</a>', f'<a href="{TRACKED_HTML}">x</a>'),
        ('<area shape=rect href="https://x.com/p">', f'<area shape=rect href="{TRACKED_HTML}">'),
        ('<v:roundrect href="https://x.com/p">', f'<v:roundrect href="{TRACKED_HTML}">'),
        ('<V:RECT HREF="https://x.com/p">', f'<V:RECT HREF="{TRACKED_HTML}">'),
        ("<v:oval href='https://x.com/p'>", f"<v:oval href='{TRACKED_HTML}'>"),
    ],
)
def test_rewrites_the_href_value_in_its_original_quoting(source: str, expected: str) -> None:
    assert rewrite(source) == expected
    assert tracked_urls(source) == ["https://x.com/p"]


@pytest.mark.parametrize(
    "source",
    [
        '<img src="https://x.com/i.png">',
        '<td background="https://x.com/bg.png">',
        '<form action="https://x.com/post">',
        '<link rel=stylesheet href="https://x.com/s.css">',
        '<base href="https://x.com/">',
        '<a data-href="https://x.com/p" xhref="https://x.com/q">x</a>',
        '<a name="top">x</a>',
        "<img alt='<a href=\"https://x.com/p\">'>",
        '<div title="<a href=https://x.com/p>">',
        '<!-- <a href="https://x.com/p">x</a> -->',
        "<!--\n<a href=https://x.com/p>\n--!>",
        '<style>a[href="https://x.com/p"] {}</style>',
        '<STYLE>\n<a href="https://x.com/p">\n</STYLE >',
        "<script>document.write('<a href=\"https://x.com/p\">')</script>",
        '<title><a href="https://x.com/p">x</a></title>',
        '<textarea><a href="https://x.com/p">x</a></textarea>',
        '<script><a href="https://x.com/p"></scripts><a href="https://x.com/q">',
        '<!DOCTYPE html><?xml version="1.0"?></ a href="https://x.com/p">',
        '</a href="https://x.com/p">',
        '<plaintext><a href="https://x.com/p">',
        '<a href="https://x.com/p',
        '<!-- never closed <a href="https://x.com/p">',
        '<style><a href="https://x.com/p">',
    ],
)
def test_leaves_everything_else_alone(source: str) -> None:
    assert tracked_urls(source) == []
    assert rewrite(source) == source


def test_link_after_a_raw_text_element_or_comment_is_tracked() -> None:
    source = (
        '<style>a{}</style><a href="https://x.com/1">1</a><!-- c --><a href="https://x.com/2">2'
        '</a><!--><a href="https://x.com/3">3</a><!---><a href="https://x.com/4">4</a>'
        '<title>t</title ><a href="https://x.com/5">5</a>'
    )
    assert tracked_urls(source) == [f"https://x.com/{n}" for n in range(1, 6)]


def test_only_the_first_of_duplicate_hrefs_counts() -> None:
    source = '<a href="https://x.com/1" HREF="https://x.com/2">x</a>'
    assert tracked_urls(source) == ["https://x.com/1"]
    assert rewrite(source) == f'<a href="{TRACKED_HTML}" HREF="https://x.com/2">x</a>'


@pytest.mark.parametrize(
    ("source", "url"),
    [
        ('<a href="https://x.com/?a=1&amp;b=2">x</a>', "https://x.com/?a=1&b=2"),
        ('<a href="https://x.com/?a=1&#38;b=2">x</a>', "https://x.com/?a=1&b=2"),
        ('<a href="https://x.com/?a=1&#x26;b=2">x</a>', "https://x.com/?a=1&b=2"),
        ('<a href="https://x.com/?a=1&amp;amp;b=2">x</a>', "https://x.com/?a=1&amp;b=2"),
        ('<a href="https://x.com/?a=1&b=2">x</a>', "https://x.com/?a=1&b=2"),
        ('<a href="https://x.com/?a=1&param=2&copy=3">x</a>', "https://x.com/?a=1&param=2&copy=3"),
        ('<a href="https://x.com/?a=&copy;&amp">x</a>', "https://x.com/?a=©&"),
        ('<a href="https://x.com/a%20b#Frag?x=1">x</a>', "https://x.com/a%20b#Frag?x=1"),
        ('<a href="HTTPS://X.COM/Path?Q=%2F">x</a>', "HTTPS://X.COM/Path?Q=%2F"),
    ],
)
def test_url_is_the_decoded_value_without_normalisation(source: str, url: str) -> None:
    assert tracked_urls(source) == [url]


def test_missing_click_url_renders_the_value_exactly_as_written() -> None:
    source = '<a href=" https://x.com/?a=1&#38;b=2 ">x</a><a href="https://y.com/">y</a>'
    result = scan(source)
    rendered = result.template.render({"https://y.com/": TRACKED}, OPEN_URL, UNSUBSCRIBE_URL)
    assert rendered == f'<a href=" https://x.com/?a=1&#38;b=2 ">x</a><a href="{TRACKED_HTML}">y</a>'


def test_tracked_url_is_html_escaped() -> None:
    result = scan("<a href='https://x.com/'>x</a>")
    rendered = result.template.render({"https://x.com/": "https://t.example/c?a=\"'<>&"}, "", "")
    assert rendered == "<a href='https://t.example/c?a=&quot;&#x27;&lt;&gt;&amp;'>x</a>"


@pytest.mark.parametrize(
    ("href", "reason"),
    [
        ("", "empty"),
        ("  ", "empty"),
        ("#top", "anchor"),
        ("#", "anchor"),
        ("mailto:a@x.com", "mailto"),
        (" MailTo:a@x.com", "mailto"),
        ("tel:+1555", "tel"),
        ("sms:+1555", "sms"),
        ("javascript:void(0)", "javascript"),
        ("\tJavaScript:alert(1)", "javascript"),
        ("ftp://x.com/f", "not_http"),
        ("/relative/path", "not_http"),
        ("x.com/path", "not_http"),
        ("//x.com/path", "not_http"),
        ("https://", "not_http"),
        ("https:///path", "not_http"),
        ("{{action_url}}", "placeholder"),
        ("https://x.com/?u={{ user.id }}", "placeholder"),
        ("{% url 'home' %}", "placeholder"),
        ("*|UNSUB|*", "placeholder"),
        ("%%view_email_url%%", "placeholder"),
        ("[[unsubscribe]]", "placeholder"),
        ("https://x.com/${path}", "placeholder"),
        ("mailto:{{support_email}}", "placeholder"),
        ("https://apps.apple.com/app/id1", "excluded_domain"),
        ("https://itunes.apple.com/app", "excluded_domain"),
        ("https://testflight.apple.com/join/x", "excluded_domain"),
        ("https://play.google.com/store", "excluded_domain"),
        ("https://PLAY.google.com.:443/store", "excluded_domain"),
        ("https://eu.play.google.com/store", "excluded_domain"),
        ("https://t.example/c/1", "already_tracked"),
        ("https://user@T.EXAMPLE/c/1", "already_tracked"),
        ("{{mb_unsubscribe}}", "unsubscribe"),
        ("https://x.com/u?t={{ mb_unsubscribe }}", "unsubscribe"),
    ],
)
def test_skip_reasons(href: str, reason: str) -> None:
    result = scan(f'<p>\n<a href="{href}">go</a>')
    assert result.tracked == ()
    assert result.skipped == (SkippedLink(href.strip(), 2, "a", reason),)


@pytest.mark.parametrize(
    "href",
    [
        "https://notplay.google.com/",
        "https://play.google.com.evil.example/",
        "https://apple.com/",
        "https://t.example:8443/c/1",
        "https://sub.t.example/c/1",
        "http://x.com/100%/ok",
    ],
)
def test_lookalikes_of_skipped_hosts_are_tracked(href: str) -> None:
    assert tracked_urls(f'<a href="{href}">go</a>') == [href]


def test_port_must_match_a_tracking_host_exactly() -> None:
    policy = replace(NO_PIXEL, tracking_hosts=frozenset({"t.example:8443"}))
    assert reasons('<a href="https://t.example:8443/c">x</a>', policy) == ["already_tracked"]
    assert tracked_urls('<a href="https://t.example/c">x</a>', policy) == ["https://t.example/c"]


def test_tracking_hosts_are_compared_case_insensitively() -> None:
    policy = replace(POLICY, tracking_hosts=frozenset({"T.Example"}))
    result = scan('<a href="https://t.EXAMPLE/c">x</a><img src="https://t.example/o/1">', policy)
    assert [s.reason for s in result.skipped] == ["already_tracked"]
    assert not result.has_pixel


def test_custom_excluded_domains() -> None:
    policy = replace(NO_PIXEL, excluded_domains=("Example.org",))
    assert reasons('<a href="https://www.example.org/">x</a>', policy) == ["excluded_domain"]
    assert tracked_urls('<a href="https://apps.apple.com/">x</a>', policy) == ["https://apps.apple.com/"]


def test_clicks_off_skips_only_links_that_would_be_tracked() -> None:
    policy = replace(NO_PIXEL, track_clicks=False)
    source = (
        '<a href="https://x.com/">go</a><a href="mailto:a@x.com">m</a><a href="https://t.example/c">t</a>'
    )
    assert reasons(source, policy) == ["clicks_off", "mailto", "already_tracked"]
    assert rewrite(source, policy) == source


class TestNotrack:
    @pytest.mark.parametrize(
        ("source", "expected"),
        [
            ('<a data-mb-notrack href="https://x.com/">x</a>', '<a href="https://x.com/">x</a>'),
            ('<a href="https://x.com/" data-mb-notrack>x</a>', '<a href="https://x.com/">x</a>'),
            ('<a href="https://x.com/" data-mb-notrack >x</a>', '<a href="https://x.com/" >x</a>'),
            ("<a href=https://x.com/\n\tDATA-MB-NOTRACK='1'>x</a>", "<a href=https://x.com/>x</a>"),
            (
                '<a href="https://x.com/" data-mb-notrack = "" id=y>x</a>',
                '<a href="https://x.com/" id=y>x</a>',
            ),
            ('<a href="https://x.com/"data-mb-notrack>x</a>', '<a href="https://x.com/">x</a>'),
            ("<a name=x data-mb-notrack>x</a>", "<a name=x>x</a>"),
            ('<v:rect data-mb-notrack href="https://x.com/">', '<v:rect href="https://x.com/">'),
        ],
    )
    def test_attribute_and_its_leading_whitespace_are_removed(self, source: str, expected: str) -> None:
        assert rewrite(source) == expected
        assert tracked_urls(source) == []

    def test_reason_is_notrack(self) -> None:
        assert reasons('<a data-mb-notrack href="https://x.com/">x</a>') == ["notrack"]

    def test_a_more_basic_reason_wins(self) -> None:
        assert reasons('<a data-mb-notrack href="mailto:a@x.com">x</a>') == ["mailto"]

    def test_left_alone_outside_links_and_in_similar_names(self) -> None:
        source = '<div data-mb-notrack><a data-mb-notrack-x href="https://x.com/">x</a></div>'
        assert (
            rewrite(source) == f'<div data-mb-notrack><a data-mb-notrack-x href="{TRACKED_HTML}">x</a></div>'
        )


class TestScamPrevention:
    @pytest.mark.parametrize(
        "text",
        [
            "https://x.com/p",
            "http://other.example",
            "www.x.com",
            "x.com",
            "x.com/path?q=1",
            "  <b>HTTPS://X.COM</b>\n",
            "<span style='a:b'>x</span>.<span>com</span>",
            "x&#46;com",
            "münchen.de",
            "t.example.evil.com",
        ],
    )
    def test_link_showing_another_address_is_not_rewritten(self, text: str) -> None:
        source = f'<a href="https://x.com/p">{text}</a>'
        assert reasons(source) == ["scam_prevention"]
        assert rewrite(source) == source

    @pytest.mark.parametrize(
        "text",
        [
            "Read more",
            "Visit x.com today",
            "",
            "<img src='https://x.com/i.png' alt='x.com'>",
            "version 1.2",
            "t.example",
            "https://t.example/anything",
            "x.com<!-- comment -->and more",
        ],
    )
    def test_other_text_is_fine(self, text: str) -> None:
        assert tracked_urls(f'<a href="https://x.com/p">{text}</a>') == ["https://x.com/p"]

    def test_without_tracking_hosts_any_address_text_is_skipped(self) -> None:
        policy = replace(NO_PIXEL, tracking_hosts=frozenset())
        assert reasons('<a href="https://x.com/p">t.example</a>', policy) == ["scam_prevention"]

    def test_can_be_turned_off(self) -> None:
        policy = replace(NO_PIXEL, scam_prevention=False)
        assert tracked_urls('<a href="https://x.com/p">x.com</a>', policy) == ["https://x.com/p"]

    def test_text_ends_at_the_next_anchor(self) -> None:
        source = '<a href="https://x.com/1">Go<a href="https://x.com/2">x.com</a>'
        assert tracked_urls(source) == ["https://x.com/1"]
        assert reasons(source) == ["scam_prevention"]

    def test_applies_to_anchors_only(self) -> None:
        source = '<v:roundrect href="https://x.com/p"><center>x.com</center></v:roundrect>'
        assert tracked_urls(source) == ["https://x.com/p"]


class TestUnsubscribe:
    def test_placeholder_in_href_and_text_becomes_the_unsubscribe_url(self) -> None:
        source = (
            '<a href="{{mb_unsubscribe}}">Unsubscribe</a> or visit {{ mb_unsubscribe }}'
            '<a href="https://x.com/u?next={{mb_unsubscribe}}&amp;x=1">x</a><!-- {{mb_unsubscribe}} -->'
        )
        escaped = "https://t.example/u/unsub-token?v=1&amp;sig=y"
        assert rewrite(source) == (
            f'<a href="{escaped}">Unsubscribe</a> or visit {escaped}'
            f'<a href="https://x.com/u?next={escaped}&amp;x=1">x</a><!-- {escaped} -->'
        )
        assert reasons(source) == ["unsubscribe", "unsubscribe"]

    def test_slots(self) -> None:
        slots = scan('<a href="{{ mb_unsubscribe }}">u</a>').template.slots()
        assert [(s.kind.value, s.url, s.escape_html, s.raw) for s in slots] == [
            ("unsubscribe", "", True, "{{ mb_unsubscribe }}")
        ]

    def test_other_spellings_are_not_ours(self) -> None:
        source = "{{mb_unsubscribe_x}} {{ MB_UNSUBSCRIBE }} {mb_unsubscribe}"
        assert rewrite(source) == source


class TestConditionalComments:
    @pytest.mark.parametrize(
        "opener",
        ["<!--[if mso]>", "<!--[if gte mso 9]>", "<!--[if (gte mso 9)|(IE)]>", "<!--[IF MSO]>"],
    )
    def test_downlevel_hidden_content_is_scanned(self, opener: str) -> None:
        source = f'{opener}<v:roundrect href="https://x.com/b"><![endif]--><a href="https://x.com/a">a</a>'
        result = scan(source)
        assert [(t.url, t.tag, t.in_conditional_comment) for t in result.tracked] == [
            ("https://x.com/b", "v:roundrect", True),
            ("https://x.com/a", "a", False),
        ]

    @pytest.mark.parametrize(
        ("opener", "closer"),
        [
            ("<!--[if !mso]><!-->", "<!--<![endif]-->"),
            ("<!--[if !mso]><!-- -->", "<!--<![endif]-->"),
            ("<![if !mso]>", "<![endif]>"),
        ],
    )
    def test_downlevel_revealed_content_is_scanned(self, opener: str, closer: str) -> None:
        source = f'{opener}<a href="https://x.com/b">b</a>{closer}<a href="https://x.com/a">a</a>'
        result = scan(source)
        assert [(t.url, t.in_conditional_comment) for t in result.tracked] == [
            ("https://x.com/b", True),
            ("https://x.com/a", False),
        ]
        assert rewrite(source) == source.replace("https://x.com/a", TRACKED_HTML).replace(
            "https://x.com/b", TRACKED_HTML
        )

    def test_upper_case_endif_closes_the_block(self) -> None:
        source = '<!--[if !mso]><!--><a href="https://x.com/b"><!--<![ENDIF]--><a href="https://x.com/a">'
        assert [t.in_conditional_comment for t in scan(source).tracked] == [True, False]

    def test_ordinary_comment_inside_a_conditional_block(self) -> None:
        source = '<!--[if mso]><!-- <a href="https://x.com/c"> --><a href="https://x.com/b"><![endif]-->'
        assert tracked_urls(source) == ["https://x.com/b"]


class TestOpenPixel:
    def test_inserted_before_the_last_body_end_tag(self) -> None:
        source = (
            "<body><!-- </body> --><script>'</body>'</script>x</body>\n"
            "<div>late</div></BODY ><!--[if mso]></body><![endif]--></html>"
        )
        result = scan(source, POLICY)
        assert result.has_pixel
        rendered = result.template.render({}, "https://t.example/o/1?a&b", "")
        pixel = (
            '<img src="https://t.example/o/1?a&amp;b" width="1" height="1" alt="" '
            'style="display:block;width:1px;height:1px;border:0" />'
        )
        at = source.index("</BODY >")
        assert rendered == source[:at] + pixel + source[at:]

    def test_appended_when_there_is_no_body_end_tag(self) -> None:
        result = scan("<p>Hi <!-- </body> -->", POLICY)
        assert result.template.render({}, "O", "") == (
            '<p>Hi <!-- </body> --><img src="O" width="1" height="1" alt="" '
            'style="display:block;width:1px;height:1px;border:0" />'
        )

    def test_not_inserted_when_opens_are_off(self) -> None:
        result = scan("<body>x</body>", replace(POLICY, track_opens=False))
        assert not result.has_pixel
        assert result.template.render({}, OPEN_URL, "") == "<body>x</body>"

    @pytest.mark.parametrize(
        "image",
        [
            '<img src="https://t.example/o/abc">',
            "<IMG alt='' SRC = 'https://T.EXAMPLE/o/abc?x=1&amp;y'>",
            "<img width=1 src=https://t.example/o/>",
        ],
    )
    def test_not_inserted_twice(self, image: str) -> None:
        result = scan(f"<body>{image}</body>", POLICY)
        assert not result.has_pixel
        assert result.template.slots() == ()

    @pytest.mark.parametrize(
        "image",
        [
            '<img src="https://t.example/c/abc">',
            '<img src="https://other.example/o/abc">',
            '<img data-src="https://t.example/o/abc">',
            '<!-- <img src="https://t.example/o/abc"> -->',
            '<img src="http://x.com/" src="https://t.example/o/abc">',
        ],
    )
    def test_other_images_do_not_count(self, image: str) -> None:
        assert scan(f"<body>{image}</body>", POLICY).has_pixel


class TestLineNumbers:
    def test_line_of_the_href_value_counting_crlf_once(self) -> None:
        source = '<p>\r\n<a\r\n  class=x\n  href=\r\n"https://x.com/1">\r\n</a><a href="https://x.com/2">'
        assert [(t.url, t.line) for t in scan(source).tracked] == [
            ("https://x.com/1", 5),
            ("https://x.com/2", 6),
        ]

    def test_tracked_and_skipped_share_the_numbering(self) -> None:
        source = '\n<a href="mailto:a@x.com">m</a>\n\n<a href="https://x.com/">x</a>\n<a href="">e</a>'
        result = scan(source)
        assert result.tracked == (TrackedLink("https://x.com/", 4, "a", False),)
        assert [(s.line, s.reason) for s in result.skipped] == [(2, "mailto"), (5, "empty")]


def test_rendering_without_click_urls_reproduces_the_input_except_pixel_and_removals() -> None:
    source = (
        '\ufeff<!doctype html>\r\n<html><head><meta charset="utf-8"><title>Ünïcødé ✓</title></head>\n'
        '<body class="x">\r\n<a href="https://x.com/?a=1&amp;b=2" class=btn>Go</a> &nbsp;\n'
        "<a href=https://x.com/path>Path</a>\r\n</body></html>\r\n"
    )
    result = scan(source, POLICY)
    assert len(result.tracked) == 2
    rendered = result.template.render({}, "https://t.example/o/x", UNSUBSCRIBE_URL)
    pixel = (
        '<img src="https://t.example/o/x" width="1" height="1" alt="" '
        'style="display:block;width:1px;height:1px;border:0" />'
    )
    assert rendered.replace(pixel, "", 1) == source


def test_rescanning_the_output_is_idempotent() -> None:
    source = (
        '<body><!--[if mso]><v:roundrect href="https://x.com/b?a=1&amp;b=2"><![endif]-->'
        '<a href="https://x.com/b?a=1&amp;b=2">Buy</a><a href="{{mb_unsubscribe}}">u</a>'
        '<a href="https://x.com/">x.com</a></body>'
    )
    first = scan(source, POLICY)
    urls = {link.url: f"https://t.example/c/{n}?s=1&t=2" for n, link in enumerate(first.tracked)}
    once = first.template.render(urls, OPEN_URL, UNSUBSCRIBE_URL)
    second = scan(once, POLICY)
    assert second.tracked == ()
    assert not second.has_pixel
    assert [s.reason for s in second.skipped] == [
        "already_tracked",
        "already_tracked",
        "already_tracked",
        "scam_prevention",
    ]
    assert second.template.render(urls, OPEN_URL, UNSUBSCRIBE_URL) == once
