"""The entry point: raw RFC 5322 bytes in, an InboundReport out, never an exception."""

from __future__ import annotations

import re
from email.message import Message
from typing import Final

from mailbeacon.inbound.arf import COMPLAINT_TYPES, complaint_recipients, is_feedback_report, parse_feedback
from mailbeacon.inbound.dsn import has_dsn, parse_dsn
from mailbeacon.inbound.legacy import parse_legacy
from mailbeacon.inbound.message import (
    addresses,
    defects,
    header_text,
    header_texts,
    load,
    message_ids,
)
from mailbeacon.inbound.original import Original, find_original
from mailbeacon.inbound.replies import auto_reply_reason, is_bulk
from mailbeacon.inbound.report import AffectedRecipient, InboundKind, InboundReport

MAX_PROBLEMS: Final = 20

_DAEMON_SENDER: Final = re.compile(
    r"^(?:mailer-?daemon|mail-?daemon|postmaster|mdaemon|ndr|bounces?|mail\.delivery\.system|imss"
    r"|e500_smtp_mail_service|symantec_antivirus[^@\s]*+|mailadm|smtp32)@",
    re.IGNORECASE,
)
_DAEMON_NAME: Final = re.compile(
    r"mail delivery (?:subsystem|system|service)|mailer[- ]daemon|postmaster|system administrator",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT: Final = re.compile(
    r"undeliver|undelivered|delivery (?:status|failure|failed|notification|problem|report)|returned mail"
    r"|mail delivery (?:failed|failure|problem)|failure (?:notice|delivery)|non-?delivery|not delivered"
    r"|could not be deliver|mail error|delayed mail|message delayed|warning: message|delivery failure"
    r"|processing error|nameserver error|failed mail|rejected mail|mail system error|returned to sender"
    r"|unzustellbar|nicht zustellbar|olevererbart|non recapitabile|non remis|utilisateur non recens",
    re.IGNORECASE,
)
_DMARC_FAILURE_SUBJECT: Final = re.compile(r"\bDMARC\b[^\n]{0,40}?\b(?:failure|forensic)\b", re.IGNORECASE)
_DELIVERED: Final = frozenset({"delivered", "relayed", "expanded"})


def parse_inbound(raw: bytes) -> InboundReport:
    """Read one inbound mail. Never raises: unreadable input gives kind UNKNOWN with the problem noted."""
    try:
        if not isinstance(raw, bytes | bytearray):
            raw = str(raw).encode("utf-8", errors="replace")
        return _parse(bytes(raw))
    except Exception as error:  # the last line of defence: a report must come out whatever comes in
        return InboundReport(
            kind=InboundKind.UNKNOWN,
            format="unreadable",
            problems=(f"unreadable: {type(error).__name__}: {error}",),
        )


def _is_bounce_like(msg: Message, from_address: str | None, subject: str | None) -> bool:
    from_raw = header_text(msg, "From") or ""
    return_path = (header_text(msg, "Return-Path") or "").strip()
    return bool(
        (from_address and _DAEMON_SENDER.search(from_address))
        or _DAEMON_NAME.search(from_raw)
        or (subject and _BOUNCE_SUBJECT.search(subject))
        or return_path == "<>"
        or msg.get("X-Failed-Recipients") is not None
    )


def _parse(raw: bytes) -> InboundReport:
    msg = load(raw)
    problems = defects(msg)
    if not msg.keys():
        problems.append("no header fields: not a mail message")
    subject = header_text(msg, "Subject")
    from_addresses = addresses(header_texts(msg, "From"))
    from_address = from_addresses[0] if from_addresses else None
    envelope = {
        "from_address": from_address,
        "to_addresses": addresses(
            header_texts(msg, "To")
            + header_texts(msg, "Delivered-To")
            + header_texts(msg, "X-Original-To")
            + header_texts(msg, "Envelope-To")
        ),
        "subject": subject,
        "message_id": next(iter(message_ids(header_text(msg, "Message-ID"))), None),
        "in_reply_to": tuple(
            dict.fromkeys(
                message_ids(header_text(msg, "In-Reply-To")) + message_ids(header_text(msg, "References"))
            )
        ),
    }

    def report(
        kind: InboundKind,
        format: str,
        recipients: tuple[AffectedRecipient, ...] = (),
        original: Original | None = None,
        **extra: object,
    ) -> InboundReport:
        return InboundReport(
            kind=kind,
            format=format,
            recipients=recipients,
            original_message_ids=original.message_ids if original else (),
            original_headers=original.headers if original else (),
            problems=tuple(dict.fromkeys(problems))[:MAX_PROBLEMS],
            **envelope,  # type: ignore[arg-type]
            **extra,  # type: ignore[arg-type]
        )

    if is_feedback_report(msg):
        feedback = parse_feedback(msg, problems)
        original = find_original(msg, problems, inline=False)
        if feedback is None:
            problems.append("feedback report without a message/feedback-report part")
            return report(InboundKind.UNKNOWN, "arf:unreadable", original=original)
        feedback_type = feedback.feedback_type or "unknown"
        original_to = addresses([value for name, value in original.headers if name.lower() == "to"])
        if feedback_type in COMPLAINT_TYPES:
            recipients = complaint_recipients(feedback, original_to)
            return report(InboundKind.COMPLAINT, "arf", recipients, original, feedback=feedback)
        return report(InboundKind.UNKNOWN, f"arf:{feedback_type}", (), original, feedback=feedback)

    if has_dsn(msg):
        recipients = parse_dsn(msg, problems)
        if recipients:
            original = find_original(msg, problems)
            return report(_bounce_kind(recipients), "dsn", recipients, original)
        problems.append("delivery-status part without a readable recipient")

    bounce_like = _is_bounce_like(msg, from_address, subject)
    auto_reason = auto_reply_reason(msg, subject)
    if bounce_like or auto_reason is None:
        legacy = parse_legacy(raw, msg, problems)
        if legacy is not None and (bounce_like or legacy.detector not in _HEURISTIC_DETECTORS):
            original = find_original(msg, problems)
            return report(
                _bounce_kind(legacy.recipients), f"flufl:{legacy.detector}", legacy.recipients, original
            )
        if bounce_like and subject and _BOUNCE_SUBJECT.search(subject):
            problems.append("looks like a bounce but names no failed recipient")
            return report(InboundKind.BOUNCE, "unparsed", (), find_original(msg, problems))

    if subject and _DMARC_FAILURE_SUBJECT.search(subject):
        # DMARC failure reports that are not ARF (plain text, or ARF mislabelled); a later stage reads them.
        return report(InboundKind.UNKNOWN, "dmarc-failure", (), find_original(msg, problems))
    if auto_reason is not None:
        return report(InboundKind.AUTO_REPLY, "auto_reply", auto_reply_reason=auto_reason)
    if msg.get_content_type() == "multipart/report":
        report_type = str(msg.get_param("report-type") or "unknown").lower()[:40]
        return report(InboundKind.UNKNOWN, f"report:{report_type}")
    if from_address is None:
        return report(InboundKind.UNKNOWN, "no-sender")
    if bounce_like:
        return report(InboundKind.UNKNOWN, "machine")
    if is_bulk(msg):
        return report(InboundKind.UNKNOWN, "bulk")
    return report(InboundKind.REPLY, "reply")


# Detectors that guess from loose phrases; trusted only when the headers also say "bounce".
_HEURISTIC_DETECTORS: Final = frozenset(
    {"simplematch", "simplewarning", "llnl", "caiwireless", "netscape", "text"}
)


def _bounce_kind(recipients: tuple[AffectedRecipient, ...]) -> InboundKind:
    actions = {recipient.action for recipient in recipients}
    if actions == {"delayed"}:
        return InboundKind.DELAY
    if actions <= _DELIVERED:
        return InboundKind.UNKNOWN
    return InboundKind.BOUNCE
