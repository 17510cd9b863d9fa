"""Turning the source plus a list of edits into a Template."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from mailbeacon.rewrite.placeholders import UNSUBSCRIBE_PLACEHOLDER
from mailbeacon.rewrite.template import Slot, SlotKind, Template


class Edit(NamedTuple):
    """Replace ``source[start:end]`` with ``replacement`` (an insertion when start == end)."""

    start: int
    end: int
    replacement: tuple[str | Slot, ...]


def build_template(source: str, edits: Iterable[Edit], *, escape_html: bool) -> Template:
    """Apply non-overlapping ``edits``; unsubscribe placeholders left in the text become slots."""
    parts = _Parts(escape_html)
    position = 0
    for edit in sorted(edits, key=lambda edit: edit.start):
        parts.source_text(source[position : edit.start])
        for part in edit.replacement:
            if isinstance(part, Slot):
                parts.slot(part)
            else:
                parts.literal(part)
        position = edit.end
    parts.source_text(source[position:])
    return Template(parts.finish())


class _Parts:
    """Collects parts, joining adjacent literals so that render() joins few strings."""

    def __init__(self, escape_html: bool) -> None:
        self._escape_html = escape_html
        self._parts: list[str | Slot] = []
        self._pending: list[str] = []

    def source_text(self, text: str) -> None:
        position = 0
        for match in UNSUBSCRIBE_PLACEHOLDER.finditer(text):
            self.literal(text[position : match.start()])
            self.slot(Slot(SlotKind.UNSUBSCRIBE, "", self._escape_html, match.group(0)))
            position = match.end()
        self.literal(text[position:])

    def literal(self, text: str) -> None:
        if text:
            self._pending.append(text)

    def slot(self, slot: Slot) -> None:
        self._flush()
        self._parts.append(slot)

    def finish(self) -> tuple[str | Slot, ...]:
        self._flush()
        return tuple(self._parts)

    def _flush(self) -> None:
        if self._pending:
            self._parts.append("".join(self._pending))
            self._pending.clear()
