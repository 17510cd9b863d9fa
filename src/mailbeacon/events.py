"""The one event model every part of mailbeacon writes and reads."""

from __future__ import annotations

import enum


class EventType(enum.StrEnum):
    # delivery of a recipient copy
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    DROPPED = "dropped"
    FAILED = "failed"
    # engagement
    OPENED = "opened"
    CLICKED = "clicked"
    UNSUBSCRIBED = "unsubscribed"
    COMPLAINED = "complained"
    REPLIED = "replied"
    AUTO_REPLIED = "auto_replied"


class RecipientStatus(enum.StrEnum):
    CREATED = "created"  # tracked copy made; the sender delivers it (mailbeacon prepare / MIME download)
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    DROPPED = "dropped"
    FAILED = "failed"


# An open or click proves the copy arrived, so these statuses move to DELIVERED when one comes in.
SUPERSEDED_BY_ENGAGEMENT = (
    RecipientStatus.CREATED,
    RecipientStatus.QUEUED,
    RecipientStatus.SENT,
    RecipientStatus.DEFERRED,
)


class MachineClass(enum.StrEnum):
    HUMAN = "human"
    APPLE_PRIVACY = "apple_privacy"
    GMAIL_PROXY = "gmail_proxy"
    OTHER_PROXY = "other_proxy"
    SCANNER = "scanner"
    PREFETCH = "prefetch"
    UNKNOWN = "unknown"


class SuppressionReason(enum.StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    MANUAL = "manual"
