"""The MIME layer of rewriting: find the bodies to track in a raw message, splice new ones in.

``MimeSource.parse(raw)`` walks the message's parts by byte offsets (``mime_walk``) and decodes
the first inline text/html and text/plain bodies. ``render(html, text)`` writes new bodies back
in each part's own transfer encoding and charset and leaves every other byte as it was: the
headers, the boundaries, the preamble and epilogue, the attachments, the other parts. A body
whose text did not change keeps its original bytes, so ``render(src.html.text, src.text.text)``
is ``raw``. Nothing inside a forwarded message (message/*), a signed or encrypted multipart, an
attachment or an undecodable body is ever touched.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

from mailbeacon.rewrite.mime_encode import (
    BodyDecodeError,
    codec_for,
    decode_body,
    decode_header_value,
    encode_body,
    fold_header,
    with_charset,
)
from mailbeacon.rewrite.mime_walk import Entity, HeaderField, MimeError, Walker

__all__ = ["BodyPart", "MimeError", "MimePart", "MimeSource", "SkippedPart"]

# Header fields render() must keep: the body edits may rewrite them.
_PROTECTED_HEADERS = ("content-", "mime-version")


@dataclass(frozen=True)
class BodyPart:
    kind: Literal["html", "text"]
    charset: str  # the codec the body was decoded with (utf-8 for undeclared 8-bit text)
    transfer_encoding: str  # lower-case: 7bit 8bit binary quoted-printable base64
    text: str  # decoded
    body_start: int  # byte offsets of the encoded body in the raw message
    body_end: int


@dataclass(frozen=True)
class SkippedPart:
    content_type: str
    reason: str


@dataclass(frozen=True)
class MimePart:
    """One entity of the part tree, in document order (the message itself first)."""

    depth: int
    content_type: str
    is_container: bool  # multipart/* or message/*
    start: int  # offset of its header block
    body_start: int
    body_end: int
    defects: tuple[str, ...]


class MimeSource:
    raw: bytes
    html: BodyPart | None
    text: BodyPart | None
    skipped: tuple[SkippedPart, ...]
    line_ending: bytes
    parts: tuple[MimePart, ...]

    def __init__(self, raw: bytes, entities: Sequence[Entity]) -> None:
        self.raw = raw
        self._entities = tuple(entities)
        self._top = entities[0]
        self.line_ending = _line_ending(raw, self._top.header_end)
        self.parts = tuple(
            MimePart(
                e.depth, e.content_type, e.is_container, e.start, e.body_start, e.body_end, tuple(e.defects)
            )
            for e in entities
        )
        chosen: dict[str, tuple[BodyPart, Entity]] = {}
        skipped: list[SkippedPart] = []
        for entity in entities:
            reason = self._choose(entity, chosen)
            if reason is not None:
                skipped.append(SkippedPart(entity.content_type, reason))
        self._chosen = chosen
        self.html = chosen["html"][0] if "html" in chosen else None
        self.text = chosen["text"][0] if "text" in chosen else None
        self.skipped = tuple(skipped)

    @classmethod
    def parse(cls, raw: bytes, *, max_depth: int = 50, max_parts: int = 1000) -> MimeSource:
        """Raises MimeError only when the message as a whole cannot be handled safely."""
        return cls(raw, Walker(raw, max_depth=max_depth, max_parts=max_parts).walk())

    def _choose(self, entity: Entity, chosen: dict[str, tuple[BodyPart, Entity]]) -> str | None:
        """Take the entity as the html or text body, or say why not (None: not a candidate)."""
        if entity.maintype == "multipart" and "no boundary line" in entity.defects:
            return "multipart without any boundary line"
        kind: Literal["html", "text"]
        if entity.content_type == "text/html":
            kind = "html"
        elif entity.content_type == "text/plain":
            kind = "text"
        else:
            return None
        message = entity.message
        if entity.enclosed_in is not None:
            return f"inside {entity.enclosed_in}"
        if entity.signed_in is not None:
            return f"inside {entity.signed_in} (rewriting would break the signature)"
        if message.get_content_disposition() == "attachment":
            return "attachment"
        if message.get_filename() is not None:
            return "attachment (has a file name)"
        if kind in chosen:
            return f"another {kind} part (only the first is tracked)"
        if "envelope line at the end of the header block" in entity.defects:
            return "header block ends in an envelope line"
        transfer_encoding = str(message.get("content-transfer-encoding", "")).strip().lower() or "7bit"
        try:
            decoded = decode_body(
                self.raw[entity.body_start : entity.body_end],
                transfer_encoding,
                message.get_content_charset(),
            )
        except BodyDecodeError as error:
            return str(error)
        part = BodyPart(
            kind, decoded.charset, transfer_encoding, decoded.text, entity.body_start, entity.body_end
        )
        chosen[kind] = (part, entity)
        return None

    # -- headers -------------------------------------------------------------------------

    def _values(self, name: str) -> list[str]:
        lowered = name.lower()
        raw = self.raw
        return [
            decode_header_value(raw[raw.index(b":", item.start) + 1 : item.end].lstrip(b" \t"))
            for item in self._top.fields
            if item.name.lower() == lowered
        ]

    def header(self, name: str) -> str | None:
        """The first top-level header field of that name, unfolded and decoded (RFC 2047)."""
        values = self._values(name)
        return values[0] if values else None

    def headers(self, name: str) -> list[str]:
        return self._values(name)

    # -- render --------------------------------------------------------------------------

    def render(
        self,
        html: str | None,
        text: str | None,
        *,
        remove_headers: Collection[str] = (),
        add_headers: Sequence[tuple[str, str]] = (),
    ) -> bytes:
        """The message with new html/text bodies (None: as it is) and top-level header changes.

        ``remove_headers`` are field names (case-insensitive; ``X-Foo-*`` matches a prefix);
        Content-* and MIME-Version cannot be removed. ``add_headers`` go to the top of the
        header block in the given order.
        """
        raw = self.raw
        line_ending = self.line_ending
        edits: list[tuple[int, int, bytes]] = []
        for kind, new in (("html", html), ("text", text)):
            if new is None or kind not in self._chosen:
                continue
            part, entity = self._chosen[kind]
            if new == part.text:
                continue
            encoded = encode_body(
                new,
                transfer_encoding=part.transfer_encoding,
                charset=part.charset,
                original=raw[part.body_start : part.body_end],
                line_ending=line_ending,
            )
            body = encoded.body
            if entity.ends_before_boundary and part.body_end == len(raw) and body.endswith((b"\n", b"\r")):
                # Nothing follows (no closing boundary): a reader would take the last line
                # break for the boundary's, so give it one more.
                body += line_ending
            edits.append((part.body_start, part.body_end, body))
            header_edits: list[tuple[HeaderField | None, bytes]] = []
            if encoded.transfer_encoding != part.transfer_encoding:
                header_edits.append(self._cte_edit(entity, encoded.transfer_encoding))
            declared = entity.message.get_content_charset()
            undeclared = declared is None or codec_for(declared) != encoded.charset
            if encoded.charset != part.charset or (undeclared and not new.isascii()):
                # The text no longer fits the charset, or it was only guessed and now matters.
                header_edits.append(self._charset_edit(entity, encoded.charset))
            edits.extend(self._header_edits(entity, header_edits))
        edits.extend(self._top_edits(remove_headers, add_headers))
        edits.sort(key=lambda edit: (edit[0], edit[1]))
        pieces: list[bytes] = []
        position = 0
        for start, end, replacement in edits:
            assert start >= position, "overlapping edits"
            pieces.append(raw[position:start])
            pieces.append(replacement)
            position = end
        pieces.append(raw[position:])
        return b"".join(pieces)

    def _cte_edit(self, entity: Entity, transfer_encoding: str) -> tuple[HeaderField | None, bytes]:
        field = entity.field_named("content-transfer-encoding")
        value = transfer_encoding.encode("ascii") + self.line_ending
        if field is None:
            return None, b"Content-Transfer-Encoding: " + value
        colon = self.raw.index(b":", field.start)
        return field, self.raw[field.start : colon + 1] + b" " + value

    def _charset_edit(self, entity: Entity, charset: str) -> tuple[HeaderField | None, bytes]:
        field = entity.field_named("content-type")
        if field is None:
            return None, b"Content-Type: text/plain; charset=" + charset.encode("ascii") + self.line_ending
        return field, with_charset(self.raw[field.start : field.end], charset, self.line_ending)

    def _header_edits(
        self, entity: Entity, changes: list[tuple[HeaderField | None, bytes]]
    ) -> list[tuple[int, int, bytes]]:
        edits = [(field.start, field.end, data) for field, data in changes if field is not None]
        added = b"".join(data for field, data in changes if field is None)
        if added:
            # A part without a blank line after its header block gets one.
            blank = b"" if entity.has_separator else self.line_ending
            edits.append((entity.header_end, entity.header_end, added + blank))
        return edits

    def _top_edits(
        self, remove_headers: Collection[str], add_headers: Sequence[tuple[str, str]]
    ) -> list[tuple[int, int, bytes]]:
        edits: list[tuple[int, int, bytes]] = []
        patterns = [name.lower() for name in remove_headers]
        for field in self._top.fields:
            name = field.name.lower()
            if any(name.startswith(p[:-1]) if p.endswith("*") else name == p for p in patterns):
                if name.startswith(_PROTECTED_HEADERS):
                    raise ValueError(f"refusing to remove the {field.name} header field")
                edits.append((field.start, field.end, b""))
        if add_headers:
            added = b"".join(fold_header(name, value, self.line_ending) for name, value in add_headers)
            edits.append((self._top_insert(), self._top_insert(), added))
        return edits

    def _top_insert(self) -> int:
        """Where added header fields go: first, but after an envelope line and after stray
        continuation lines at the top (which would otherwise attach to them)."""
        raw = self.raw
        position = 0
        limit = self._top.header_end
        if raw.startswith(b"From "):
            position = _next_line(raw, 0)
        while position < limit and raw[position] in b" \t":
            position = _next_line(raw, position)
        return position


def _next_line(raw: bytes, start: int) -> int:
    found = raw.find(b"\n", start)
    return len(raw) if found < 0 else found + 1


def _line_ending(raw: bytes, header_end: int) -> bytes:
    """The line ending most of the top-level header block uses (of the whole message if it
    has none)."""
    sample = raw[:header_end] if b"\n" in raw[:header_end] else raw
    crlf = sample.count(b"\r\n")
    return b"\r\n" if crlf and crlf * 2 >= sample.count(b"\n") else b"\n"
