"""Reading inbound feedback mail: bounces (RFC 3464 DSNs and the older non-DSN formats), delay notices,
spam complaints (RFC 5965 ARF), replies and auto-replies.

Pure parsing, no database: ``parse_inbound(raw)`` turns the raw bytes of one message into an
``InboundReport``, and ``explain(report)`` gives a JSON-able dict of it. Matching a report to the copy we
sent (by ``original_message_ids``, ``original_headers``, ``to_addresses`` or ``in_reply_to``) happens
elsewhere.
"""

from __future__ import annotations

from mailbeacon.inbound.explain import explain
from mailbeacon.inbound.parse import parse_inbound
from mailbeacon.inbound.report import (
    AffectedRecipient,
    BounceClass,
    BounceReason,
    FeedbackReport,
    InboundKind,
    InboundReport,
)

__all__ = [
    "AffectedRecipient",
    "BounceClass",
    "BounceReason",
    "FeedbackReport",
    "InboundKind",
    "InboundReport",
    "explain",
    "parse_inbound",
]
