"""/v1/inbound: feed bounces, complaints and replies fetched from a mailbox; read what came in."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from mailbeacon.api.auth import AccountDep, ServicesDep
from mailbeacon.api.cursors import decode_cursor, encode_cursor
from mailbeacon.api.schemas import InboundOut, InboundPage, ResourceId
from mailbeacon.api.services import Services
from mailbeacon.inbound.recording import receive
from mailbeacon.store.tables import inbound_messages

router = APIRouter(prefix="/v1/inbound", tags=["inbound"])


def _out(row: Any) -> InboundOut:
    return InboundOut(
        id=row.id,
        received_at=row.received_at,
        source=row.source,
        kind=row.kind,
        matched=row.matched,
        envelope_from=row.envelope_from,
        envelope_to=row.envelope_to,
        from_address=row.from_address,
        subject=row.subject,
        size=row.size,
        explanation=row.explanation,
        has_raw=row.raw is not None,
    )


@router.post(
    "",
    status_code=201,
    response_model=InboundOut,
    summary="Feed one raw message (a bounce, complaint or reply)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def post_inbound(request: Request, account: AccountDep, services: ServicesDep) -> InboundOut:
    """The body is the raw RFC 5322 message. It is matched only to copies of this account; anything else
    is kept in this account's inbox of unmatched mail."""
    raw = await request.body()
    return await run_in_threadpool(_store_inbound, raw, account.id, services)


def _store_inbound(raw: bytes, account_id: int, services: Services) -> InboundOut:
    if not raw.strip():
        raise HTTPException(422, "body: send the raw message (Content-Type: message/rfc822)")
    received = receive(
        services.store,
        raw,
        source="api",
        envelope_from=None,
        envelope_to=[],
        signer=services.keyring.current_signer(),
        our_domains=[services.settings.resolved_bounce_domain()],
        account_id=account_id,
    )
    with services.store.read() as conn:
        row = conn.execute(select(inbound_messages).where(inbound_messages.c.id == received.inbound_id)).one()
    return _out(row)


@router.get("", response_model=InboundPage, summary="Feedback mail received")
def list_inbound(
    account: AccountDep,
    services: ServicesDep,
    unmatched: Annotated[bool, Query(description="Only mail that matched no sent copy.")] = False,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> InboundPage:
    query = (
        select(inbound_messages)
        .where(
            inbound_messages.c.account_id == account.id,
            inbound_messages.c.id > (decode_cursor("i", cursor) if cursor else 0),
        )
        .order_by(inbound_messages.c.id)
        .limit(limit + 1)
    )
    if unmatched:
        query = query.where(inbound_messages.c.matched.is_(False))
    with services.store.read() as conn:
        rows = conn.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return InboundPage(
        data=[_out(row) for row in rows], next_cursor=encode_cursor("i", rows[-1].id) if more else None
    )


def _row(services: ServicesDep, account_id: int, inbound_id: int) -> Any:
    with services.store.read() as conn:
        row = conn.execute(
            select(inbound_messages).where(
                inbound_messages.c.id == inbound_id, inbound_messages.c.account_id == account_id
            )
        ).one_or_none()
    if row is None:
        raise HTTPException(404, "no such inbound message in this account")
    return row


@router.get("/{inbound_id}", response_model=InboundOut, summary="One inbound message")
def get_inbound(inbound_id: ResourceId, account: AccountDep, services: ServicesDep) -> InboundOut:
    return _out(_row(services, account.id, inbound_id))


@router.get(
    "/{inbound_id}/raw",
    response_class=Response,
    summary="The raw bytes of an unmatched inbound message",
    responses={200: {"content": {"message/rfc822": {}}}},
)
def get_inbound_raw(inbound_id: ResourceId, account: AccountDep, services: ServicesDep) -> Response:
    row = _row(services, account.id, inbound_id)
    if row.raw is None:
        raise HTTPException(404, "matched mail is not kept; its explanation is")
    return Response(row.raw, media_type="message/rfc822")
