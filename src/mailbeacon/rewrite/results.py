"""What a scan reports besides the template."""

from __future__ import annotations

from dataclasses import dataclass

from mailbeacon.rewrite.template import Template


@dataclass(frozen=True)
class TrackedLink:
    url: str  # decoded original URL
    line: int  # 1-based line of the start of the href value
    tag: str  # "a", "area", "v:roundrect", "v:rect", "v:oval", or "text" for text/plain
    in_conditional_comment: bool


@dataclass(frozen=True)
class SkippedLink:
    url: str  # decoded href, surrounding whitespace stripped ("" when empty)
    line: int
    tag: str
    reason: str  # one of mailbeacon.rewrite.classify.SKIP_REASONS


@dataclass(frozen=True)
class ScanResult:
    template: Template
    tracked: tuple[TrackedLink, ...]  # every tracked occurrence, in document order
    skipped: tuple[SkippedLink, ...]
    has_pixel: bool  # an open pixel slot was inserted
