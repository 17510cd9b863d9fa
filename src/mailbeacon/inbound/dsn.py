"""RFC 3464 delivery status notifications: the message/delivery-status part, one block per recipient."""

from __future__ import annotations

from email.message import Message
from typing import Final

from mailbeacon.inbound.classify import classify, find_reply_code, find_status
from mailbeacon.inbound.fields import field_blocks
from mailbeacon.inbound.message import normalize_address, part_text, walk
from mailbeacon.inbound.report import AffectedRecipient

DSN_TYPES: Final = frozenset({"message/delivery-status", "message/global-delivery-status"})
_ACTIONS: Final = frozenset({"failed", "delayed", "delivered", "relayed", "expanded"})
_ACTION_BY_CLASS: Final = {"5": "failed", "4": "delayed", "2": "delivered"}
_ACTION_ALIASES: Final = {"failure": "failed", "fail": "failed", "delay": "delayed", "deliver": "delivered"}
_RECIPIENT_FIELDS: Final = frozenset({"final-recipient", "original-recipient"})


def has_dsn(msg: Message) -> bool:
    return any(part.get_content_type() in DSN_TYPES for part in walk(msg))


def _strip_type(value: str) -> str:
    """`smtp; 550 5.1.1 ...` → `550 5.1.1 ...`; `dns; mx.example.com` → `mx.example.com`."""
    kind, sep, rest = value.partition(";")
    if sep and len(kind) <= 20 and " " not in kind.strip():
        return rest.strip()
    return value.strip()


def _recipient(fields: dict[str, str]) -> AffectedRecipient | None:
    final = normalize_address(fields.get("final-recipient")) or normalize_address(
        fields.get("x-actual-recipient")
    )
    original = normalize_address(fields.get("original-recipient"))
    if final is None and original is None:
        return None
    diagnostic = _strip_type(fields["diagnostic-code"]) if fields.get("diagnostic-code") else None
    status = find_status(fields.get("status"), classes="245")
    diagnostic_status = find_status(diagnostic)
    if (
        diagnostic_status
        and (status is None or status.endswith(".0.0"))
        and diagnostic_status[0] == (status or "x")[0]
    ):
        status = diagnostic_status
    status = status or diagnostic_status
    action_text = (fields.get("action") or "").strip().lower().split(" ")[0]
    action_text = _ACTION_ALIASES.get(action_text, action_text)
    action = action_text if action_text in _ACTIONS else _ACTION_BY_CLASS.get((status or " ")[0])
    remote_code = find_reply_code(diagnostic, anywhere=False) or find_reply_code(
        fields.get("status"), anywhere=False
    )
    if diagnostic is None and status is None and fields.get("status"):
        diagnostic = fields["status"]
    if final and original and "." not in final.rpartition("@")[2]:
        final = original  # a local rewriting such as userx@sims-ms-daemon says less than the original
    bounce_class, reason = classify(
        status=status, remote_code=remote_code, diagnostic=diagnostic, action=action
    )
    remote_mta = _strip_type(fields["remote-mta"]) if fields.get("remote-mta") else None
    return AffectedRecipient(
        address=final or original,
        original_address=original,
        action=action,
        status=status,
        remote_code=remote_code,
        diagnostic=diagnostic or None,
        remote_mta=remote_mta or None,
        bounce_class=bounce_class,
        reason=reason,
    )


def _group(blocks: list[list[tuple[str, str]]]) -> list[dict[str, str]]:
    """One field group per block; a block is split where a recipient field repeats, so DSNs that forget the
    blank line between recipients still come apart."""
    groups: list[dict[str, str]] = []
    for block in blocks:
        current: dict[str, str] = {}
        for name, value in block:
            if name in _RECIPIENT_FIELDS and name in current:
                groups.append(current)
                current = {}
            current.setdefault(name, value)
        groups.append(current)
    return groups


def parse_dsn(msg: Message, problems: list[str]) -> tuple[AffectedRecipient, ...]:
    """The recipients of every delivery-status part."""
    recipients: list[AffectedRecipient] = []
    for part in walk(msg):
        if part.get_content_type() not in DSN_TYPES:
            continue
        for group in _group(field_blocks(part_text(part, problems))):
            recipient = _recipient(group)
            if recipient is not None and recipient not in recipients:
                recipients.append(recipient)
    return tuple(recipients)
