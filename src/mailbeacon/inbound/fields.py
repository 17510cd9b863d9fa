"""`Name: value` field blocks as found in message/delivery-status and message/feedback-report bodies."""

from __future__ import annotations

import re
from typing import Final

from mailbeacon.inbound.message import unfold

MAX_LINES: Final = 5000
_FIELD: Final = re.compile(r"([A-Za-z][A-Za-z0-9\-]{0,76}+)[ \t]*+:[ \t]*+(.*+)")

Block = list[tuple[str, str]]


def field_blocks(text: str) -> list[Block]:
    """Blocks of (lower-cased name, unfolded value), split at blank lines; junk lines are skipped."""
    blocks: list[Block] = []
    current: Block = []
    pending: list[str] | None = None
    name = ""

    def flush_field() -> None:
        nonlocal pending
        if pending is not None:
            current.append((name, unfold("\n".join(pending))))
            pending = None

    for line in text.splitlines()[:MAX_LINES]:
        if not line.strip():
            flush_field()
            if current:
                blocks.append(current)
                current = []
            continue
        if line[0] in " \t" and pending is not None:
            pending.append(line)
            continue
        flush_field()
        match = _FIELD.fullmatch(line.rstrip())
        if match:
            name = match.group(1).lower()
            pending = [match.group(2)]
    flush_field()
    if current:
        blocks.append(current)
    return blocks
