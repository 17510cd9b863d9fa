"""A scanned body: literal source text interleaved with slots for per-recipient URLs."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from html import escape


class SlotKind(enum.Enum):
    CLICK = "click"
    OPEN_PIXEL = "open_pixel"
    UNSUBSCRIBE = "unsubscribe"


@dataclass(frozen=True, slots=True)
class Slot:
    kind: SlotKind
    # CLICK: the original URL, entities decoded and surrounding whitespace stripped; "" otherwise.
    url: str
    # True inside HTML: the rendered URL is HTML-escaped.
    escape_html: bool
    # The source text the slot replaces (an attribute value exactly as written, or the
    # unsubscribe placeholder); a CLICK slot with no tracked URL renders this unchanged.
    raw: str = ""


_NEEDS_ESCAPE = re.compile(r"[&<>\"']").search


@dataclass(frozen=True)
class Template:
    parts: tuple[str | Slot, ...]

    def slots(self) -> tuple[Slot, ...]:
        return tuple(part for part in self.parts if isinstance(part, Slot))

    def render(
        self,
        click_urls: Mapping[str, str],
        open_url: str,
        unsubscribe_url: str,
        *,
        click_urls_need_no_escaping: bool = False,
    ) -> str:
        """Splice one recipient's URLs into the template.

        ``click_urls`` maps ``Slot.url`` to the tracked URL (un-escaped); a CLICK slot whose
        URL is missing renders its original source text. A caller whose click URLs contain none of
        ``&<>"'`` may say so, and they go in as they are.
        """
        buffer = list(self._buffer)
        escaped_open = escape(open_url)
        escaped_unsubscribe = escape(unsubscribe_url)
        escaped: dict[str, str] = {}  # a URL that occurs several times is escaped once
        for index, slot in self._slot_positions:
            kind = slot.kind
            if kind is SlotKind.CLICK:
                tracked = click_urls.get(slot.url)
                if tracked is not None:
                    if slot.escape_html and not click_urls_need_no_escaping:
                        done = escaped.get(tracked)
                        if done is None:
                            done = escaped[tracked] = escape(tracked) if _NEEDS_ESCAPE(tracked) else tracked
                        tracked = done
                    buffer[index] = tracked
            elif kind is SlotKind.OPEN_PIXEL:
                buffer[index] = escaped_open if slot.escape_html else open_url
            else:
                buffer[index] = escaped_unsubscribe if slot.escape_html else unsubscribe_url
        return "".join(buffer)

    # Precomputed once per template so that render() is a list copy, a short loop and a join.
    @cached_property
    def _buffer(self) -> tuple[str, ...]:
        return tuple(part if isinstance(part, str) else part.raw for part in self.parts)

    @cached_property
    def _slot_positions(self) -> tuple[tuple[int, Slot], ...]:
        return tuple((index, part) for index, part in enumerate(self.parts) if isinstance(part, Slot))
