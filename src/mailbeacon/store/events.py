"""Reading the event log and counting it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, distinct, func, select

from mailbeacon.events import EventType
from mailbeacon.store.tables import events, link_engagement, links, message_engagement, recipients


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


def _counts(row: Any, total: str, unique: str) -> HumanAndAll:
    def value(name: str) -> int:
        return int(row[name] or 0) if row is not None else 0

    return HumanAndAll(
        all=Counts(value(total), value(unique)),
        human=Counts(value(f"human_{total}"), value(f"human_{unique}")),
    )


def message_stats(conn: Connection, account_id: int, message_id: int) -> MessageStats:
    """A message's numbers, read from the engagement rollups that ingest keeps equal to its events."""
    engagement = (
        conn.execute(
            select(message_engagement).where(
                message_engagement.c.account_id == account_id, message_engagement.c.message_id == message_id
            )
        )
        .mappings()
        .first()
    )
    unsubscribes = conn.execute(
        select(func.count(distinct(events.c.recipient_id))).where(
            events.c.account_id == account_id,
            events.c.message_id == message_id,
            events.c.type == EventType.UNSUBSCRIBED.value,
        )
    ).scalar_one()
    status_rows = conn.execute(
        select(recipients.c.status, func.count())
        .where(recipients.c.account_id == account_id, recipients.c.message_id == message_id)
        .group_by(recipients.c.status)
    )
    statuses = {str(status): int(count) for status, count in status_rows}
    per_link = (
        select(links.c.position, links.c.url, links.c.occurrences, link_engagement)
        .select_from(links)
        .outerjoin(
            link_engagement,
            and_(
                link_engagement.c.message_id == links.c.message_id,
                link_engagement.c.link_position == links.c.position,
            ),
        )
        .where(links.c.account_id == account_id, links.c.message_id == message_id)
        .order_by(links.c.position)
    )
    link_stats = [
        LinkStats(r["position"], r["url"], r["occurrences"], _counts(r, "clicks", "clickers"))
        for r in conn.execute(per_link).mappings()
    ]
    opens = _counts(engagement, "opens", "openers")
    pixel = _counts(engagement, "opens", "pixel_openers")
    return MessageStats(
        recipients=sum(statuses.values()),
        statuses=statuses,
        opens=opens,
        opens_from_clicks=OpensFromClicks(
            all=opens.all.unique - pixel.all.unique, human=opens.human.unique - pixel.human.unique
        ),
        clicks=_counts(engagement, "clicks", "clickers"),
        unsubscribes=int(unsubscribes),
        links=link_stats,
    )
