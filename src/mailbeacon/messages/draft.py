"""What a sender hands mailbeacon, from any intake path, before anything is stored."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.headerregistry import Address as HeaderAddress
from email.headerregistry import AddressHeader
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

# Set by mailbeacon itself; a sender may not override them through custom headers.
RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "list-unsubscribe",
        "list-unsubscribe-post",
    }
)
_FIELD_NAME = re.compile(r"[!-9;-~]{1,76}")


class DraftError(ValueError):
    """Bad input, named by the field it is about."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Address:
    email: str
    name: str | None = None


@dataclass(frozen=True)
class MessageDraft:
    sender: Address
    to: tuple[Address, ...]
    subject: str
    html: str | None = None
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    campaign: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    track_opens: bool | None = None  # None: the account's default
    track_clicks: bool | None = None
    track_unsubscribes: bool | None = None

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None


MAX_HEADER_VALUE = 998  # RFC 5322's line limit; also the size of the columns message ids are kept in
_THREAD_HEADERS = ("message-id", "in-reply-to", "references")


def validate_headers(headers: dict[str, str]) -> None:
    """Refuse now whatever could not later be written into the recipients' copies."""
    seen: set[str] = set()
    for name, value in headers.items():
        where = f"headers.{name}"
        key = name.lower()
        if not _FIELD_NAME.fullmatch(name):
            raise DraftError(where, "not a valid header name")
        if key in RESERVED_HEADERS:
            raise DraftError(where, "set by mailbeacon; use the dedicated field instead")
        if key in seen:
            raise DraftError(where, "given twice (header names are case-insensitive)")
        seen.add(key)
        if "\r" in value or "\n" in value:
            raise DraftError(where, "header values may not contain line breaks")
        if key in _THREAD_HEADERS and (
            len(value) > MAX_HEADER_VALUE
            if key != "references"
            else any(len(i) > MAX_HEADER_VALUE for i in value.split())
        ):
            raise DraftError(where, f"message ids longer than {MAX_HEADER_VALUE} characters are not accepted")
        _check_writable(where, name, value)


def _check_writable(where: str, name: str, value: str) -> None:
    probe = EmailMessage(policy=SMTP)
    try:
        probe[name] = value
        header = probe[name]
        probe.as_bytes()
    except Exception as exc:  # the email package raises many kinds on malformed input
        raise DraftError(where, f"cannot be written into a message ({type(exc).__name__})") from None
    defects = getattr(header, "defects", ())  # typeshed omits BaseHeader.defects
    if isinstance(header, AddressHeader) and defects:
        raise DraftError(where, f"not a valid address list ({defects[0]})")


def check_address(field_name: str, address: str) -> None:
    problem = "not a valid email address"
    try:
        parsed = HeaderAddress(addr_spec=address)
    except (ValueError, IndexError, HeaderParseError):
        raise DraftError(field_name, problem) from None
    if not parsed.username or "." not in parsed.domain or parsed.addr_spec != address:
        raise DraftError(field_name, problem)


def check_name(field_name: str, name: str | None) -> None:
    if name is not None and ("\r" in name or "\n" in name):
        raise DraftError(field_name, "may not contain line breaks")


def validate_draft(draft: MessageDraft) -> None:
    if not draft.to:
        raise DraftError("to", "at least one recipient is needed")
    check_address("from.email", draft.sender.email)
    check_name("from.name", draft.sender.name)
    seen: set[str] = set()
    for i, rcpt in enumerate(draft.to):
        check_address(f"to[{i}].email", rcpt.email)
        check_name(f"to[{i}].name", rcpt.name)
        if rcpt.email.lower() in seen:
            raise DraftError(f"to[{i}].email", "this address is already a recipient of the message")
        seen.add(rcpt.email.lower())
    try:
        json.dumps(draft.metadata, allow_nan=False)
    except ValueError:
        raise DraftError("metadata", "numbers must be finite (no NaN or Infinity)") from None
    if draft.html is None and draft.text is None:
        raise DraftError("html", "a message needs an html or a text body (or both)")
    if "\r" in draft.subject or "\n" in draft.subject:
        raise DraftError("subject", "may not contain line breaks")
    validate_headers(draft.headers)
