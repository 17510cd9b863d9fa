"""Locating the MIME entities of a raw message by byte offsets.

The walk follows the rules of Python's ``email.feedparser`` (which lines end a header block,
which lines are boundaries, that the line break before a boundary belongs to the boundary,
that the boundary lines of every enclosing multipart end a part early, that a multipart whose
closing boundary is missing runs to the end of its parent) so that both agree on the part
tree, but it records offsets into the raw bytes instead of building strings, and it jumps from
one ``--`` line to the next with ``bytes.find`` instead of reading every line: linear in the
size of the message times its nesting depth, which is capped.

Lines end at ``\\n`` (a lone ``\\r`` is not treated as a line break, unlike the feedparser).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import policy as email_policy
from email.message import Message
from typing import Final

_HEADER_LINE: Final = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*+:|[\t ]")
# What may follow "--boundary" on a boundary line: the feedparser's boundaryendRE.
_BOUNDARY_TAIL: Final = re.compile(rb"(?:--)?+[ \t]*+(?:\r\n|\r|\n)?\Z")
_CLOSE_TAIL: Final = re.compile(rb"--[ \t]*+(?:\r\n|\r|\n)?\Z")
_BOUNDARY_GUESS: Final = re.compile(rb"--([\x21-\x7e](?:[\x20-\x7e]{0,199}[\x21-\x7e])?)[ \t]*+\r?\n?\Z")

# The separator pushed while parsing the header blocks of message/delivery-status.
_BLANK_LINE: Final = b""


class MimeError(ValueError):
    """The message as a whole cannot be handled safely; ``reason`` fits an SMTP 5xx reply."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class HeaderField:
    name: str  # as written, without the colon
    start: int  # offset of the field's first line
    end: int  # offset after the line break of its last (continuation) line
    value: str  # unfolded as the feedparser stores it; bytes >= 0x80 as surrogate escapes


@dataclass
class Entity:
    """One MIME entity: a header block and a body, or a container of further entities."""

    index: int
    depth: int
    parent: int | None
    start: int
    header_end: int  # where the header fields end (the blank line, or the body if it is missing)
    body_start: int
    body_end: int = -1
    has_separator: bool = False
    fields: tuple[HeaderField, ...] = ()
    content_type: str = "text/plain"
    message: Message = field(default_factory=Message)
    children: list[int] = field(default_factory=list)
    enclosed_in: str | None = None  # the message/* type this entity is inside, if any
    signed_in: str | None = None  # multipart/signed or multipart/encrypted it is inside, if any
    defects: list[str] = field(default_factory=list)
    # The last body of a multipart's part: a line break ending it is read as the boundary's.
    ends_before_boundary: bool = False

    @property
    def maintype(self) -> str:
        return self.content_type.partition("/")[0]

    @property
    def is_container(self) -> bool:
        return self.maintype in ("multipart", "message")

    def field_named(self, name: str) -> HeaderField | None:
        lowered = name.lower()
        return next((item for item in self.fields if item.name.lower() == lowered), None)


@dataclass(frozen=True)
class _Hit:
    start: int  # start of the line that matched (len(raw) when nothing did)
    end: int  # after its line break
    own: bool  # the walker's own boundary (as opposed to an enclosing one ending the part)
    close: bool  # "--boundary--"


class Walker:
    def __init__(self, raw: bytes, *, max_depth: int, max_parts: int) -> None:
        self.raw = raw
        self.size = len(raw)
        self.max_depth = max_depth
        self.max_parts = max_parts
        self.entities: list[Entity] = []
        self._stack: list[bytes] = []
        self._blank_matchers = 0

    def walk(self) -> list[Entity]:
        raw = self.raw
        if not raw:
            raise MimeError("empty message")
        if raw[:1] in (b"\r", b"\n") or _HEADER_LINE.match(raw) is None:
            raise MimeError("no header block")
        end, _ = self._entity(0, 0, None)
        assert end == self.size
        top = self.entities[0]
        if b"\0" in raw[: top.header_end]:
            raise MimeError("NUL byte in the header block")
        if not top.has_separator and top.body_start < self.size:
            raise MimeError("no header/body separator")
        return self.entities

    # -- lines ---------------------------------------------------------------------------

    def _line_end(self, start: int) -> int:
        found = self.raw.find(b"\n", start)
        return self.size if found < 0 else found + 1

    def _is_boundary(self, start: int, end: int, separator: bytes) -> bool:
        if separator == _BLANK_LINE:
            return self.raw[start : start + 1] in (b"\r", b"\n")
        raw = self.raw
        return (
            raw.startswith(separator, start)
            and _BOUNDARY_TAIL.match(raw, start + len(separator), end) is not None
        )

    def _ends_part(self, start: int, end: int) -> bool:
        """Whether the line matches the boundary of an enclosing entity (the part ends there)."""
        if not self._blank_matchers and not self.raw.startswith(b"--", start):
            return False
        return any(self._is_boundary(start, end, separator) for separator in reversed(self._stack))

    def _next(self, position: int, own: bytes | None) -> _Hit:
        """The first line at or after ``position`` (a line start) that ends the current part
        or is one of ``own`` boundaries."""
        raw = self.raw
        size = self.size
        start = position
        slow = self._blank_matchers > 0
        if not slow and not raw.startswith(b"--", start):
            start = raw.find(b"\n--", start) + 1 or size
        while start < size:
            end = self._line_end(start)
            if self._ends_part(start, end):
                return _Hit(start, end, own=False, close=False)
            if own is not None and self._is_boundary(start, end, own):
                close = _CLOSE_TAIL.match(raw, start + len(own), end) is not None
                return _Hit(start, end, own=True, close=close)
            start = end if slow else raw.find(b"\n--", end - 1) + 1 or size
        return _Hit(size, size, own=False, close=False)

    # -- entities ------------------------------------------------------------------------

    def _entity(self, start: int, depth: int, parent: Entity | None) -> tuple[int, Entity | None]:
        """Parse the entity starting at ``start``.

        Returns where it ends (the start of the line that ended it, or the end of the message)
        and the entity whose body the line break before the next boundary is taken from (the
        feedparser's ``_last``), or None when that is a multipart.
        """
        if depth > self.max_depth:
            raise MimeError(f"nesting deeper than {self.max_depth} levels")
        if len(self.entities) >= self.max_parts:
            raise MimeError(f"more than {self.max_parts} MIME parts")
        entity = self._headers(start, depth, parent)
        self.entities.append(entity)
        if parent is not None:
            parent.children.append(entity.index)
            entity.enclosed_in = parent.enclosed_in or (
                parent.content_type if parent.maintype == "message" else None
            )
            entity.signed_in = parent.signed_in or (
                parent.content_type
                if parent.content_type in ("multipart/signed", "multipart/encrypted")
                else None
            )
        if entity.content_type == "message/delivery-status":
            return self._delivery_status(entity)
        if entity.maintype == "message":
            end, last = self._entity(entity.body_start, depth + 1, entity)
            entity.body_end = end
            return end, last
        if entity.maintype == "multipart":
            return self._multipart(entity), None
        end = self._next(entity.body_start, None).start
        entity.body_end = end
        return end, entity

    def _headers(self, start: int, depth: int, parent: Entity | None) -> Entity:
        raw = self.raw
        lines: list[tuple[int, int]] = []
        position = start
        header_end = body_start = self.size
        has_separator = False
        while position < self.size:
            end = self._line_end(position)
            if self._ends_part(position, end):
                header_end = body_start = position
                break
            if _HEADER_LINE.match(raw, position) is None:
                header_end = body_start = position
                if raw[position : position + 1] in (b"\r", b"\n"):
                    has_separator = True
                    body_start = position + (2 if raw.startswith(b"\r\n", position) else 1)
                break
            lines.append((position, end))
            position = end
        entity = Entity(
            index=len(self.entities),
            depth=depth,
            parent=None if parent is None else parent.index,
            start=start,
            header_end=header_end,
            body_start=body_start,
            has_separator=has_separator,
        )
        fields: list[HeaderField] = []
        current: tuple[int, int] | None = None  # start offset and index of the first line of a field

        def finish(upto: int) -> None:
            if current is not None:
                field_start, first = current
                text = [raw[a:b].decode("ascii", "surrogateescape") for a, b in lines[first:upto]]
                name, value = email_policy.compat32.header_source_parse(text)
                fields.append(HeaderField(name, field_start, lines[upto - 1][1], value))

        for number, (line_start, _) in enumerate(lines):
            if raw[line_start] in b" \t":
                if current is None:
                    entity.defects.append("first header line is a continuation line")
                continue
            finish(number)
            current = None
            if raw.startswith(b"From ", line_start):
                if number == 0:
                    continue
                if number == len(lines) - 1:
                    # The feedparser reads an envelope-like last line as the body's first.
                    entity.header_end = entity.body_start = line_start
                    if has_separator:
                        entity.defects.append("envelope line at the end of the header block")
                    break
                entity.defects.append("misplaced envelope line")
                continue
            if raw[line_start] == ord(":"):
                entity.defects.append("header line without a name")
                continue
            current = (line_start, number)
        else:
            finish(len(lines))
        entity.fields = tuple(fields)
        message = Message()
        if parent is not None and parent.content_type == "multipart/digest":
            message.set_default_type("message/rfc822")
        for item in fields:
            message.set_raw(item.name, item.value)
        entity.message = message
        entity.content_type = message.get_content_type()
        return entity

    def _delivery_status(self, entity: Entity) -> tuple[int, Entity | None]:
        # Blocks of header fields separated by blank lines, each read as an entity of its own.
        position = entity.body_start
        last: Entity | None = None
        while True:
            self._stack.append(_BLANK_LINE)
            self._blank_matchers += 1
            try:
                end, last = self._entity(position, entity.depth + 1, entity)
            finally:
                self._stack.pop()
                self._blank_matchers -= 1
            if end < self.size and not self._ends_part(end, self._line_end(end)):
                end = self._line_end(end)  # the blank line
            if end >= self.size or self._ends_part(end, self._line_end(end)):
                entity.body_end = end
                return end, last
            position = end

    def _multipart(self, entity: Entity) -> int:
        boundary = entity.message.get_boundary()
        if boundary is None:
            separator = self._guess_boundary(entity.body_start)
            if separator is None:
                end = self._next(entity.body_start, None).start
                if self.raw[entity.body_start : end].strip():
                    raise MimeError(f"{entity.content_type} without a boundary parameter")
                entity.body_end = end
                return end
            entity.defects.append("boundary parameter missing; taken from the first boundary line")
        else:
            separator = b"--" + boundary.encode("ascii", "surrogateescape")
        preamble = True
        hit = self._next(entity.body_start, separator)
        while hit.own and not hit.close:
            preamble = False
            position = hit.end
            # Repeated boundary lines delimit no empty parts (as in the feedparser).
            while position < self.size:
                end = self._line_end(position)
                if self._ends_part(position, end) or not self._is_boundary(position, end, separator):
                    break
                position = end
            self._stack.append(separator)
            try:
                end, last = self._entity(position, entity.depth + 1, entity)
            finally:
                self._stack.pop()
            if last is not None:
                # The line break before a boundary line belongs to the boundary.
                last.ends_before_boundary = True
                body_end = last.body_end
                if body_end > last.body_start and self.raw[body_end - 1] == ord("\n"):
                    body_end -= 1
                if body_end > last.body_start and self.raw[body_end - 1] == ord("\r"):
                    body_end -= 1
                last.body_end = body_end
            hit = self._next(end, separator)
        if preamble:
            entity.defects.append("no boundary line")
        elif not hit.own:
            entity.defects.append("closing boundary missing")
        end = self._next(hit.end, None).start if hit.own else hit.start
        entity.body_end = end
        return end

    def _guess_boundary(self, start: int) -> bytes | None:
        """For a multipart without a boundary parameter: its first ``--`` line, if that recurs."""
        raw = self.raw
        line = start if raw.startswith(b"--", start) else raw.find(b"\n--", start) + 1
        if line <= 0:
            return None
        end = self._line_end(line)
        if self._ends_part(line, end) or self._next(start, None).start < line:
            return None
        match = _BOUNDARY_GUESS.match(raw, line, end)
        if match is None or match.group(1).endswith(b"--"):
            return None
        separator = b"--" + match.group(1)
        return separator if self._next(end, separator).own else None
