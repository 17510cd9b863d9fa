"""Helpers shared by the rewriter tests: test data, a reference link parser, reversal."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Final

from mailbeacon.rewrite import TrackingPolicy

DATA_DIR: Final = Path(__file__).resolve().parents[1] / "data" / "html-templates"

TRACKING_HOST: Final = "t.example"
POLICY: Final = TrackingPolicy(tracking_hosts=frozenset({TRACKING_HOST}))
OPEN_URL: Final = "https://t.example/o/open-token?v=1&sig=x"
UNSUBSCRIBE_URL: Final = "https://t.example/u/unsub-token?v=1&sig=y"
PIXEL_BEFORE: Final = '<img src="'
PIXEL_AFTER: Final = '" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0" />'
LINK_TAGS: Final = frozenset({"a", "area", "v:roundrect", "v:rect", "v:oval"})


def read_source(path: Path) -> str:
    # Not read_text(): universal newlines would turn "\r\n" into "\n".
    return path.read_bytes().decode("utf-8")


def pixel(open_url: str = "https://t.example/o/open-token?v=1&amp;sig=x") -> str:
    """The pixel markup as rendered (``open_url`` already HTML-escaped)."""
    return PIXEL_BEFORE + open_url + PIXEL_AFTER


def with_pixel_before_last_body_end(html: str, markup: str | None = None) -> str:
    """``html`` with the pixel inserted where the rewriter should put it in simple documents."""
    at = html.lower().rfind("</body")
    at = len(html) if at < 0 else at
    return html[:at] + (pixel() if markup is None else markup) + html[at:]


def click_markers(urls: list[str]) -> dict[str, str]:
    """A distinct tracked URL per original URL, with characters render() has to escape."""
    return {url: f"https://t.example/c/{index}?n={index}&k=v" for index, url in enumerate(urls)}


def restore(rendered: str, replacements: list[tuple[str, str]]) -> str:
    """Undo ``render``: replace each (written, original) pair in turn, left to right."""
    pieces: list[str] = []
    position = 0
    for written, original in replacements:
        found = rendered.find(written, position)
        assert found >= 0, f"{written!r} not found after offset {position}"
        pieces.append(rendered[position:found])
        pieces.append(original)
        position = found + len(written)
    pieces.append(rendered[position:])
    return "".join(pieces)


@dataclass(frozen=True)
class ReferenceLink:
    tag: str
    href: str  # decoded by html.parser
    tag_line: int  # line where the tag starts
    href_line: int  # line where the href value starts
    text: str  # visible text up to </a> (only for <a>)


class _ReferenceParser(HTMLParser):
    """Python's own HTML parser as an independent reference for link positions."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[int, ReferenceLink]] = []
        self._open: tuple[int, str, str, int, int] | None = None
        self._text: list[str] = []
        self._started = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._close_anchor()
        if tag not in LINK_TAGS:
            return
        href = next((value for name, value in attrs if name == "href"), None)
        if href is None:
            return
        line = self.getpos()[0]
        tag_text = self.get_starttag_text() or ""
        attribute = re.search(r"[\s/]href\s*=\s*[\"']?", tag_text, re.IGNORECASE)
        href_line = line + (tag_text[: attribute.end()].count("\n") if attribute else 0)
        order = self._started
        self._started += 1
        if tag == "a":
            self._open = (order, tag, href, line, href_line)
            self._text = []
        else:
            self.links.append((order, ReferenceLink(tag, href, line, href_line, "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._close_anchor()

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def close(self) -> None:
        super().close()
        self._close_anchor()

    def _close_anchor(self) -> None:
        if self._open is not None:
            order, tag, href, line, href_line = self._open
            text = "".join(self._text).strip()
            self.links.append((order, ReferenceLink(tag, href, line, href_line, text)))
            self._open = None


def reference_links(html: str) -> list[ReferenceLink]:
    """Links outside comments, in the order their tags start."""
    parser = _ReferenceParser()
    parser.feed(html)
    parser.close()
    return [link for _, link in sorted(parser.links, key=lambda item: item[0])]
