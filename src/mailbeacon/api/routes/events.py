"""/v1/events: the account's event log, filtered, oldest first, with cursor pagination."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from mailbeacon.api.auth import AccountDep, ServicesDep
from mailbeacon.api.cursors import decode_cursor, encode_cursor
from mailbeacon.api.schemas import MAX_ID, EventOut, EventPage
from mailbeacon.events import EventType
from mailbeacon.store.events import EventFilter, list_events

router = APIRouter(prefix="/v1/events", tags=["events"])


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise HTTPException(422, f"{name}: give a time zone, e.g. 2026-01-31T12:00:00Z")
    return value


@router.get("", response_model=EventPage, summary="The event log")
def get_events(
    account: AccountDep,
    services: ServicesDep,
    type: Annotated[list[EventType] | None, Query(description="One or more event types.")] = None,
    message_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    recipient_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    since: Annotated[datetime | None, Query(description="Inclusive, ISO 8601 with time zone.")] = None,
    until: Annotated[datetime | None, Query(description="Exclusive, ISO 8601 with time zone.")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventPage:
    where = EventFilter(
        account_id=account.id,
        types=tuple(t.value for t in type or ()),
        message_id=message_id,
        recipient_id=recipient_id,
        since=_aware("since", since),
        until=_aware("until", until),
        after_id=decode_cursor("e", cursor) if cursor else 0,
    )
    with services.store.read() as conn:
        rows = list_events(conn, where, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return EventPage(
        events=[EventOut.model_validate(row) for row in rows],
        next_cursor=encode_cursor("e", rows[-1]["id"]) if more else None,
    )
