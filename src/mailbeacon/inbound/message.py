"""Reading a raw mail defensively: headers decoded and unfolded, addresses and ids normalised, parts walked
with bounds, part bodies decoded whatever their charset."""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import quopri
import re
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses
from typing import Final

MAX_PARTS: Final = 400
MAX_PART_TEXT: Final = 512 * 1024
MAX_HEADER_TEXT: Final = 8 * 1024

_FOLD: Final = re.compile(r"[ \t]*+\r?\n[ \t]*+")
_MSG_ID: Final = re.compile(r"<([^<>]{1,998}+)>")
_SPACE: Final = re.compile(r"\s++")


def load(raw: bytes) -> Message:
    # compat32 never raises on header access, whereas the modern policy can on broken headers.
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def unfold(value: str, limit: int = MAX_HEADER_TEXT) -> str:
    return _FOLD.sub(" ", value[:limit]).strip()


def header_text(msg: Message, name: str) -> str | None:
    value: object = msg.get(name)
    if value is None:
        return None
    return decode_header_value(value)


def header_texts(msg: Message, name: str) -> list[str]:
    return [decode_header_value(value) for value in (msg.get_all(name) or [])]


def decode_header_value(value: object) -> str:
    try:
        decoded = str(make_header(decode_header(value)))  # type: ignore[arg-type]
    except Exception:
        decoded = str(value)
    return unfold(decoded)


def normalize_address(text: str | None) -> str | None:
    """`rfc822; <User@Example.COM>` → `User@example.com`; None when no address is there."""
    if not text:
        return None
    value = text.strip()
    if ";" in value:
        address_type, _, rest = value.partition(";")
        if address_type.strip().lower() in {"rfc822", "utf-8", "x400", "unknown"} or "@" not in address_type:
            value = rest.strip()
    value = value.strip().strip("<>").strip().strip("'\"").strip()
    if value.lower().startswith(("smtp:", "mailto:")):
        value = value.split(":", 1)[1]
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in value):
        return None
    return f"{local}@{domain.lower().rstrip('.')}"


def addresses(values: list[str]) -> tuple[str, ...]:
    found: list[str] = []
    for _name, address in getaddresses(values):
        normalized = normalize_address(address)
        if normalized and normalized not in found:
            found.append(normalized)
    return tuple(found)


def message_ids(text: str | None) -> tuple[str, ...]:
    """The ids in a Message-ID, In-Reply-To or References value, without <> and without stray spaces."""
    if not text:
        return ()
    found = [_SPACE.sub("", match) for match in _MSG_ID.findall(text[:MAX_HEADER_TEXT])]
    if not found and "<" not in text and "@" in text and len(text.split()) == 1:
        found = [text.strip()]
    return tuple(dict.fromkeys(found))


def walk(msg: Message) -> Iterator[Message]:
    for count, part in enumerate(msg.walk()):
        if count >= MAX_PARTS:
            return
        yield part


def part_text(part: Message, problems: list[str] | None = None) -> str:
    """The decoded body of a leaf part (or the serialized sub-messages of a message/* part)."""
    try:
        payload = part.get_payload()
        if isinstance(payload, list):
            text = "\n".join(_serialize(sub) for sub in payload if isinstance(sub, Message))[:MAX_PART_TEXT]
            return _decode_transfer(text, str(part.get("Content-Transfer-Encoding", "")).strip().lower())
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            return str(payload)[:MAX_PART_TEXT]
        data = data[:MAX_PART_TEXT]
        charset = part.get_content_charset() or "utf-8"
        try:
            return data.decode(charset, errors="replace")
        except LookupError:
            if problems is not None:
                problems.append(f"unknown charset {charset[:40]!r} in a {part.get_content_type()} part")
            return data.decode("utf-8", errors="replace")
    except Exception as error:
        if problems is not None:
            problems.append(f"undecodable {part.get_content_type()} part: {type(error).__name__}")
        return ""


def _decode_transfer(text: str, encoding: str) -> str:
    """The email package parses every message/* part as a message, even a base64-encoded
    message/feedback-report; this undoes the transfer encoding of such a part."""
    if encoding == "base64":
        data = text.strip().encode("ascii", errors="ignore")
        try:
            return base64.b64decode(data + b"=" * (-len(data.replace(b"\n", b"")) % 4)).decode(
                "utf-8", "replace"
            )
        except (binascii.Error, ValueError):
            return text
    if encoding == "quoted-printable":
        return quopri.decodestring(text.encode("utf-8", errors="replace")).decode("utf-8", errors="replace")
    return text


def _serialize(sub: Message) -> str:
    try:
        return sub.as_string()
    except Exception:
        return "\n".join(f"{name}: {value}" for name, value in sub.items())


def defects(msg: Message) -> list[str]:
    found: list[str] = []
    for part in walk(msg):
        for defect in getattr(part, "defects", []):
            text = f"MIME defect in a {part.get_content_type()} part: {type(defect).__name__}"
            if text not in found:
                found.append(text)
    return found
