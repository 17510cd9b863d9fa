"""What a sender hands mailbeacon, from any intake path, before anything is stored."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.headerregistry import Address as HeaderAddress
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


def validate_headers(headers: dict[str, str]) -> None:
    for name, value in headers.items():
        where = f"headers.{name}"
        if not _FIELD_NAME.fullmatch(name):
            raise DraftError(where, "not a valid header name")
        if name.lower() in RESERVED_HEADERS:
            raise DraftError(where, "set by mailbeacon; use the dedicated field instead")
        if "\r" in value or "\n" in value:
            raise DraftError(where, "header values may not contain line breaks")


def check_address(field_name: str, address: str) -> None:
    problem = "not a valid email address"
    try:
        parsed = HeaderAddress(addr_spec=address)
    except (ValueError, IndexError, HeaderParseError):
        raise DraftError(field_name, problem) from None
    if not parsed.username or "." not in parsed.domain or parsed.addr_spec != address:
        raise DraftError(field_name, problem)


def validate_draft(draft: MessageDraft) -> None:
    if not draft.to:
        raise DraftError("to", "at least one recipient is needed")
    check_address("from.email", draft.sender.email)
    for i, rcpt in enumerate(draft.to):
        check_address(f"to[{i}].email", rcpt.email)
    if draft.html is None and draft.text is None:
        raise DraftError("html", "a message needs an html or a text body (or both)")
    if "\r" in draft.subject or "\n" in draft.subject:
        raise DraftError("subject", "may not contain line breaks")
    validate_headers(draft.headers)
