"""A JSON-able view of an InboundReport, for logs, the API and humans."""

from __future__ import annotations

from dataclasses import asdict

from mailbeacon.inbound.report import AffectedRecipient, InboundReport


def _recipient(recipient: AffectedRecipient) -> dict[str, object]:
    return {
        "address": recipient.address,
        "original_address": recipient.original_address,
        "action": recipient.action,
        "status": recipient.status,
        "remote_code": recipient.remote_code,
        "diagnostic": recipient.diagnostic,
        "remote_mta": recipient.remote_mta,
        "class": recipient.bounce_class.value if recipient.bounce_class else None,
        "reason": recipient.reason.value if recipient.reason else None,
    }


def explain(report: InboundReport) -> dict[str, object]:
    """kind, format, the recipients (address, action, status, remote code, diagnostic, hard/soft, reason),
    the feedback report, the ids and the problems, as plain JSON types."""
    feedback: dict[str, object] | None = None
    if report.feedback is not None:
        feedback = {
            name: [list(item) if isinstance(item, tuple) else item for item in value]
            if isinstance(value, tuple)
            else value
            for name, value in asdict(report.feedback).items()
        }
    return {
        "kind": report.kind.value,
        "format": report.format,
        "recipients": [_recipient(recipient) for recipient in report.recipients],
        "feedback": feedback,
        "from_address": report.from_address,
        "to_addresses": list(report.to_addresses),
        "subject": report.subject,
        "message_id": report.message_id,
        "in_reply_to": list(report.in_reply_to),
        "original_message_ids": list(report.original_message_ids),
        "original_headers": [list(pair) for pair in report.original_headers],
        "auto_reply_reason": report.auto_reply_reason,
        "problems": list(report.problems),
    }
