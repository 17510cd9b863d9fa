"""Message-IDs and conversation threads (RFC 5322 References / In-Reply-To)."""

from __future__ import annotations

import re
import secrets

_MSG_ID = re.compile(r"<[^<>\s]+>")


def message_ids_in(value: str | None) -> list[str]:
    return _MSG_ID.findall(value or "")


def new_message_id(sender_email: str) -> str:
    domain = sender_email.rpartition("@")[2] or "mailbeacon.invalid"
    return f"<mb.{secrets.token_hex(12)}@{domain}>"


def thread_root(message_id: str, in_reply_to: str | None, references: str | None) -> str:
    """The first message of the conversation: the oldest reference, else the parent, else itself."""
    refs = message_ids_in(references)
    if refs:
        return refs[0]
    parents = message_ids_in(in_reply_to)
    return parents[0] if parents else message_id
