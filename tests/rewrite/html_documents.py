"""Hypothesis strategy for HTML-ish email documents that know their expected rewrite.

Each generated document is built from pieces (text, tags with random attributes and
quoting, comments, conditional comments, raw-text elements, links of every kind) and
records, next to its source, what the rewriter must produce: which links it tracks or skips
and why, and the expected output as literals plus placeholders for the rewritten parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Final

from hypothesis import strategies as st

from mailbeacon.rewrite import TrackingPolicy

TRACKING_HOST: Final = "t.example"


@dataclass(frozen=True)
class ClickOut:
    url: str
    raw: str


@dataclass(frozen=True)
class UnsubscribeOut:
    pass


@dataclass(frozen=True)
class PixelOut:
    pass


Out = str | ClickOut | UnsubscribeOut | PixelOut


@dataclass(frozen=True)
class ExpectedLink:
    url: str
    line: int
    tag: str
    in_conditional_comment: bool
    reason: str | None  # None: tracked


@dataclass
class Document:
    policy: TrackingPolicy
    source: list[str] = field(default_factory=list)
    out: list[Out] = field(default_factory=list)
    links: list[ExpectedLink] = field(default_factory=list)
    has_notrack: bool = False
    has_existing_pixel: bool = False
    body_end_index: int | None = None
    _length: int = 0
    _lines: int = 1

    @property
    def html(self) -> str:
        return "".join(self.source)

    def expected_pixel(self) -> bool:
        return self.policy.track_opens and not self.has_existing_pixel

    def expected_output(self, click_urls: dict[str, str], open_url: str, unsubscribe_url: str) -> str:
        rendered: list[str] = []
        out = list(self.out)
        if self.expected_pixel():
            at = len(out) if self.body_end_index is None else self.body_end_index
            out.insert(at, PixelOut())
        for item in out:
            if isinstance(item, str):
                rendered.append(item)
            elif isinstance(item, ClickOut):
                tracked = click_urls.get(item.url)
                rendered.append(item.raw if tracked is None else escape(tracked))
            elif isinstance(item, UnsubscribeOut):
                rendered.append(escape(unsubscribe_url))
            else:
                rendered.append(
                    f'<img src="{escape(open_url)}" width="1" height="1" alt="" '
                    'style="display:block;width:1px;height:1px;border:0" />'
                )
        return "".join(rendered)

    # Building -------------------------------------------------------------------------

    def text(self, text: str) -> None:
        """Source text that must come out unchanged."""
        self._source(text)
        self.out.append(text)

    def removed(self, text: str) -> None:
        self._source(text)
        self.has_notrack = True

    def unsubscribe(self, placeholder: str) -> None:
        self._source(placeholder)
        self.out.append(UnsubscribeOut())

    def href_value(self, raw: str, link: ExpectedLink, unsubscribe: str | None) -> None:
        if unsubscribe is not None:
            before, _, after = raw.partition(unsubscribe)
            self.text(before)
            self.unsubscribe(unsubscribe)
            self.text(after)
        elif link.reason is None:
            self._source(raw)
            self.out.append(ClickOut(link.url, raw))
        else:
            self.text(raw)

    def line(self) -> int:
        return self._lines

    def _source(self, text: str) -> None:
        self.source.append(text)
        self._length += len(text)
        self._lines += text.count("\n")


# Vocabulary ---------------------------------------------------------------------------

TEXT = st.text(alphabet="abcXYZ 019\n\r\t.,;:!?()[]'\"=/-&#é€\u00a0", max_size=12)
# "<" that does not start markup (a letter, "!", "/" or "?" must not follow it).
LESS_THAN = st.sampled_from(["a < b", "<3", "< a", "1<2 ", "<=", "<\n", "<<1"])
WHITESPACE = st.sampled_from([" ", "\n", "\t", "  ", "\r\n"])
AROUND_EQUALS = st.sampled_from(["", " ", "\n", " \t"])
TAG_END = st.sampled_from([">", " >", " />", "\n>"])
_TAG_NAMES = [
    "div",
    "P",
    "td",
    "Table",
    "span",
    "img",
    "br",
    "meta",
    "link",
    "base",
    "form",
    "center",
    "o:p",
    "w:anchorlock",
    "abbr",
    "address",
    "b",
    "html",
    "head",
]
PLAIN_TAGS = st.sampled_from([*_TAG_NAMES, "BODY"])
END_TAGS = st.sampled_from(_TAG_NAMES)  # no </body>: that one decides where the pixel goes
_ATTRIBUTE_NAMES = [
    "class",
    "id",
    "src",
    "SRC",
    "background",
    "action",
    "style",
    "title",
    "alt",
    "data-href",
    "xhref",
    "hreflang",
    "width",
]
PLAIN_ATTRIBUTES = st.sampled_from([*_ATTRIBUTE_NAMES, "href", "HREF"])
LINK_ATTRIBUTES = st.sampled_from(_ATTRIBUTE_NAMES)
TRICKY_VALUES = st.sampled_from(
    [
        '<a href="https://x.com/in-attribute">',
        "</a>",
        "-->",
        "<!--",
        "<style>",
        "</body>",
        "<![endif]-->",
        "<!--[if mso]>",
        "https://x.com/attr?a=1&amp;b=2",
        ">",
        "x.com",
        "#",
        "",
    ]
)
RAW_TEXT_NAMES = st.sampled_from(["style", "STYLE", "script", "Script", "title", "textarea"])
RAW_TEXT_CONTENT = st.sampled_from(
    [
        '<a href="https://x.com/raw">x</a>',
        "</body>",
        "<!-- x",
        "-->",
        "<![endif]-->",
        "<!--[if mso]>",
        "</a>",
        "<p>",
        "x < y",
        'a[href^="https://x.com"] { color: red }',
        "\n",
    ]
)
COMMENT_CONTENT = st.sampled_from(
    [
        '<a href="https://x.com/comment">x</a>',
        "</body>",
        "<style>",
        "<script>",
        " - ",
        "\n",
        "<![endif]",
        "<a href=x.com>",
        '<img src="https://t.example/o/abc">',
    ]
)
CONDITIONS = st.sampled_from(
    [
        ("<!--[if mso]>", "<![endif]-->"),
        ("<!--[if gte mso 9]>", "<![endif]-->"),
        ("<!--[if (gte mso 9)|(IE)]>", "<![endif]-->"),
        ("<!--[if !mso]><!-->", "<!--<![endif]-->"),
        ("<!--[if !mso]><!-- -->", "<!--<![endif]-->"),
        ("<![if !mso]>", "<![endif]>"),
    ]
)
LINK_TAGS = st.sampled_from(["a", "A", "area", "AREA", "v:roundrect", "V:RoundRect", "v:rect", "v:oval"])
HOSTS = st.sampled_from(
    [
        "x.com",
        "Example.COM",
        "sub.example.org:8080",
        "例え.jp",
        "notplay.google.com",
        "t.example.com",
        "play.google.com.evil.com",
        "t.example:8443",
        "user@x.com",
    ]
)
PATH_CHARS = "abcXYZ019-._~()!$*+,;:@/"  # no "%": "%%" twice is a placeholder
NOTRACK = st.sampled_from(
    [
        "data-mb-notrack",
        "DATA-MB-NOTRACK",
        'data-mb-notrack="1"',
        "data-mb-notrack=''",
        "data-mb-notrack = yes",
    ]
)
UNSUBSCRIBE_PLACEHOLDERS = st.sampled_from(["{{mb_unsubscribe}}", "{{ mb_unsubscribe }}"])
# (value, reason) for links that are never tracked, whatever the policy.
UNTRACKABLE = st.sampled_from(
    [
        ("mailto:a@x.com", "mailto"),
        ("MAILTO:b@x.com", "mailto"),
        ("tel:+1555", "tel"),
        ("sms:+1555", "sms"),
        ("javascript:void(0)", "javascript"),
        ("#top", "anchor"),
        ("#", "anchor"),
        ("", "empty"),
        ("/relative", "not_http"),
        ("ftp://x.com/f", "not_http"),
        ("x.com", "not_http"),
        ("{{ url }}", "placeholder"),
        ("*|ARCHIVE|*", "placeholder"),
        ("https://x.com/{{id}}", "placeholder"),
        ("%%view%%", "placeholder"),
        ("${link}", "placeholder"),
        ("[[link]]", "placeholder"),
    ]
)
EXCLUDED = st.sampled_from(
    [
        "https://apps.apple.com/app/id1",
        "https://itunes.apple.com/x",
        "https://EU.play.google.com/x",
        "http://testflight.apple.com/join",
    ]
)
ALREADY_TRACKED = st.sampled_from(["https://t.example/c/1", "HTTPS://T.EXAMPLE/x?y=1"])
AMPERSANDS = st.sampled_from(["&amp;", "&#38;", "&#x26;", "&"])
# Visible link text: (markup, host shown) where host is None for ordinary words.
ADDRESS_TEXT = st.sampled_from(
    [
        ("x.com", "x.com"),
        ("https://x.com/p", "x.com"),
        ("<b>www.example.org</b>", "www.example.org"),
        ("t.example", TRACKING_HOST),
        (" HTTPS://T.EXAMPLE/z ", TRACKING_HOST),
        ("x&#46;com", "x.com"),
    ]
)
WORDS = st.text(alphabet="abcXYZ019 \n", max_size=10)


@st.composite
def policies(draw: st.DrawFn) -> TrackingPolicy:
    mostly_on = st.sampled_from([True, True, True, False])
    return TrackingPolicy(
        track_clicks=draw(mostly_on),
        track_opens=draw(st.booleans()),
        tracking_hosts=frozenset({TRACKING_HOST}),
        scam_prevention=draw(mostly_on),
    )


@st.composite
def documents(draw: st.DrawFn, rescannable: bool = False) -> Document:
    """A document; ``rescannable`` leaves out what a first rewrite consumes."""
    document = Document(policy=draw(policies()))
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(
            st.sampled_from(
                [
                    "text",
                    "less_than",
                    "tag",
                    "end_tag",
                    "comment",
                    "raw_text",
                    "link",
                    "link",
                    "link",
                    "condition",
                    "body_end",
                    "pixel",
                    "declaration",
                    "unsubscribe",
                ]
            )
        )
        if kind == "condition":
            opener, closer = draw(CONDITIONS)
            document.text(opener)
            for _ in range(draw(st.integers(0, 4))):
                _inner_piece(draw, document, in_condition=True, rescannable=rescannable)
            document.text(closer)
        elif kind == "body_end":
            document.body_end_index = len(document.out)
            document.text(draw(st.sampled_from(["</body>", "</BODY >", "</body\n>"])))
        elif kind == "pixel":
            document.has_existing_pixel = True
            document.text('<img src="https://t.example/o/abc?x=1&amp;y=2" width="1">')
        elif kind == "comment":
            _comment(draw, document)
        elif kind == "raw_text":
            name = draw(RAW_TEXT_NAMES)
            document.text(f"<{name}{_attributes(draw, PLAIN_ATTRIBUTES)}>")
            document.text("".join(draw(st.lists(RAW_TEXT_CONTENT, max_size=4))))
            document.text(f"</{draw(st.sampled_from([name.lower(), name.upper()]))}{draw(TAG_END)}")
        elif kind == "declaration":
            document.text(draw(st.sampled_from(["<!DOCTYPE html>", '<?xml version="1.0"?>'])))
        elif kind == "unsubscribe":
            document.unsubscribe(draw(UNSUBSCRIBE_PLACEHOLDERS))
        else:
            _inner_piece(draw, document, in_condition=False, rescannable=rescannable, kind=kind)
    return document


def _inner_piece(
    draw: st.DrawFn,
    document: Document,
    *,
    in_condition: bool,
    rescannable: bool,
    kind: str | None = None,
) -> None:
    if kind is None:
        kind = draw(st.sampled_from(["text", "less_than", "tag", "end_tag", "link"]))
    if kind == "text":
        document.text(draw(TEXT))
    elif kind == "less_than":
        document.text(draw(LESS_THAN))
    elif kind == "tag":
        document.text(f"<{draw(PLAIN_TAGS)}{_attributes(draw, PLAIN_ATTRIBUTES)}{draw(TAG_END)}")
    elif kind == "end_tag":
        document.text(f"</{draw(END_TAGS)}>")
    else:
        _link(draw, document, in_condition=in_condition, rescannable=rescannable)


def _comment(draw: st.DrawFn, document: Document) -> None:
    if draw(st.booleans()):
        document.text(draw(st.sampled_from(["<!---->", "<!-->", "<!--->", "<!-- -->"])))
        return
    document.text("<!-- ")
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.integers(0, 5)) == 0:
            document.unsubscribe(draw(UNSUBSCRIBE_PLACEHOLDERS))
        else:
            document.text(draw(COMMENT_CONTENT))
    document.text(draw(st.sampled_from([" -->", "--!>"])))


def _attributes(draw: st.DrawFn, names: st.SearchStrategy[str]) -> str:
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 3))):
        parts.append(draw(WHITESPACE) + _attribute(draw, draw(names)))
    return "".join(parts)


def _attribute(draw: st.DrawFn, name: str) -> str:
    quote = draw(st.sampled_from(['"', "'", "", None]))
    if quote is None:
        return name
    value = draw(st.one_of(TRICKY_VALUES, TEXT))
    if quote == "":
        value = "".join(c for c in value if c not in " \t\n\r\f>\"'") or "v"
    else:
        value = value.replace(quote, "")
    return f"{name}{draw(AROUND_EQUALS)}={draw(AROUND_EQUALS)}{quote}{value}{quote}"


def _http_url(draw: st.DrawFn) -> tuple[str, str]:
    """An http(s) URL as written in HTML and decoded."""
    scheme = draw(st.sampled_from(["http://", "https://", "HTTPS://"]))
    host = draw(HOSTS)
    path = (
        "/" + draw(st.text(alphabet=PATH_CHARS, max_size=12)) + draw(st.sampled_from(["", "%20x", "a%2Fb"]))
    )
    raw, url = scheme + host + path, scheme + host + path
    for index in range(draw(st.integers(0, 3))):
        separator = "?" if index == 0 else draw(AMPERSANDS)
        value = draw(st.text(alphabet="abc019-", max_size=4))
        raw += f"{separator}k{index}={value}"
        url += f"{'?' if index == 0 else '&'}k{index}={value}"
    if draw(st.booleans()):
        fragment = "#" + draw(st.text(alphabet="abcXYZ019-?/", max_size=5))
        raw, url = raw + fragment, url + fragment
    return raw, url


def _link(draw: st.DrawFn, document: Document, *, in_condition: bool, rescannable: bool) -> None:
    tag = draw(LINK_TAGS)
    policy = document.policy
    kind = draw(
        st.sampled_from(["http", "http", "http", "untrackable", "excluded", "already", "unsubscribe"])
    )
    unsubscribe: str | None = None
    # What the value is, then where it points: the rewriter reports the first that applies,
    # with the author's data-mb-notrack in between.
    kind_reason: str | None = None
    destination_reason: str | None = None
    if kind == "http":
        raw, url = _http_url(draw)
    elif kind == "untrackable":
        raw, kind_reason = draw(UNTRACKABLE)
        url = raw
    elif kind == "excluded":
        raw = url = draw(EXCLUDED)
        destination_reason = "excluded_domain"
    elif kind == "already":
        raw = url = draw(ALREADY_TRACKED)
        destination_reason = "already_tracked"
    else:
        unsubscribe = draw(UNSUBSCRIBE_PLACEHOLDERS)
        # Embedded in another URL, the placeholder becomes part of an ordinary link, which a
        # second scan would track: only the whole-value form survives rescanning unchanged.
        prefixes = [""] if rescannable else ["", "https://x.com/u?t="]
        raw = url = draw(st.sampled_from(prefixes)) + unsubscribe
        kind_reason = "unsubscribe"

    # data-mb-notrack is consumed by the first rewrite, so the output scans differently.
    notrack = not rescannable and draw(st.integers(0, 4)) == 0
    shown = None
    has_text = tag.lower() != "area"
    if has_text and draw(st.booleans()):
        text, shown = draw(ADDRESS_TEXT)
    else:
        text = draw(WORDS)

    reason = kind_reason
    if reason is None and notrack:
        reason = "notrack"
    if reason is None:
        reason = destination_reason
    if (
        reason is None
        and policy.scam_prevention
        and tag.lower() == "a"
        and shown not in (None, TRACKING_HOST)
    ):
        reason = "scam_prevention"
    if reason is None and not policy.track_clicks:
        reason = "clicks_off"

    padding = draw(st.sampled_from(["", " ", "\n "]))
    quote = draw(st.sampled_from(['"', "'", ""]))
    if quote == "" and (not raw or " " in raw):
        quote = '"'
    if quote:
        raw = padding + raw + padding[::-1]

    document.text(f"<{tag}")
    notrack_first = draw(st.booleans())
    if notrack and notrack_first:
        document.removed(draw(WHITESPACE) + draw(NOTRACK))
    document.text(_attributes(draw, LINK_ATTRIBUTES))
    document.text(f"{draw(WHITESPACE)}{draw(st.sampled_from(['href', 'HREF', 'Href']))}")
    document.text(f"{draw(AROUND_EQUALS)}={draw(AROUND_EQUALS)}{quote}")
    link = ExpectedLink(url.strip(), document.line(), tag.lower(), in_condition, reason)
    document.links.append(link)
    document.href_value(raw, link, unsubscribe)
    document.text(quote)
    if notrack and not notrack_first:
        document.removed(draw(WHITESPACE) + draw(NOTRACK))
    document.text(_attributes(draw, LINK_ATTRIBUTES))
    document.text(draw(TAG_END if quote else st.sampled_from([">", " >", " />"])))
    if has_text:
        document.text(text)
        document.text(f"</{tag}>")
