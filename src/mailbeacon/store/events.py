"""Reading the event log and counting it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, case, distinct, func, insert, select

from mailbeacon.events import EventType
from mailbeacon.store.hits import take_event_order_lock
from mailbeacon.store.tables import events, links, recipients


def insert_event(
    conn: Connection,
    *,
    account_id: int,
    message_id: int,
    recipient_id: int,
    type: EventType,
    at: datetime,
    data: dict[str, Any] | None = None,
    ip: str | None = None,
) -> int:
    """One event from the mail path (delivery, bounce, complaint, reply); the evidence goes in ``data``.

    These are not a person's actions, so ``human`` is false; opens and clicks come through the
    tracking endpoints' own writer instead.
    """
    take_event_order_lock(conn)
    values = {
        "account_id": account_id,
        "message_id": message_id,
        "recipient_id": recipient_id,
        "type": type.value,
        "occurred_at": at,
        "ip": ip,
        "human": False,
        "data": data,
    }
    return int(conn.execute(_INSERT_EVENT, values).scalar_one())


_INSERT_EVENT = insert(events).returning(events.c.id)  # built once: it runs for every delivery step


@dataclass(frozen=True)
class EventFilter:
    account_id: int
    types: tuple[str, ...] = ()
    message_id: int | None = None
    recipient_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_id: int = 0


def list_events(conn: Connection, where: EventFilter, limit: int) -> list[dict[str, Any]]:
    query = (
        select(events, recipients.c.email.label("recipient"), links.c.url)
        .join(recipients, recipients.c.id == events.c.recipient_id)
        .outerjoin(
            links,
            and_(
                links.c.message_id == events.c.message_id,
                links.c.position == events.c.link_position,
            ),
        )
        .where(events.c.account_id == where.account_id, events.c.id > where.after_id)
        .order_by(events.c.id)
        .limit(limit)
    )
    if where.types:
        query = query.where(events.c.type.in_(where.types))
    if where.message_id is not None:
        query = query.where(events.c.message_id == where.message_id)
    if where.recipient_id is not None:
        query = query.where(events.c.recipient_id == where.recipient_id)
    if where.since is not None:
        query = query.where(events.c.occurred_at >= where.since)
    if where.until is not None:
        query = query.where(events.c.occurred_at < where.until)
    return [row._asdict() for row in conn.execute(query)]


@dataclass(frozen=True)
class Counts:
    total: int
    unique: int


@dataclass(frozen=True)
class HumanAndAll:
    all: Counts
    human: Counts


@dataclass(frozen=True)
class LinkStats:
    position: int
    url: str
    occurrences: int
    clicks: HumanAndAll


@dataclass(frozen=True)
class OpensFromClicks:
    """Recipients counted as unique openers only because they clicked (their pixel never loaded)."""

    all: int
    human: int


@dataclass(frozen=True)
class MessageStats:
    recipients: int
    statuses: dict[str, int]
    opens: HumanAndAll
    opens_from_clicks: OpensFromClicks
    clicks: HumanAndAll
    unsubscribes: int
    links: list[LinkStats]


def _human_and_all(row: Any, prefix: str) -> HumanAndAll:
    return HumanAndAll(
        all=Counts(int(row[f"{prefix}_total"] or 0), int(row[f"{prefix}_unique"] or 0)),
        human=Counts(int(row[f"{prefix}_human_total"] or 0), int(row[f"{prefix}_human_unique"] or 0)),
    )


def _engagement_columns(type_filter: Any, unique_filter: Any) -> list[Any]:
    """total and unique-recipient counts of one kind of event, for all hits and for human hits only."""
    human = events.c.human.is_(True)

    def total(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    def unique(condition: Any) -> Any:
        return func.count(distinct(case((condition, events.c.recipient_id))))

    return [
        total(type_filter),
        unique(unique_filter),
        total(and_(type_filter, human)),
        unique(and_(unique_filter, human)),
    ]


def _labelled(columns: list[Any], prefix: str) -> list[Any]:
    names = ("total", "unique", "human_total", "human_unique")
    return [c.label(f"{prefix}_{n}") for c, n in zip(columns, names, strict=True)]


def message_stats(conn: Connection, account_id: int, message_id: int) -> MessageStats:
    opened = events.c.type == EventType.OPENED.value
    clicked = events.c.type == EventType.CLICKED.value
    # A click proves the message was opened: a recipient who clicked counts as a unique opener,
    # even when the pixel was blocked. Total opens stay the pixel loads actually seen.
    engaged = events.c.type.in_([EventType.OPENED.value, EventType.CLICKED.value])
    unsubscribed = events.c.type == EventType.UNSUBSCRIBED.value
    scoped = and_(events.c.account_id == account_id, events.c.message_id == message_id)
    row = (
        conn.execute(
            select(
                *_labelled(_engagement_columns(opened, engaged), "opens"),
                *_labelled(_engagement_columns(clicked, clicked), "clicks"),
                func.count(distinct(case((unsubscribed, events.c.recipient_id)))).label("unsubscribes"),
                func.count(distinct(case((opened, events.c.recipient_id)))).label("pixel_unique"),
                func.count(
                    distinct(case((and_(opened, events.c.human.is_(True)), events.c.recipient_id)))
                ).label("pixel_human_unique"),
            ).where(scoped)
        )
        .mappings()
        .one()
    )
    status_rows = conn.execute(
        select(recipients.c.status, func.count())
        .where(recipients.c.account_id == account_id, recipients.c.message_id == message_id)
        .group_by(recipients.c.status)
    )
    statuses = {str(status): int(count) for status, count in status_rows}
    per_link: Select[Any] = (
        select(
            links.c.position,
            links.c.url,
            links.c.occurrences,
            *_labelled(_engagement_columns(clicked, clicked), "clicks"),
        )
        .select_from(links)
        .outerjoin(
            events,
            and_(
                events.c.message_id == links.c.message_id,
                events.c.link_position == links.c.position,
                events.c.type == EventType.CLICKED.value,
            ),
        )
        .where(links.c.account_id == account_id, links.c.message_id == message_id)
        .group_by(links.c.position, links.c.url, links.c.occurrences)
        .order_by(links.c.position)
    )
    link_stats = [
        LinkStats(r["position"], r["url"], r["occurrences"], _human_and_all(r, "clicks"))
        for r in conn.execute(per_link).mappings()
    ]
    opens = _human_and_all(row, "opens")
    return MessageStats(
        recipients=sum(statuses.values()),
        statuses=statuses,
        opens=opens,
        opens_from_clicks=OpensFromClicks(
            all=opens.all.unique - int(row["pixel_unique"] or 0),
            human=opens.human.unique - int(row["pixel_human_unique"] or 0),
        ),
        clicks=_human_and_all(row, "clicks"),
        unsubscribes=int(row["unsubscribes"] or 0),
        links=link_stats,
    )
