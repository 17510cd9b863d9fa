"""/v1/suppressions: the addresses an account never mails again, and why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response

from mailbeacon.api.auth import AccountDep, ServicesDep
from mailbeacon.api.cursors import decode_cursor, encode_cursor
from mailbeacon.api.schemas import SuppressionIn, SuppressionOut, SuppressionPage
from mailbeacon.messages.draft import DraftError, check_address
from mailbeacon.store.suppressions import Suppression, list_suppressions, suppress, unsuppress

router = APIRouter(prefix="/v1/suppressions", tags=["suppressions"])


def _out(row: Suppression) -> SuppressionOut:
    return SuppressionOut(
        id=row.id,
        email=row.email,
        reason=row.reason,
        created_at=row.created_at,
        source_event_id=row.source_event_id,
    )


@router.get("", response_model=SuppressionPage, summary="The suppression list")
def get_suppressions(
    account: AccountDep,
    services: ServicesDep,
    email: Annotated[str | None, Query(max_length=320, description="Only this address.")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> SuppressionPage:
    after = decode_cursor("s", cursor) if cursor else 0
    with services.store.read() as conn:
        rows = list_suppressions(conn, account.id, after_id=after, limit=limit + 1, email=email)
    more = len(rows) > limit
    rows = rows[:limit]
    return SuppressionPage(
        data=[_out(row) for row in rows], next_cursor=encode_cursor("s", rows[-1].id) if more else None
    )


@router.post("", status_code=201, response_model=SuppressionOut, summary="Suppress an address")
def post_suppression(body: SuppressionIn, account: AccountDep, services: ServicesDep) -> SuppressionOut:
    """Copies to a suppressed address are `dropped`. An address already suppressed keeps its first reason."""
    try:
        check_address("email", body.email)
    except DraftError as exc:
        raise HTTPException(422, str(exc)) from None
    with services.store.write() as conn:
        suppress(conn, account.id, body.email, body.reason, datetime.now(UTC), None)
        rows = list_suppressions(conn, account.id, email=body.email, limit=1)
    return _out(rows[0])


@router.delete("/{email}", status_code=204, summary="Mail an address again")
def delete_suppression(
    email: Annotated[str, Path(max_length=320)], account: AccountDep, services: ServicesDep
) -> Response:
    with services.store.write() as conn:
        if not unsuppress(conn, account.id, email):
            raise HTTPException(404, "this address is not suppressed in this account")
    return Response(status_code=204)
