"""The original message quoted inside a bounce or complaint: its headers and Message-ID."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from typing import Final

from mailbeacon.inbound.message import decode_header_value, message_ids, part_text, walk

_ATTACHED_MESSAGE: Final = frozenset({"message/rfc822", "message/global"})
_ATTACHED_HEADERS: Final = frozenset(
    {"text/rfc822-headers", "message/rfc822-headers", "message/global-headers"}
)
_KEPT: Final = frozenset(
    {
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "return-path",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "feedback-id",
        "x-mailer",
    }
)
_INLINE_MESSAGE_ID: Final = re.compile(
    r"^[ \t>]*+message-id[ \t]*+:[ \t]*+(<[^<>\r\n]{1,998}+>)", re.IGNORECASE | re.MULTILINE
)
_MAX_HEADERS: Final = 120


@dataclass(frozen=True)
class Original:
    headers: tuple[tuple[str, str], ...]
    message_ids: tuple[str, ...]


def _kept(name: str) -> bool:
    lowered = name.lower()
    return lowered in _KEPT or lowered.startswith(("x-mailbeacon-", "list-"))


def _from_headers(msg: Message) -> Original:
    headers = tuple(
        (name, decode_header_value(value)) for name, value in list(msg.items())[:_MAX_HEADERS] if _kept(name)
    )
    ids: list[str] = []
    for name, value in headers:
        if name.lower() == "message-id":
            ids.extend(message_ids(value))
    return Original(headers, tuple(dict.fromkeys(ids)))


def find_original(msg: Message, problems: list[str], *, inline: bool = True) -> Original:
    """The first attached original (message/rfc822 or text/rfc822-headers); failing that, when `inline`,
    the Message-ID lines of an original quoted in the text (legacy bounces)."""
    for part in walk(msg):
        if part is msg:
            continue
        content_type = part.get_content_type()
        if content_type in _ATTACHED_MESSAGE:
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                found = _from_headers(payload[0])
                if found.headers:
                    return found
            text = part_text(part, problems)
            found = _from_headers(HeaderParser().parsestr(text.lstrip()))
            if found.headers:
                return found
        elif content_type in _ATTACHED_HEADERS:
            found = _from_headers(HeaderParser().parsestr(part_text(part, problems).lstrip()))
            if found.headers:
                return found
    if not inline:
        return Original((), ())
    ids: list[str] = []
    for part in walk(msg):
        if part.get_content_maintype() == "text":
            for match in _INLINE_MESSAGE_ID.finditer(part_text(part, problems)):
                ids.extend(message_ids(match.group(1)))
    own = set(message_ids(msg.get("Message-ID")))
    return Original((), tuple(i for i in dict.fromkeys(ids) if i not in own))
