"""/v1/dmarc: upload DMARC and SMTP TLS reports, read them back, and a domain's summary."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from mailbeacon.api.auth import AccountDep, ServicesDep
from mailbeacon.api.cursors import decode_cursor, encode_cursor
from mailbeacon.api.dmarc_schemas import (
    DmarcRecordOut,
    DmarcReportDetail,
    DmarcReportOut,
    DmarcReportPage,
    DmarcSummaryOut,
)
from mailbeacon.api.schemas import ResourceId
from mailbeacon.dmarc.explain import record_json
from mailbeacon.dmarc.recording import record_report
from mailbeacon.dmarc.report import ReportStatus
from mailbeacon.store.dmarc import (
    ReportFilter,
    StoredReport,
    domain_summary,
    get_raw,
    get_report,
    list_reports,
    report_records,
)

router = APIRouter(prefix="/v1/dmarc", tags=["dmarc"])

_REPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            media: {"schema": {"type": "string", "format": "binary"}}
            for media in ("application/xml", "application/gzip", "application/zip", "message/rfc822")
        },
    }
}


def _out(row: StoredReport, *, duplicate: bool = False) -> DmarcReportOut:
    return DmarcReportOut.model_validate(row).model_copy(update={"duplicate": duplicate})


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise HTTPException(422, f"{name}: give a time zone, e.g. 2026-01-31T00:00:00Z")
    return value


async def _body_up_to(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    too_large = HTTPException(413, f"report larger than {limit} bytes (the dmarc_max_report_bytes setting)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/reports",
    status_code=201,
    response_model=DmarcReportOut,
    summary="Upload one report (XML, gzip, zip, SMTP TLS JSON, or the mail that carried it)",
    responses={
        200: {"model": DmarcReportOut, "description": "Already stored (`duplicate`); nothing was added."},
        413: {"description": "Larger than the dmarc_max_report_bytes setting."},
        422: {"description": "Not a readable report: the reason; the upload is kept as a rejected report."},
    },
    openapi_extra=_REPORT_BODY,
)
async def post_report(
    request: Request, response: Response, account: AccountDep, services: ServicesDep
) -> DmarcReportOut:
    """The body is the report file as it came; its format is recognised from its content. The report
    is stored for this account whatever domain it is about."""
    raw = await _body_up_to(request, services.settings.dmarc_max_report_bytes)
    recorded = await run_in_threadpool(
        record_report, services.store, raw, source="api", account_id=account.id
    )
    if recorded.status is ReportStatus.REJECTED:
        raise HTTPException(
            422, f"not a readable report: {recorded.error} (kept as rejected report {recorded.id})"
        )
    with services.store.read() as conn:
        row = get_report(conn, account.id, recorded.id)
    assert row is not None
    if recorded.duplicate:
        response.status_code = 200
    return _out(row, duplicate=recorded.duplicate)


@router.get("/reports", response_model=DmarcReportPage, summary="Reports received, oldest first")
def list_dmarc_reports(
    account: AccountDep,
    services: ServicesDep,
    domain: Annotated[
        str | None, Query(max_length=255, description="Only reports about this domain.")
    ] = None,
    kind: Literal["aggregate", "failure", "smtp_tls"] | None = None,
    status: Literal["ok", "rejected"] | None = None,
    since: Annotated[
        datetime | None, Query(description="Report period begins at or after (ISO 8601).")
    ] = None,
    until: Annotated[datetime | None, Query(description="Report period begins before (ISO 8601).")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DmarcReportPage:
    where = ReportFilter(
        account_id=account.id,
        domain=domain,
        kind=kind,
        status=status,
        since=_aware("since", since),
        until=_aware("until", until),
        after_id=decode_cursor("d", cursor) if cursor else 0,
    )
    with services.store.read() as conn:
        rows = list_reports(conn, where, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return DmarcReportPage(
        data=[_out(row) for row in rows], next_cursor=encode_cursor("d", rows[-1].id) if more else None
    )


def _stored(services: ServicesDep, account_id: int, report_id: int) -> StoredReport:
    with services.store.read() as conn:
        row = get_report(conn, account_id, report_id)
    if row is None:
        raise HTTPException(404, "no such DMARC report in this account")
    return row


@router.get("/reports/{report_id}", response_model=DmarcReportDetail, summary="One report, parsed")
def get_dmarc_report(report_id: ResourceId, account: AccountDep, services: ServicesDep) -> DmarcReportDetail:
    row = _stored(services, account.id, report_id)
    with services.store.read() as conn:
        records = report_records(conn, row.id)
    parsed = row.parsed or {}
    return DmarcReportDetail(
        **_out(row).model_dump(),
        errors=parsed.get("errors", []),
        xml_schema=parsed.get("xml_schema"),
        details=parsed.get("details", {}),
        records=[DmarcRecordOut.model_validate(record_json(record)) for record in records],
    )


@router.get(
    "/reports/{report_id}/raw",
    response_class=Response,
    summary="The report as it was received",
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_dmarc_report_raw(report_id: ResourceId, account: AccountDep, services: ServicesDep) -> Response:
    with services.store.read() as conn:
        raw = get_raw(conn, account.id, report_id)
    if raw is None:
        _stored(services, account.id, report_id)  # 404 when there is no such report
        raise HTTPException(404, "this report's raw bytes were too large to keep")
    return Response(raw, media_type="application/octet-stream")


@router.get("/summary", response_model=DmarcSummaryOut, summary="A domain's DMARC results, added up")
def get_dmarc_summary(
    account: AccountDep,
    services: ServicesDep,
    domain: Annotated[str, Query(min_length=1, max_length=255, description="The sending domain.")],
    since: Annotated[datetime | None, Query(description="Inclusive, ISO 8601 with time zone.")] = None,
    until: Annotated[datetime | None, Query(description="Exclusive, ISO 8601 with time zone.")] = None,
) -> DmarcSummaryOut:
    """Messages by source IP, source organisation and reporter, with DKIM and SPF alignment, DMARC
    pass/fail and the policy applied, from the aggregate records whose interval begins in the range."""
    with services.store.read(snapshot=True) as conn:
        summary = domain_summary(
            conn, account.id, domain, since=_aware("since", since), until=_aware("until", until)
        )
    return DmarcSummaryOut.model_validate(summary)
