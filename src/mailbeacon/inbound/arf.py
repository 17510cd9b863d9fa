"""RFC 5965 feedback reports (ARF): spam complaints from feedback loops, and the auth-failure reports of
RFC 6591 (DMARC failure reports), which are not complaints."""

from __future__ import annotations

from email.message import Message
from typing import Final

from mailbeacon.inbound.fields import field_blocks
from mailbeacon.inbound.message import normalize_address, part_text, walk
from mailbeacon.inbound.report import AffectedRecipient, FeedbackReport

FEEDBACK_PART: Final = "message/feedback-report"
# RFC 5965 types plus opt-out (draft ARF, still sent by some feedback loops): the recipient does not want
# the mail, so it is handled like a complaint. "not-spam" and "auth-failure" are not complaints.
COMPLAINT_TYPES: Final = frozenset({"abuse", "fraud", "virus", "other", "opt-out", "complaint"})
_REPEATED: Final = frozenset(
    {"original-rcpt-to", "reported-domain", "reported-uri", "authentication-results", "removal-recipient"}
)


def feedback_part(msg: Message) -> Message | None:
    for part in walk(msg):
        if part.get_content_type() == FEEDBACK_PART:
            return part
    return None


def is_feedback_report(msg: Message) -> bool:
    report_type = (msg.get_param("report-type") or "") if msg.get_content_type() == "multipart/report" else ""
    return str(report_type).lower() == "feedback-report" or feedback_part(msg) is not None


def _address(value: str | None) -> str | None:
    return normalize_address(value) if value else None


def parse_feedback(msg: Message, problems: list[str]) -> FeedbackReport | None:
    part = feedback_part(msg)
    if part is None:
        return None
    fields: list[tuple[str, str]] = []
    for block in field_blocks(part_text(part, problems)):
        fields.extend(block)
    single: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    for name, value in fields:
        if name in _REPEATED:
            repeated.setdefault(name, []).append(value)
        else:
            single.setdefault(name, value)
    rcpt_to = tuple(a for a in (_address(v) for v in repeated.get("original-rcpt-to", [])) if a)
    return FeedbackReport(
        feedback_type=(single.get("feedback-type") or "").strip().lower() or None,
        user_agent=single.get("user-agent") or None,
        version=single.get("version") or None,
        original_mail_from=_address(single.get("original-mail-from")),
        original_rcpt_to=rcpt_to,
        original_envelope_id=single.get("original-envelope-id") or None,
        arrival_date=single.get("arrival-date") or single.get("received-date") or None,
        reporting_mta=single.get("reporting-mta") or None,
        source_ip=single.get("source-ip") or None,
        incidents=single.get("incidents") or None,
        reported_domain=tuple(repeated.get("reported-domain", [])),
        reported_uri=tuple(repeated.get("reported-uri", [])),
        authentication_results=tuple(repeated.get("authentication-results", [])),
        auth_failure=single.get("auth-failure") or None,
        delivery_result=single.get("delivery-result") or None,
        removal_recipient=tuple(a for a in (_address(v) for v in repeated.get("removal-recipient", [])) if a),
        fields=tuple(fields),
    )


def complaint_recipients(
    feedback: FeedbackReport, original_to: tuple[str, ...]
) -> tuple[AffectedRecipient, ...]:
    """Who complained: the report's Original-Rcpt-To, else the single To of the attached original."""
    found = feedback.original_rcpt_to or feedback.removal_recipient
    if not found and len(original_to) == 1:
        found = original_to
    return tuple(AffectedRecipient(address=address) for address in found)
