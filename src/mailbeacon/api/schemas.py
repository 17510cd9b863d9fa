"""Request and response bodies of the API."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, field_validator

_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}")


MAX_ID = 2**63 - 1  # the largest id a BIGINT column holds
ResourceId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="An id, as returned by the API.")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddressIn(Strict):
    email: str = Field(max_length=320, examples=["ada@example.com"])
    name: str | None = Field(default=None, max_length=200)


class MessageIn(Strict):
    from_: AddressIn = Field(alias="from")
    to: list[AddressIn] = Field(min_length=1, max_length=10_000)
    subject: str = Field(max_length=2000)
    html: str | None = Field(default=None, max_length=10_000_000)
    text: str | None = Field(default=None, max_length=10_000_000)
    headers: dict[str, str] = Field(default_factory=dict, max_length=100)
    campaign: str | None = Field(default=None, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=50)
    metadata: dict[str, Any] = Field(default_factory=dict, max_length=50)
    track_opens: bool | None = Field(default=None, description="Default: the account's setting.")
    track_clicks: bool | None = Field(default=None, description="Default: the account's setting.")
    track_unsubscribes: bool | None = Field(default=None, description="Default: the account's setting.")
    send: bool = Field(
        default=False,
        description="Queue the copies for delivery by mailbeacon (as SMTP submission does). Without it, "
        "the copies are only prepared: fetch each one's MIME and send it yourself.",
    )


class RecipientOut(BaseModel):
    id: int
    email: str
    name: str | None
    suppressed: bool = Field(description="The address is on the account's suppression list.")
    status: str = Field(description="created (not sent by mailbeacon), queued, or dropped (suppressed).")


class LinkOut(BaseModel):
    position: int
    url: str
    occurrences: int


class SkippedLinkOut(BaseModel):
    part: str
    url: str
    line: int
    tag: str
    reason: str


class TrackingReport(BaseModel):
    opens: bool = Field(description="An open pixel was inserted.")
    clicks: bool
    unsubscribes: bool
    links_tracked: int
    links: list[LinkOut]
    skipped: list[SkippedLinkOut]


class MessageCreated(BaseModel):
    id: int
    recipients: list[RecipientOut]
    tracking: TrackingReport


class MessageOut(BaseModel):
    id: int
    created_at: datetime
    from_: AddressIn = Field(serialization_alias="from")
    subject: str
    campaign: str | None
    tags: list[str]
    metadata: dict[str, Any]
    message_id_header: str | None
    thread_id: str
    track_opens: bool
    track_clicks: bool
    track_unsubscribes: bool
    links: list[LinkOut]


class RecipientDetail(BaseModel):
    id: int
    email: str
    name: str | None
    status: str
    status_detail: str | None
    message_id_header: str


class CountsOut(BaseModel):
    total: int
    unique: int


class HumanAndAllOut(BaseModel):
    all: CountsOut
    human: CountsOut


class RatesOut(BaseModel):
    """Shares of the copies that were not dropped (suppressed addresses are not sent to)."""

    open_rate: float = Field(description="Unique openers (human) / recipients not dropped.")
    click_rate: float = Field(description="Unique clickers (human) / recipients not dropped.")
    open_rate_all: float = Field(description="Unique openers incl. machine opens / recipients not dropped.")
    click_rate_all: float = Field(
        description="Unique clickers incl. machine clicks / recipients not dropped."
    )


class OpensFromClicksOut(BaseModel):
    all: int
    human: int


class LinkStatsOut(BaseModel):
    position: int
    url: str
    occurrences: int
    clicks: HumanAndAllOut


class MessageStatsOut(BaseModel):
    message_id: int
    recipients: int
    statuses: dict[str, int]
    opens: HumanAndAllOut = Field(
        description="total: pixel loads. unique: recipients who loaded the pixel or clicked (a click "
        "proves an open even when images were blocked)."
    )
    opens_from_clicks: OpensFromClicksOut = Field(
        description="How many of the unique openers are counted only because they clicked."
    )
    clicks: HumanAndAllOut
    unsubscribes: int = Field(description="Recipients who unsubscribed.")
    rates: RatesOut
    links: list[LinkStatsOut]


class EventOut(BaseModel):
    id: int
    type: str
    occurred_at: datetime
    message_id: int
    recipient_id: int
    recipient: str
    link_position: int | None
    url: str | None
    ip: str | None
    user_agent: str | None
    human: bool
    machine_class: str | None
    machine_reason: str | None
    country: str | None
    asn: int | None
    as_org: str | None
    client: str | None
    platform: str | None
    data: dict[str, Any] | None = Field(
        default=None,
        description="The evidence behind the event: the SMTP reply of a delivery attempt, a bounce's status "
        "code, diagnostic and hard/soft class, a complaint's feedback type, a reply's sender.",
    )


class EventPage(BaseModel):
    events: list[EventOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


class AccountSettings(BaseModel):
    id: int
    name: str
    track_opens: bool
    track_clicks: bool
    track_unsubscribes: bool
    scam_prevention: bool
    path_preserving_links: bool
    excluded_domains: list[str]
    tracking_base_url: str | None
    timezone: str
    keep_replies: bool


class AccountSettingsPatch(Strict):
    track_opens: bool | None = None
    track_clicks: bool | None = None
    track_unsubscribes: bool | None = None
    scam_prevention: bool | None = None
    path_preserving_links: bool | None = None
    excluded_domains: list[str] | None = Field(default=None, max_length=1000)
    tracking_base_url: str | None = Field(
        default=None,
        max_length=300,
        description="This account's tracking domain, e.g. https://track.example.com; null: the server's",
    )
    timezone: str | None = Field(default=None, description="IANA name, e.g. Europe/Berlin")
    keep_replies: bool | None = Field(
        default=None, description="Keep the raw text of replies to this account's mail (off: only the event)."
    )

    @field_validator(
        "track_opens",
        "track_clicks",
        "track_unsubscribes",
        "scam_prevention",
        "path_preserving_links",
        "timezone",
        "keep_replies",
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Leaving a field out keeps it; null would mean "unset", which these settings cannot be.
        if value is None:
            raise ValueError("may not be null")
        return value

    @field_validator("tracking_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError("must be an absolute http(s) URL without query, e.g. https://track.example.com")
        return value.rstrip("/")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError("not a known IANA time zone") from None
        return value

    @field_validator("excluded_domains")
    @classmethod
    def _domains(cls, value: list[str] | None) -> list[str] | None:
        for domain in value or ():
            if not _DOMAIN.fullmatch(domain.strip().lower()):
                raise ValueError(f"{domain!r} is not a domain name")
        return value


class AttemptOut(BaseModel):
    started_at: datetime
    duration_ms: int
    outcome: str = Field(description="delivered, sent, deferred, bounced or failed")
    host: str | None
    ip: str | None
    port: int | None
    tls: bool
    code: int | None
    enhanced_code: str | None
    reply: str | None


class SuppressionIn(Strict):
    email: str = Field(max_length=320)
    reason: Literal["manual", "unsubscribed", "hard_bounce", "complaint"] = "manual"


class SuppressionOut(BaseModel):
    id: int
    email: str
    reason: str
    created_at: datetime
    source_event_id: int | None


class SuppressionPage(BaseModel):
    data: list[SuppressionOut]
    next_cursor: str | None


class InboundOut(BaseModel):
    id: int
    received_at: datetime
    source: str
    kind: str = Field(description="bounce, delay, complaint, reply, auto_reply or unknown")
    matched: bool = Field(description="Tied to a sent copy; unmatched mail keeps its raw bytes.")
    envelope_from: str | None
    envelope_to: list[str]
    from_address: str | None
    subject: str | None
    size: int
    explanation: dict[str, Any]
    has_raw: bool


class InboundPage(BaseModel):
    data: list[InboundOut]
    next_cursor: str | None
