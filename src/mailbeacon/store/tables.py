"""The schema. Every row that belongs to a customer carries ``account_id``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    true,
)

from mailbeacon.store.types import BigId, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _account_fk() -> Column[int]:
    return Column("account_id", BigId, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False)


accounts = Table(
    "accounts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("track_opens", Boolean, nullable=False, server_default=true()),
    Column("track_clicks", Boolean, nullable=False, server_default=true()),
    Column("track_unsubscribes", Boolean, nullable=False, server_default=true()),
    Column("scam_prevention", Boolean, nullable=False, server_default=true()),
    Column("path_preserving_links", Boolean, nullable=False, server_default=false()),
    # JSON list of domains whose links are never rewritten; NULL means the built-in default list.
    Column("excluded_domains", JSON, nullable=True),
    # Where this account's tracking URLs point (its own tracking domain); NULL means the server's base URL.
    Column("tracking_base_url", String(300), nullable=True),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    # Replies are recorded as events only; with this on, their raw text is kept too.
    Column("keep_replies", Boolean, nullable=False, server_default=false()),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _account_fk(),
    Column("name", String(200), nullable=False),
    Column("prefix", String(16), nullable=False),
    # SHA-256 of the whole key: keys are 256-bit random, so a slow password hash adds nothing.
    Column("key_hash", LargeBinary(32), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("secret", LargeBinary(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _account_fk(),
    Column("created_at", UTCDateTime, nullable=False),
    Column("from_email", String(320), nullable=False),
    Column("from_name", String(200), nullable=True),
    Column("subject", Text, nullable=False),
    Column("campaign", String(200), nullable=True),
    Column("tags", JSON, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("html", Text, nullable=True),
    Column("text", Text, nullable=True),
    Column("track_opens", Boolean, nullable=False),
    Column("track_clicks", Boolean, nullable=False),
    Column("track_unsubscribes", Boolean, nullable=False),
    # The tracking policy the message was scanned with, so its copies can be rebuilt identically later.
    Column("policy", JSON, nullable=False),
    Column("message_id_header", String(998), nullable=True),
    Column("in_reply_to", String(998), nullable=True),
    Column("thread_id", String(998), nullable=False),
    # How the message came in: "api" or "smtp". SMTP messages keep their MIME as received (minus
    # mailbeacon's own X-Mailbeacon-* headers), because every byte but the tracked bodies is relayed as is.
    Column("origin", String(8), nullable=False, server_default="api"),
    Column("source_mime", LargeBinary, nullable=True),
    Column("envelope_from", String(320), nullable=True),
    Column("smtp_credential_id", BigId, nullable=True),
    Index("ix_messages_account_created", "account_id", "created_at"),
    Index("ix_messages_account_campaign", "account_id", "campaign"),
    Index("ix_messages_account_thread", "account_id", "thread_id"),
)

recipients = Table(
    "recipients",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _account_fk(),
    Column("message_id", BigId, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("name", String(200), nullable=True),
    Column("status", String(16), nullable=False),
    Column("status_detail", Text, nullable=True),
    Column("message_id_header", String(998), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_recipients_message", "message_id"),
    Index("ix_recipients_account_email", "account_id", "email"),
    # Feedback mail (bounces, complaints, replies) names the original by its Message-ID.
    Index("ix_recipients_message_id_header", "message_id_header"),
)

links = Table(
    "links",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _account_fk(),
    Column("message_id", BigId, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    # 0-based order of first appearance among the message's tracked links; this is the index in click tokens.
    Column("position", Integer, nullable=False),
    Column("url", Text, nullable=False),
    Column("occurrences", Integer, nullable=False),
    UniqueConstraint("message_id", "position", name="uq_links_message_position"),
)

events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _account_fk(),
    Column("message_id", BigId, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("recipient_id", BigId, ForeignKey("recipients.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(24), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("link_position", Integer, nullable=True),
    Column("ip", String(45), nullable=True),
    Column("user_agent", Text, nullable=True),
    Column("http_method", String(8), nullable=True),
    # Machine classification: human is False for anything known not to be a person.
    Column("human", Boolean, nullable=False),
    Column("machine_class", String(24), nullable=True),
    Column("machine_reason", Text, nullable=True),
    # Enrichment, filled by the insight layer.
    Column("country", String(2), nullable=True),
    Column("asn", Integer, nullable=True),
    Column("as_org", String(200), nullable=True),
    Column("client", String(64), nullable=True),
    Column("platform", String(24), nullable=True),
    Column("data", JSON, nullable=True),
    Index("ix_events_account_id", "account_id", "id"),
    Index("ix_events_message_type", "message_id", "type"),
    Index("ix_events_recipient", "recipient_id", "id"),
)

# Tracking hits as they were answered: the hot path's durable journal. A hit is committed here before
# its response goes out (one small row, no index but the key); the ingest step turns hits into
# events, with the recipient's account and message, and deletes them in the same transaction.
tracking_hits = Table(
    "tracking_hits",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("received_us", BigInteger, nullable=False),  # microseconds since the Unix epoch, UTC
    Column("type", String(24), nullable=False),
    # No foreign keys, to keep the insert cheap: ingest joins both to the recipient's row.
    Column("account_id", BigId, nullable=False),
    Column("recipient_id", BigId, nullable=False),
    Column("link_position", Integer, nullable=True),
    Column("ip", String(45), nullable=True),
    Column("user_agent", Text, nullable=True),
    Column("http_method", String(8), nullable=False),
    Column("human", Boolean, nullable=False),
    Column("machine_class", String(24), nullable=True),
    Column("machine_reason", Text, nullable=True),
    # What the request said of itself, for the machine classification at ingest.
    Column("requested_with", String(200), nullable=True),  # X-Requested-With (an Android app)
    Column("purpose", String(100), nullable=True),  # Sec-Purpose, Purpose, X-Moz: prefetches
)


# Engagement rollups, kept by ingest in the transaction that inserts the events they count, so they
# always equal what the events say and reports need not count millions of events.
def _count(name: str) -> Column[int]:
    return Column(name, BigInteger, nullable=False, server_default="0")


def _moments() -> list[Column[datetime]]:
    names = ("first_opened_at", "last_opened_at", "first_clicked_at", "last_clicked_at")
    return [Column(name, UTCDateTime, nullable=True) for name in names]


# One row per recipient copy that was opened or clicked.
recipient_engagement = Table(
    "recipient_engagement",
    metadata,
    Column("recipient_id", BigId, ForeignKey("recipients.id", ondelete="CASCADE"), primary_key=True),
    _account_fk(),
    Column("message_id", BigId, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    *(_count(name) for name in ("opens", "human_opens", "clicks", "human_clicks")),
    *_moments(),
    Index("ix_recipient_engagement_message", "message_id"),
)

# One row per message with any open or click. Openers count recipients who opened or clicked (a
# click proves the open); pixel openers only those whose pixel loaded.
message_engagement = Table(
    "message_engagement",
    metadata,
    Column("message_id", BigId, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    _account_fk(),
    *(
        _count(name)
        for name in (
            "opens",
            "human_opens",
            "clicks",
            "human_clicks",
            "openers",
            "human_openers",
            "pixel_openers",
            "human_pixel_openers",
            "clickers",
            "human_clickers",
        )
    ),
    *_moments(),
)

# Clicks of one recipient copy on one link (what makes a link's unique clickers countable).
link_clicks = Table(
    "link_clicks",
    metadata,
    Column("recipient_id", BigId, ForeignKey("recipients.id", ondelete="CASCADE"), primary_key=True),
    Column("link_position", Integer, primary_key=True),
    _account_fk(),
    Column("message_id", BigId, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    _count("clicks"),
    _count("human_clicks"),
)

# One row per link of a message that was clicked.
link_engagement = Table(
    "link_engagement",
    metadata,
    Column("message_id", BigId, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("link_position", Integer, primary_key=True),
    _account_fk(),
    *(_count(name) for name in ("clicks", "human_clicks", "clickers", "human_clickers")),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _account_fk(),
    Column("email", String(320), nullable=False),
    Column("reason", String(24), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("source_event_id", BigId, nullable=True),
    UniqueConstraint("account_id", "email", name="uq_suppressions_account_email"),
)


# The delivery queue: one row per recipient copy still to be delivered; the row goes when the copy
# reaches a final status. A worker leases rows (lease_owner, lease_until) so that no two workers, on
# any host, attempt the same copy; a lease left by a dead worker expires and the copy is retried.
deliveries = Table(
    "deliveries",
    metadata,
    Column("recipient_id", BigId, ForeignKey("recipients.id", ondelete="CASCADE"), primary_key=True),
    _account_fk(),
    Column("message_id", BigId, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("domain", String(255), nullable=False),
    Column("queued_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("lease_owner", String(80), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_deliveries_due", "next_attempt_at"),
)

# Every delivery attempt of a copy, successful or not, with what the other side said.
delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _account_fk(),
    Column("message_id", BigId, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("recipient_id", BigId, ForeignKey("recipients.id", ondelete="CASCADE"), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),  # delivered, deferred, bounced, failed
    Column("host", String(255), nullable=True),
    Column("ip", String(45), nullable=True),
    Column("port", Integer, nullable=True),
    Column("tls", Boolean, nullable=False),
    Column("code", Integer, nullable=True),
    Column("enhanced_code", String(16), nullable=True),
    Column("reply", Text, nullable=True),
    Index("ix_delivery_attempts_recipient", "recipient_id", "id"),
    Index("ix_delivery_attempts_account_id", "account_id", "id"),  # the attempts log, page by page
)

# SMTP logins made for an account; the secret is stored as SHA-256 (it is 256-bit random).
smtp_credentials = Table(
    "smtp_credentials",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _account_fk(),
    Column("username", String(200), nullable=False, unique=True),
    Column("secret_hash", LargeBinary(32), nullable=False),
    # Tracking defaults of mail sent with this login; NULL means the account's setting.
    Column("track_opens", Boolean, nullable=True),
    Column("track_clicks", Boolean, nullable=True),
    Column("track_unsubscribes", Boolean, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

# Networks whose clients may submit without AUTH, each bound to one account (Postfix's mynetworks).
trusted_networks = Table(
    "trusted_networks",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _account_fk(),
    Column("network", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# Feedback mail: every bounce, complaint or reply received, with what was made of it. Mail that matches
# no sent copy keeps its raw bytes here (the inbox of unmatched mail); matched mail keeps only the
# explanation, unless the account asks for replies to be kept.
inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("account_id", BigId, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("source", String(8), nullable=False),  # smtp, api, cli
    Column("kind", String(16), nullable=False),
    Column("matched", Boolean, nullable=False),
    Column("envelope_from", String(320), nullable=True),
    Column("envelope_to", JSON, nullable=False),
    Column("from_address", String(320), nullable=True),
    Column("subject", Text, nullable=True),
    Column("size", Integer, nullable=False),
    Column("explanation", JSON, nullable=False),
    Column("raw", LargeBinary, nullable=True),
    Index("ix_inbound_messages_account", "account_id", "id"),
)

# DMARC aggregate, DMARC failure and SMTP TLS reports received (by mail to the reports address, or
# uploaded), per sending domain. A report that could not be read is kept too (status "rejected", with
# the reason and its raw bytes) for inspection. account_id is NULL while no account sends from the
# report's domain. ``dedup_key`` (kind, reporter, report id, domain) keeps a report sent twice from
# being counted twice; rejected reports have none.
dmarc_reports = Table(
    "dmarc_reports",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("account_id", BigId, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("source", String(8), nullable=False),  # smtp, api, cli
    Column("status", String(16), nullable=False),  # ok, rejected
    Column("error", Text, nullable=True),
    Column("kind", String(16), nullable=True),  # aggregate, failure, smtp_tls
    Column("domain", String(255), nullable=True),
    Column("org_name", String(300), nullable=True),
    Column("org_email", String(320), nullable=True),
    Column("report_id", String(300), nullable=True),
    Column("begin_at", UTCDateTime, nullable=True),
    Column("end_at", UTCDateTime, nullable=True),
    Column("policy", JSON, nullable=True),
    Column("record_count", Integer, nullable=False, server_default="0"),
    Column("message_count", BigInteger, nullable=False, server_default="0"),
    # The report's JSON without its records (those are rows of dmarc_records).
    Column("parsed", JSON, nullable=True),
    Column("dedup_key", String(64), nullable=True),
    Column("size", Integer, nullable=False),
    Column("raw", LargeBinary, nullable=True),  # NULL when larger than the kept-raw limit
    UniqueConstraint("account_id", "dedup_key", name="uq_dmarc_reports_account_dedup"),
    Index("ix_dmarc_reports_account_id", "account_id", "id"),
    Index("ix_dmarc_reports_account_domain_begin", "account_id", "domain", "begin_at"),
)

# One row per record of an aggregate report: ``message_count`` messages from one source IP with one
# outcome. Domain, reporter and interval are copied from the report so summaries read this table alone.
dmarc_records = Table(
    "dmarc_records",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("account_id", BigId, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True),
    Column("report_id", BigId, ForeignKey("dmarc_reports.id", ondelete="CASCADE"), nullable=False),
    Column("domain", String(255), nullable=False),
    Column("reporter", String(300), nullable=True),
    Column("interval_begin", UTCDateTime, nullable=False),
    Column("interval_end", UTCDateTime, nullable=False),
    Column("source_ip", String(45), nullable=False),
    Column("source_name", String(200), nullable=True),
    Column("source_type", String(64), nullable=True),
    Column("source_asn", BigInteger, nullable=True),
    Column("source_as_name", String(200), nullable=True),
    Column("source_country", String(2), nullable=True),
    Column("message_count", Integer, nullable=False),
    Column("disposition", String(16), nullable=False),
    Column("dkim", String(16), nullable=False),
    Column("spf", String(16), nullable=False),
    Column("dkim_aligned", Boolean, nullable=False),
    Column("spf_aligned", Boolean, nullable=False),
    Column("dmarc_pass", Boolean, nullable=False),
    Column("header_from", String(255), nullable=False),
    Column("envelope_from", String(255), nullable=True),
    Column("envelope_to", String(255), nullable=True),
    Column("override_reasons", JSON, nullable=False),
    Column("dkim_results", JSON, nullable=False),
    Column("spf_results", JSON, nullable=False),
    Index("ix_dmarc_records_report", "report_id", "id"),
    Index("ix_dmarc_records_account_id", "account_id", "id"),  # the dmarc log, page by page
    Index("ix_dmarc_records_account_domain_begin", "account_id", "domain", "interval_begin"),
)
