"""Scanner turning a text/plain body into a template."""

from __future__ import annotations

import re
from typing import Final

from mailbeacon.rewrite.builder import Edit, build_template
from mailbeacon.rewrite.classify import LinkClassifier
from mailbeacon.rewrite.lines import LineCounter
from mailbeacon.rewrite.policy import TrackingPolicy
from mailbeacon.rewrite.results import ScanResult, SkippedLink, TrackedLink
from mailbeacon.rewrite.template import Slot, SlotKind

# A URL runs to whitespace, "<", ">" or '"'; "{{ name }}" and "{% tag %}" placeholders
# (which contain spaces) are taken whole so that they are recognised as placeholders.
_URL: Final = re.compile(
    r"https?://(?:\{\{[^{}\r\n]{0,64}+\}\}|\{%[^%\r\n]{0,64}+%\}|[^\s<>\"])++",
    re.IGNORECASE,
)
_TRAILING_PUNCTUATION: Final = ".,;:!?'"
_BRACKETS: Final = {")": "(", "]": "[", "}": "{"}


def scan_text(text: str, policy: TrackingPolicy) -> ScanResult:
    classifier = LinkClassifier(policy)
    lines = LineCounter(text)
    edits: list[Edit] = []
    tracked: list[TrackedLink] = []
    skipped: list[SkippedLink] = []
    for match in _URL.finditer(text):
        start = match.start()
        url = trim_url(match.group(0))
        line = lines.line_at(start)
        reason = classifier.skip_reason(url, url)
        if reason is not None:
            skipped.append(SkippedLink(url, line, "text", reason))
            continue
        tracked.append(TrackedLink(url, line, "text", in_conditional_comment=False))
        slot = Slot(SlotKind.CLICK, url, escape_html=False, raw=url)
        edits.append(Edit(start, start + len(url), (slot,)))
    return ScanResult(
        template=build_template(text, edits, escape_html=False),
        tracked=tuple(tracked),
        skipped=tuple(skipped),
        has_pixel=False,
    )


def trim_url(candidate: str) -> str:
    """Drop trailing punctuation that ends the sentence rather than the URL.

    A closing bracket stays when the URL has an opening one for it, as in
    ``https://en.wikipedia.org/wiki/Mercury_(planet)``.
    """
    if candidate[-1] not in _TRAILING_PUNCTUATION and candidate[-1] not in _BRACKETS:
        return candidate
    unmatched = {
        closer: candidate.count(closer) - candidate.count(opener) for closer, opener in _BRACKETS.items()
    }
    end = len(candidate)
    while end > 0:
        last = candidate[end - 1]
        if last in _TRAILING_PUNCTUATION:
            end -= 1
        elif last in unmatched and unmatched[last] > 0:
            unmatched[last] -= 1
            end -= 1
        else:
            break
    return candidate[:end]
