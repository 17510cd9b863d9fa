"""/v1/logs/{kind}: one log per kind of outcome, filtered, as JSON pages or streamed whole as JSON Lines
or CSV (keyset batches in short read transactions, so memory stays flat for millions of rows)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse

from mailbeacon.api.auth import AccountDep, ServicesDep
from mailbeacon.api.cursors import decode_cursor, encode_cursor
from mailbeacon.api.logs_schemas import PAGE_MODELS
from mailbeacon.api.schemas import MAX_ID
from mailbeacon.logs_format import MEDIA_TYPES, ExportFormat, encode, json_rows, json_text
from mailbeacon.store.logs import (
    SPECS,
    FilterNotApplicable,
    LogFilter,
    LogKind,
    check_filters,
    iter_log,
    log_rows,
)

router = APIRouter(prefix="/v1/logs", tags=["logs"])

EXPORT_BATCH = 5000
KINDS = ", ".join(kind.value for kind in LogKind)
_ACCEPTED = {"application/x-ndjson": ExportFormat.JSONL, "text/csv": ExportFormat.CSV}


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise HTTPException(422, f"{name}: give a time zone, e.g. 2026-01-31T12:00:00Z")
    return value


@dataclass(frozen=True)
class LogRequest:
    where: LogFilter
    limit: int
    format: ExportFormat | None


def log_request(
    request: Request,
    account: AccountDep,
    since: Annotated[datetime | None, Query(description="Inclusive, ISO 8601 with time zone.")] = None,
    until: Annotated[datetime | None, Query(description="Exclusive, ISO 8601 with time zone.")] = None,
    message_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="One message's rows.")] = None,
    campaign: Annotated[str | None, Query(max_length=200, description="Messages of this campaign.")] = None,
    recipient: Annotated[
        str | None, Query(max_length=320, description="One address (case-insensitive).")
    ] = None,
    tag: Annotated[str | None, Query(max_length=200, description="Messages carrying this tag.")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size (JSON pages only).")] = 100,
    format: Annotated[
        Literal["json", "jsonl", "csv"] | None,
        Query(
            description="json: one page (the default). jsonl or csv: the whole filtered log, streamed "
            "(also chosen by `Accept: application/x-ndjson` or `text/csv`)."
        ),
    ] = None,
) -> LogRequest:
    if format is None:
        accept = request.headers.get("accept", "")
        chosen = next((fmt for media, fmt in _ACCEPTED.items() if media in accept), None)
    else:
        chosen = None if format == "json" else ExportFormat(format)
    where = LogFilter(
        account_id=account.id,
        since=_aware("since", since),
        until=_aware("until", until),
        message_id=message_id,
        campaign=campaign,
        recipient=recipient,
        tag=tag,
        after_id=decode_cursor("logs:", cursor) if cursor else 0,
    )
    return LogRequest(where, limit, chosen)


LogRequestDep = Annotated[LogRequest, Depends(log_request)]


def _respond(kind: LogKind, services: ServicesDep, query: LogRequest) -> Response:
    try:
        check_filters(kind, query.where)
    except FilterNotApplicable as exc:
        raise HTTPException(422, str(exc)) from None
    spec = SPECS[kind]
    if query.format is not None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        filename = f"mailbeacon-{kind.value}-{stamp}.{query.format.value}"
        return StreamingResponse(
            encode(query.format, spec, iter_log(services.store, kind, query.where, EXPORT_BATCH)),
            media_type=MEDIA_TYPES[query.format],
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    with services.store.read() as conn:
        rows = log_rows(conn, kind, query.where, query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    page = {
        "kind": kind.value,
        "rows": json_rows(spec.names, rows),
        "next_cursor": encode_cursor("logs:", int(rows[-1][0])) if more else None,
    }
    return Response(json_text(page), media_type="application/json")


def _handler(kind: LogKind) -> Callable[[ServicesDep, LogRequestDep], Response]:
    def get_log(services: ServicesDep, query: LogRequestDep) -> Response:
        return _respond(kind, services, query)

    return get_log


for _kind, _spec in SPECS.items():
    router.add_api_route(
        f"/{_kind.value}",
        _handler(_kind),
        methods=["GET"],
        response_model=PAGE_MODELS[_kind],
        summary=f"The {_kind.value} log",
        description=f"{_spec.description} With `format=jsonl` or `format=csv` the whole filtered log "
        "is streamed as a download instead of one page.",
        operation_id=f"get_{_kind.value}_log",
        responses={200: {"content": {media.split(";")[0]: {} for media in MEDIA_TYPES.values()}}},
    )


@router.get("/{kind}", include_in_schema=False)
def unknown_kind(kind: str, _account: AccountDep) -> None:
    raise HTTPException(404, f"no log {kind!r}: the logs are {KINDS}")
