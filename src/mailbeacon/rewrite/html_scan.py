"""Single-pass scanner turning an HTML body into a template.

The scanner only locates things (link hrefs, comments, raw-text elements, </body>) and
records edits against the source; everything it does not edit is copied verbatim.
"""

from __future__ import annotations

import re

from mailbeacon.rewrite.builder import Edit, build_template
from mailbeacon.rewrite.classify import LinkClassifier
from mailbeacon.rewrite.entities import unescape_attribute
from mailbeacon.rewrite.html_syntax import (
    ANCHOR_BOUNDARY,
    ATTRIBUTE,
    COMMENT_END,
    ENDIF_MARK,
    LINK_TAGS,
    MARKUP,
    PLAINTEXT,
    RAW_TEXT_END,
)
from mailbeacon.rewrite.lines import LineCounter
from mailbeacon.rewrite.pixel import PIXEL_AFTER, PIXEL_BEFORE, is_open_pixel_url
from mailbeacon.rewrite.policy import TrackingPolicy
from mailbeacon.rewrite.results import ScanResult, SkippedLink, TrackedLink
from mailbeacon.rewrite.scam import is_deceptive
from mailbeacon.rewrite.template import Slot, SlotKind
from mailbeacon.rewrite.urls import ASCII_WHITESPACE, hostname

# Markup longer than this between <a> and </a> is not a bare URL; skip reading it.
_MAX_ANCHOR_MARKUP = 16_384

_OPEN_PIXEL = (PIXEL_BEFORE, Slot(SlotKind.OPEN_PIXEL, "", escape_html=True), PIXEL_AFTER)


def scan_html(html: str, policy: TrackingPolicy) -> ScanResult:
    return _HtmlScan(html, policy).run()


class _HtmlScan:
    def __init__(self, html: str, policy: TrackingPolicy) -> None:
        self._html = html
        self._policy = policy
        self._classifier = LinkClassifier(policy)
        self._tracking_hosts = frozenset(host.lower() for host in policy.tracking_hosts)
        self._tracking_hostnames = frozenset(hostname(host) for host in self._tracking_hosts)
        self._lines = LineCounter(html)
        self._edits: list[Edit] = []
        self._tracked: list[TrackedLink] = []
        self._skipped: list[SkippedLink] = []
        self._in_condition = False
        self._body_end: int | None = None
        self._pixel_found = False

    def run(self) -> ScanResult:
        self._scan()
        has_pixel = self._policy.track_opens and not self._pixel_found
        if has_pixel:
            at = len(self._html) if self._body_end is None else self._body_end
            self._edits.append(Edit(at, at, _OPEN_PIXEL))
        return ScanResult(
            template=build_template(self._html, self._edits, escape_html=True),
            tracked=tuple(self._tracked),
            skipped=tuple(self._skipped),
            has_pixel=has_pixel,
        )

    def _scan(self) -> None:
        html = self._html
        search = MARKUP.search
        position = 0
        while (match := search(html, position)) is not None:
            kind = match.lastgroup
            if kind == "tag":
                next_position = self._tag(match)
            elif kind == "comment":
                next_position = self._comment(match.end())
            elif kind == "condition_open":
                self._in_condition = True
                next_position = match.end()
            elif kind == "condition_close":
                self._in_condition = False
                next_position = match.end()
            else:
                end = html.find(">", match.end())
                next_position = None if end < 0 else end + 1
            # None: the rest of the document is one comment, raw text or unfinished tag.
            if next_position is None:
                return
            position = next_position

    def _comment(self, start: int) -> int | None:
        html = self._html
        if html.startswith(">", start):
            return start + 1
        if html.startswith("->", start):
            return start + 2
        end = COMMENT_END.search(html, start)
        if end is None:
            return None
        # "<!--<![endif]-->" closes a downlevel-revealed conditional block.
        if ENDIF_MARK.search(html, start, end.start()) is not None:
            self._in_condition = False
        return end.end()

    def _tag(self, match: re.Match[str]) -> int | None:
        if match.group("tag_close") is None:
            return None
        name = match.group("name").lower()
        if match.group("end_tag"):
            if name == "body" and not self._in_condition:
                self._body_end = match.start()
            return match.end()
        if name in LINK_TAGS:
            self._link(name, match)
        elif name == "img" and not self._pixel_found:
            self._image(match)
        raw_text_end = RAW_TEXT_END.get(name)
        if raw_text_end is not None:
            end = raw_text_end.search(self._html, match.end())
            return None if end is None else end.start()
        if name == PLAINTEXT:
            return None
        return match.end()

    def _link(self, tag: str, match: re.Match[str]) -> None:
        html = self._html
        href: re.Match[str] | None = None
        notrack = False
        for attribute in ATTRIBUTE.finditer(html, *match.span("attributes")):
            name = attribute.group("name").lower()
            if name == "href":
                # Browsers use the first of duplicate attributes.
                if href is None:
                    href = attribute
            elif name == "data-mb-notrack":
                notrack = True
                self._remove_attribute(attribute)
        if href is None:
            return
        value = _value_span(href)
        start, end = value if value is not None else (href.end(), href.end())
        raw = html[start:end]
        url = unescape_attribute(raw).strip(ASCII_WHITESPACE)
        line = self._lines.line_at(start)
        in_condition = self._in_condition
        content_start = match.end()
        reason = self._classifier.skip_reason(
            raw,
            url,
            notrack=notrack,
            looks_like_scam=(lambda: self._anchor_deceives(content_start)) if tag == "a" else None,
        )
        if reason is not None:
            self._skipped.append(SkippedLink(url, line, tag, reason))
            return
        self._tracked.append(TrackedLink(url, line, tag, in_condition))
        self._edits.append(Edit(start, end, (Slot(SlotKind.CLICK, url, True, raw),)))

    def _remove_attribute(self, attribute: re.Match[str]) -> None:
        start = attribute.start("name")
        while start > attribute.start() and self._html[start - 1] in ASCII_WHITESPACE:
            start -= 1
        self._edits.append(Edit(start, attribute.end(), ()))

    def _anchor_deceives(self, content_start: int) -> bool:
        # The boundary is at most the next <a>, so the spans read here never overlap and
        # the total work stays linear.
        boundary = ANCHOR_BOUNDARY.search(self._html, content_start)
        end = len(self._html) if boundary is None else boundary.start()
        if end - content_start > _MAX_ANCHOR_MARKUP:
            return False
        return is_deceptive(self._html[content_start:end], self._tracking_hostnames)

    def _image(self, match: re.Match[str]) -> None:
        hosts = self._tracking_hosts
        if not hosts or not self._policy.track_opens:
            return
        for attribute in ATTRIBUTE.finditer(self._html, *match.span("attributes")):
            if attribute.group("name").lower() == "src":
                value = _value_span(attribute)
                if value is not None:
                    src = unescape_attribute(self._html[value[0] : value[1]])
                    self._pixel_found = is_open_pixel_url(src.strip(ASCII_WHITESPACE), hosts)
                return


def _value_span(attribute: re.Match[str]) -> tuple[int, int] | None:
    # The value groups come after "name", so the last group matched is the value's if any.
    group = attribute.lastgroup
    return None if group is None or group == "name" else attribute.span(group)
