"""A message's HTML and text scanned once into templates, then personalised per recipient cheaply."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mailbeacon.messages.urls import TrackingUrls
from mailbeacon.rewrite import ScanResult, SkippedLink, TrackingPolicy, scan_html, scan_text


@dataclass(frozen=True)
class LinkInfo:
    position: int
    url: str
    occurrences: int


@dataclass(frozen=True)
class SkippedInfo:
    part: str  # "html" or "text"
    url: str
    line: int
    tag: str
    reason: str


@dataclass(frozen=True)
class PreparedContent:
    html: ScanResult | None
    text: ScanResult | None
    links: tuple[LinkInfo, ...]
    skipped: tuple[SkippedInfo, ...]

    @property
    def has_pixel(self) -> bool:
        return self.html is not None and self.html.has_pixel

    def position_of(self) -> dict[str, int]:
        return {link.url: link.position for link in self.links}


def _skipped(part: str, items: tuple[SkippedLink, ...]) -> list[SkippedInfo]:
    return [SkippedInfo(part, s.url, s.line, s.tag, s.reason) for s in items]


def prepare_content(html: str | None, text: str | None, policy: TrackingPolicy) -> PreparedContent:
    html_scan = scan_html(html, policy) if html is not None else None
    text_scan = scan_text(text, policy) if text is not None else None
    counts: dict[str, int] = {}
    for scan in (html_scan, text_scan):
        if scan is not None:
            for link in scan.tracked:
                counts[link.url] = counts.get(link.url, 0) + 1
    links = tuple(LinkInfo(i, url, n) for i, (url, n) in enumerate(counts.items()))
    skipped: list[SkippedInfo] = []
    if html_scan is not None:
        skipped += _skipped("html", html_scan.skipped)
    if text_scan is not None:
        skipped += _skipped("text", text_scan.skipped)
    return PreparedContent(html_scan, text_scan, links, tuple(skipped))


PreparedKey = tuple[int, str | None, str | None, str]
_PREPARED: OrderedDict[PreparedKey, PreparedContent] = OrderedDict()
_PREPARED_LIMIT = 256


def prepared_key(
    message_id: int, html: str | None, text: str | None, policy: Mapping[str, Any]
) -> PreparedKey:
    return (message_id, html, text, json.dumps(policy, sort_keys=True))


def remember_prepared(key: PreparedKey, content: PreparedContent) -> None:
    """Keep a scan for this process's later renders of the same message (its delivery, say)."""
    _PREPARED[key] = content
    _PREPARED.move_to_end(key)
    if len(_PREPARED) > _PREPARED_LIMIT:
        _PREPARED.popitem(last=False)


def recall_prepared(key: PreparedKey) -> PreparedContent | None:
    found = _PREPARED.get(key)
    if found is not None:
        _PREPARED.move_to_end(key)
    return found


@dataclass(frozen=True)
class RenderedCopy:
    html: str | None
    text: str | None
    unsubscribe_url: str


class Personaliser:
    """Renders each recipient's copy of prepared content: only token URLs are computed per recipient."""

    def __init__(
        self, content: PreparedContent, urls: TrackingUrls, positions: Mapping[str, int] | None = None
    ) -> None:
        """``positions`` (URL -> link position) defaults to the content's own; pass the stored links
        when rendering a stored message, so its tokens always name the links its redirects use."""
        self.content = content
        self.urls = urls
        self.positions = content.position_of() if positions is None else dict(positions)
        self._plain_urls = urls.click_urls_need_no_escaping

    def render(self, recipient_id: int) -> RenderedCopy:
        urls = self.urls
        click_urls = urls.click_urls(recipient_id, self.positions)
        open_url = urls.open_url(recipient_id)
        unsubscribe_url = urls.unsubscribe_url(recipient_id)
        html = self.content.html
        text = self.content.text
        return RenderedCopy(
            html=html.template.render(
                click_urls, open_url, unsubscribe_url, click_urls_need_no_escaping=self._plain_urls
            )
            if html
            else None,
            text=text.template.render(click_urls, open_url, unsubscribe_url) if text else None,
            unsubscribe_url=unsubscribe_url,
        )
