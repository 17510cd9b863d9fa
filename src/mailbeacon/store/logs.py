"""The logs API's queries: one named query per log kind, flat rows, shared filters, keyset (id) pages.

Every kind reads one table in id order (events, delivery_attempts or dmarc_records), joined to what a
relay customer wants on each row (the message's campaign and tags, the recipient's address, the link's
URL, the DMARC report's reporter). Rows are tuples in the order of the kind's ``columns``; the first
column is always ``id``, the keyset a page continues after.
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Connection,
    Dialect,
    Integer,
    Select,
    String,
    Text,
    TypeDecorator,
    and_,
    cast,
    exists,
    func,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import KeyedColumnElement
from sqlalchemy.sql.functions import FunctionElement

from mailbeacon.events import EventType
from mailbeacon.store import Store
from mailbeacon.store.tables import (
    delivery_attempts,
    dmarc_records,
    dmarc_reports,
    events,
    links,
    messages,
    recipients,
)


class LogKind(enum.StrEnum):
    ATTEMPTS = "attempts"
    DELIVERIES = "deliveries"
    BOUNCES = "bounces"
    FAILURES = "failures"
    OPENS = "opens"
    CLICKS = "clicks"
    UNSUBSCRIBES = "unsubscribes"
    COMPLAINTS = "complaints"
    RESPONSES = "responses"
    DMARC = "dmarc"


@dataclass(frozen=True)
class LogFilter:
    """``recipient`` is compared case-insensitively; ``since`` is inclusive, ``until`` exclusive."""

    account_id: int
    since: datetime | None = None
    until: datetime | None = None
    message_id: int | None = None
    campaign: str | None = None
    recipient: str | None = None
    tag: str | None = None
    after_id: int = 0

    def given(self) -> list[str]:
        names = ("message_id", "campaign", "recipient", "tag")
        return [name for name in names if getattr(self, name) is not None]


class FilterNotApplicable(ValueError):
    """A filter that the kind's rows have nothing to match against (DMARC records have no message)."""


class iso_utc(FunctionElement[str]):
    """A UTC time column as the text the logs show, ISO 8601 with microseconds and ``Z``, made by the
    database: an export of millions of rows builds no datetime objects."""

    type = String()
    inherit_cache = True
    name = "iso_utc"


@compiles(iso_utc)
def _iso_sqlite(element: iso_utc, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps times as "YYYY-MM-DD HH:MM:SS.ffffff" (UTCDateTime, and the driver's SQLITE_TIME).
    return f"(replace({compiler.process(element.clauses, **kw)}, ' ', 'T') || 'Z')"


@compiles(iso_utc, "postgresql")
def _iso_postgresql(element: iso_utc, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


class TextList(TypeDecorator[tuple[Any, ...]]):
    """A JSON list read as its text and decoded once per distinct value: every row of a message
    carries the same tags."""

    impl = Text
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> tuple[Any, ...] | None:
        return None if value is None else _decoded_list(str(value))


@functools.lru_cache(maxsize=4096)
def _decoded_list(text: str) -> tuple[Any, ...]:
    return tuple(json.loads(text))


@dataclass(frozen=True)
class LogColumn:
    name: str
    expression: ColumnElement[Any]
    doc: str

    @property
    def python_type(self) -> type[Any]:
        """What the column holds, for the API's schema (every column may be null)."""
        sql_type = self.expression.type
        if isinstance(sql_type, JSON | TextList):
            return list
        if isinstance(self.expression.element, iso_utc):
            return datetime
        if isinstance(sql_type, Boolean):
            return bool
        if isinstance(sql_type, Integer):
            return int
        return str


# --- columns the event kinds share ---------------------------------------------------------------

_data = events.c.data


def _text(key: str) -> ColumnElement[Any]:
    found: ColumnElement[Any] = _data[key].as_string()
    return found


def _number(key: str) -> ColumnElement[Any]:
    found: ColumnElement[Any] = _data[key].as_integer()
    return found


def _col(name: str, expression: ColumnElement[Any], doc: str) -> LogColumn:
    return LogColumn(name, expression.label(name), doc)


def _about_the_copy(table_id: KeyedColumnElement[Any], at: KeyedColumnElement[Any]) -> list[LogColumn]:
    return [
        _col("id", table_id, "The row's id; pages continue after it."),
        _col("time", iso_utc(at), "When it happened (UTC)."),
        _col("message_id", messages.c.id, "The message's id in mailbeacon."),
        _col("message_id_header", recipients.c.message_id_header, "The copy's Message-ID header."),
        _col("campaign", messages.c.campaign, "The message's campaign."),
        _col("tags", type_coerce(cast(messages.c.tags, Text), TextList()), "The message's tags."),
        _col("recipient_id", recipients.c.id, "The recipient copy's id."),
        _col("recipient", recipients.c.email, "The recipient's address."),
    ]


_EVENT_BASE = _about_the_copy(events.c.id, events.c.occurred_at)

_VISITOR = [
    _col("ip", events.c.ip, "The client's address."),
    _col("user_agent", events.c.user_agent, "The client's User-Agent."),
    _col("human", events.c.human, "False for anything known not to be a person."),
    _col("machine_class", events.c.machine_class, "human, apple_privacy, gmail_proxy, scanner, ..."),
    _col("machine_reason", events.c.machine_reason, "Why the hit was classed as it was."),
    _col("country", events.c.country, "ISO country code of the client's address (once enriched)."),
    _col("asn", events.c.asn, "Autonomous system number of the client's address (once enriched)."),
    _col("as_org", events.c.as_org, "The autonomous system's organisation (once enriched)."),
    _col("client", events.c.client, "The mail client or browser (once enriched)."),
    _col("platform", events.c.platform, "desktop, mobile, webmail, ... (once enriched)."),
]


@dataclass(frozen=True)
class LogSpec:
    kind: LogKind
    description: str
    columns: tuple[LogColumn, ...]
    build: Callable[[LogSpec, Connection, LogFilter], Select[Any]]
    types: tuple[str, ...] = ()  # event types, for the kinds read from events

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


# --- filters -----------------------------------------------------------------------------------------


def _has_tag(conn: Connection, tag: str) -> ColumnElement[bool]:
    if conn.dialect.name == "postgresql":
        return cast(messages.c.tags, JSONB).contains(cast(literal(json.dumps([tag])), JSONB))
    each = func.json_each(messages.c.tags).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value == tag))


def _copy_filters(
    query: Select[Any],
    conn: Connection,
    where: LogFilter,
    *,
    table_id: KeyedColumnElement[Any],
    at: KeyedColumnElement[Any],
    message: KeyedColumnElement[Any],
    recipient: KeyedColumnElement[Any],
    account: KeyedColumnElement[Any],
) -> Select[Any]:
    query = query.where(account == where.account_id, table_id > where.after_id)
    if where.since is not None:
        query = query.where(at >= where.since)
    if where.until is not None:
        query = query.where(at < where.until)
    if where.message_id is not None:
        query = query.where(message == where.message_id)
    if where.campaign is not None:
        query = query.where(messages.c.campaign == where.campaign)
    if where.tag is not None:
        query = query.where(_has_tag(conn, where.tag))
    if where.recipient is not None:
        # Through the recipients table first, so the events of those copies are found by their index.
        copies = select(recipients.c.id).where(
            recipients.c.account_id == where.account_id,
            func.lower(recipients.c.email) == where.recipient.lower(),
        )
        query = query.where(recipient.in_(copies.scalar_subquery()))
    return query.order_by(table_id)


def _events_query(spec: LogSpec, conn: Connection, where: LogFilter) -> Select[Any]:
    query = (
        select(*(c.expression for c in spec.columns))
        .select_from(events)
        .join(messages, messages.c.id == events.c.message_id)
        .join(recipients, recipients.c.id == events.c.recipient_id)
    )
    if "url" in spec.names:
        query = query.outerjoin(
            links,
            and_(links.c.message_id == events.c.message_id, links.c.position == events.c.link_position),
        )
    type_match = events.c.type == spec.types[0] if len(spec.types) == 1 else events.c.type.in_(spec.types)
    return _copy_filters(
        query.where(type_match),
        conn,
        where,
        table_id=events.c.id,
        at=events.c.occurred_at,
        message=events.c.message_id,
        recipient=events.c.recipient_id,
        account=events.c.account_id,
    )


def _attempts_query(spec: LogSpec, conn: Connection, where: LogFilter) -> Select[Any]:
    a = delivery_attempts.c
    query = (
        select(*(c.expression for c in spec.columns))
        .select_from(delivery_attempts)
        .join(messages, messages.c.id == a.message_id)
        .join(recipients, recipients.c.id == a.recipient_id)
    )
    return _copy_filters(
        query,
        conn,
        where,
        table_id=a.id,
        at=a.started_at,
        message=a.message_id,
        recipient=a.recipient_id,
        account=a.account_id,
    )


def _dmarc_query(spec: LogSpec, conn: Connection, where: LogFilter) -> Select[Any]:
    r = dmarc_records.c
    query = (
        select(*(c.expression for c in spec.columns))
        .select_from(dmarc_records)
        .join(dmarc_reports, dmarc_reports.c.id == r.report_id)
        .where(r.account_id == where.account_id, r.id > where.after_id)
    )
    if where.since is not None:
        query = query.where(r.interval_begin >= where.since)
    if where.until is not None:
        query = query.where(r.interval_begin < where.until)
    return query.order_by(r.id)


# --- the kinds ------------------------------------------------------------------------------------

_a = delivery_attempts.c
_r = dmarc_records.c

SPECS: dict[LogKind, LogSpec] = {
    spec.kind: spec
    for spec in (
        LogSpec(
            LogKind.ATTEMPTS,
            "Every delivery attempt of a copy, successful or not, with what the receiving server said.",
            (
                *_about_the_copy(_a.id, _a.started_at),
                _col("outcome", _a.outcome, "delivered, sent (to the smarthost), deferred, bounced, failed."),
                _col("duration_ms", _a.duration_ms, "How long the attempt took."),
                _col("mx_host", _a.host, "The MX host (or smarthost) tried."),
                _col("mx_ip", _a.ip, "Its address."),
                _col("port", _a.port, "Its port."),
                _col("tls", _a.tls, "Whether the session was encrypted."),
                _col("smtp_code", _a.code, "The SMTP reply code."),
                _col("enhanced_code", _a.enhanced_code, "The enhanced status code, e.g. 5.1.1."),
                _col("reply", _a.reply, "The server's reply text."),
            ),
            _attempts_query,
        ),
        LogSpec(
            LogKind.DELIVERIES,
            "Copies the recipient's own mail server accepted (delivered events).",
            (
                *_EVENT_BASE,
                _col("mx_host", _text("host"), "The MX host that accepted the copy."),
                _col("mx_ip", _text("ip"), "Its address."),
                _col("smtp_code", _number("code"), "The SMTP reply code."),
                _col("enhanced_code", _text("enhanced_code"), "The enhanced status code."),
                _col("reply", _text("reply"), "The server's reply text."),
            ),
            _events_query,
            (EventType.DELIVERED.value,),
        ),
        LogSpec(
            LogKind.BOUNCES,
            "Copies refused at delivery, expired, or bounced later by a DSN.",
            (
                *_EVENT_BASE,
                _col("bounce_class", _text("bounce_class"), "hard or soft."),
                _col("reason", _text("reason"), "user_unknown, mailbox_full, expired, ... or other."),
                _col("smtp_code", _number("code"), "The SMTP reply code."),
                _col("enhanced_code", _text("enhanced_code"), "The enhanced status code."),
                _col("diagnostic", _text("diagnostic"), "What the receiving side said."),
                _col("mx_host", func.coalesce(_text("host"), _text("remote_mta")), "The MTA that refused."),
                _col(
                    "source",
                    func.coalesce(_text("source"), literal("delivery", String)),
                    "delivery (refused while delivering), dsn or bounce (a bounce message came back).",
                ),
            ),
            _events_query,
            (EventType.BOUNCED.value,),
        ),
        LogSpec(
            LogKind.FAILURES,
            "Copies never sent: dropped (the address is suppressed) or failed (mailbeacon could not send).",
            (
                *_EVENT_BASE,
                _col("failure", events.c.type, "dropped or failed."),
                _col("reason", _text("reason"), "Why, e.g. 'suppressed: hard_bounce'."),
            ),
            _events_query,
            (EventType.DROPPED.value, EventType.FAILED.value),
        ),
        LogSpec(
            LogKind.OPENS,
            "Loads of the open pixel.",
            (*_EVENT_BASE, *_VISITOR),
            _events_query,
            (EventType.OPENED.value,),
        ),
        LogSpec(
            LogKind.CLICKS,
            "Clicks on tracked links.",
            (
                *_EVENT_BASE,
                _col("link_position", events.c.link_position, "0-based position of the link in the message."),
                _col("url", links.c.url, "The link's target."),
                *_VISITOR,
            ),
            _events_query,
            (EventType.CLICKED.value,),
        ),
        LogSpec(
            LogKind.UNSUBSCRIBES,
            "Unsubscribes, by the link, one-click (RFC 8058) or mail to the List-Unsubscribe address.",
            (
                *_EVENT_BASE,
                _col("via", func.coalesce(_text("via"), literal("link", String)), "link or mailto."),
                _col("http_method", events.c.http_method, "GET (the page) or POST (one-click)."),
                _col("from_address", _text("from"), "The sender of an unsubscribe by mail."),
                *_VISITOR,
            ),
            _events_query,
            (EventType.UNSUBSCRIBED.value,),
        ),
        LogSpec(
            LogKind.COMPLAINTS,
            "Spam complaints received as feedback-loop (ARF) reports.",
            (
                *_EVENT_BASE,
                _col("feedback_type", _text("feedback_type"), "abuse, fraud, ... as the report says."),
                _col("reporter_user_agent", _text("user_agent"), "The reporting software."),
                _col("reporting_mta", _text("reporting_mta"), "The mail server that reported it."),
                _col("report_format", _text("source"), "How the report was read, e.g. arf."),
            ),
            _events_query,
            (EventType.COMPLAINED.value,),
        ),
        LogSpec(
            LogKind.RESPONSES,
            "Replies and automatic replies (out of office, ...) to a copy.",
            (
                *_EVENT_BASE,
                _col("response", events.c.type, "replied or auto_replied."),
                _col("from_address", _text("from"), "Who replied."),
                _col("subject", _text("subject"), "The reply's subject."),
                _col("auto_reply_reason", _text("why"), "What marked it automatic."),
            ),
            _events_query,
            (EventType.REPLIED.value, EventType.AUTO_REPLIED.value),
        ),
        LogSpec(
            LogKind.DMARC,
            "One row per record of the DMARC aggregate reports received for the account's domains.",
            (
                _col("id", _r.id, "The record's id; pages continue after it."),
                _col("time", iso_utc(_r.interval_begin), "Start of the reported interval (UTC)."),
                _col("end", iso_utc(_r.interval_end), "End of the reported interval (UTC)."),
                _col("report_org", _r.reporter, "Who sent the report."),
                _col("report_id", dmarc_reports.c.report_id, "The reporter's id of the report."),
                _col("domain", _r.domain, "The domain reported on."),
                _col("source_ip", _r.source_ip, "The address the mail came from."),
                _col("source_name", _r.source_name, "That address's name, when known."),
                _col("count", _r.message_count, "How many messages this record counts."),
                _col("disposition", _r.disposition, "none, quarantine or reject."),
                _col("dkim", _r.dkim, "The DKIM result as evaluated for DMARC."),
                _col("spf", _r.spf, "The SPF result as evaluated for DMARC."),
                _col("dkim_aligned", _r.dkim_aligned, "Whether DKIM passed aligned."),
                _col("spf_aligned", _r.spf_aligned, "Whether SPF passed aligned."),
                _col("dmarc_pass", _r.dmarc_pass, "Whether DMARC passed."),
                _col("header_from", _r.header_from, "The From domain."),
                _col("envelope_from", _r.envelope_from, "The envelope sender's domain."),
                _col("dkim_results", _r.dkim_results, "Each DKIM signature: [domain, selector, result]."),
                _col("spf_results", _r.spf_results, "Each SPF check: [domain, scope, result]."),
            ),
            _dmarc_query,
        ),
    )
}


# --- reading ---------------------------------------------------------------------------------------


def log_rows(conn: Connection, kind: LogKind, where: LogFilter, limit: int) -> Sequence[Sequence[Any]]:
    """At most ``limit`` rows after ``where.after_id``, oldest first; raises FilterNotApplicable."""
    check_filters(kind, where)
    spec = SPECS[kind]
    query = spec.build(spec, conn, where).limit(limit)
    return conn.execute(query).all()


def iter_log(
    store: Store, kind: LogKind, where: LogFilter, batch: int = 5000
) -> Iterator[Sequence[Sequence[Any]]]:
    """Every row, a batch at a time, each batch read in a short transaction of its own: an export of
    millions of rows holds no snapshot (SQLite's WAL can be checkpointed meanwhile), and memory
    holds one batch. Rows committed during the export with ids past the last batch are included."""
    after = where.after_id
    while True:
        with store.read() as conn:
            rows = log_rows(conn, kind, replace(where, after_id=after), batch)
        if not rows:
            return
        yield rows
        if len(rows) < batch:
            return
        after = int(rows[-1][0])


def check_filters(kind: LogKind, where: LogFilter) -> None:
    """Raises FilterNotApplicable for a filter the kind's rows cannot match: checked before anything
    is read, since a stream cannot turn into an error once it has started."""
    given = where.given()
    if kind is LogKind.DMARC and given:
        raise FilterNotApplicable(f"{', '.join(given)}: DMARC records are not about one message or copy")
