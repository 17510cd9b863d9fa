"""The typed result of reading one inbound feedback mail (bounce, delay, complaint, reply ...)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class InboundKind(enum.StrEnum):
    BOUNCE = "bounce"
    DELAY = "delay"
    COMPLAINT = "complaint"
    REPLY = "reply"
    AUTO_REPLY = "auto_reply"
    UNKNOWN = "unknown"


class BounceClass(enum.StrEnum):
    HARD = "hard"
    SOFT = "soft"


class BounceReason(enum.StrEnum):
    USER_UNKNOWN = "user_unknown"
    DOMAIN_UNKNOWN = "domain_unknown"
    MAILBOX_FULL = "mailbox_full"
    BLOCKED = "blocked"  # blocked as spam, blocklisted, or for the sender's reputation
    POLICY = "policy"
    EXPIRED = "expired"
    OTHER = "other"


@dataclass(frozen=True)
class AffectedRecipient:
    """One recipient a bounce, delay notice or complaint is about."""

    address: str | None
    original_address: str | None = None
    action: str | None = None
    status: str | None = None
    remote_code: int | None = None
    diagnostic: str | None = None
    remote_mta: str | None = None
    bounce_class: BounceClass | None = None
    reason: BounceReason | None = None


@dataclass(frozen=True)
class FeedbackReport:
    """The fields of an RFC 5965 feedback report (ARF), as given; addresses without angle brackets."""

    feedback_type: str | None
    user_agent: str | None = None
    version: str | None = None
    original_mail_from: str | None = None
    original_rcpt_to: tuple[str, ...] = ()
    original_envelope_id: str | None = None
    arrival_date: str | None = None
    reporting_mta: str | None = None
    source_ip: str | None = None
    incidents: str | None = None
    reported_domain: tuple[str, ...] = ()
    reported_uri: tuple[str, ...] = ()
    authentication_results: tuple[str, ...] = ()
    auth_failure: str | None = None
    delivery_result: str | None = None
    removal_recipient: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()
    """Every field of the report in order, names lower-cased, values unfolded."""


@dataclass(frozen=True)
class InboundReport:
    kind: InboundKind
    format: str
    recipients: tuple[AffectedRecipient, ...] = ()
    feedback: FeedbackReport | None = None
    from_address: str | None = None
    to_addresses: tuple[str, ...] = ()
    subject: str | None = None
    message_id: str | None = None
    in_reply_to: tuple[str, ...] = ()
    original_message_ids: tuple[str, ...] = ()
    original_headers: tuple[tuple[str, str], ...] = ()
    auto_reply_reason: str | None = None
    problems: tuple[str, ...] = ()
