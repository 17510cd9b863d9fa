"""DMARC and SMTP TLS reports: storing them, listing them, and adding up a domain's records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Insert, Row, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from mailbeacon.dmarc.explain import policy_json, report_metadata_json
from mailbeacon.dmarc.report import (
    AggregateRecord,
    DkimResult,
    DmarcReport,
    PublishedPolicy,
    ReportKind,
    ReportStatus,
    Source,
    SpfResult,
)
from mailbeacon.dmarc.summary import DomainSummary, SummaryRow, summarise
from mailbeacon.store.tables import dmarc_records, dmarc_reports, messages


@dataclass(frozen=True)
class StoredReport:
    id: int
    account_id: int | None
    received_at: datetime
    source: str
    status: str
    error: str | None
    kind: str | None
    domain: str | None
    org_name: str | None
    org_email: str | None
    report_id: str | None
    begin: datetime | None
    end: datetime | None
    policy_published: dict[str, Any] | None
    record_count: int
    message_count: int
    parsed: dict[str, Any] | None
    size: int
    has_raw: bool


_LISTED = [c for c in dmarc_reports.c if c.name != "raw"] + [
    dmarc_reports.c.raw.is_not(None).label("has_raw")
]


def _stored(row: Row[Any]) -> StoredReport:
    return StoredReport(
        id=row.id,
        account_id=row.account_id,
        received_at=row.received_at,
        source=row.source,
        status=row.status,
        error=row.error,
        kind=row.kind,
        domain=row.domain,
        org_name=row.org_name,
        org_email=row.org_email,
        report_id=row.report_id,
        begin=row.begin_at,
        end=row.end_at,
        policy_published=row.policy,
        record_count=row.record_count,
        message_count=row.message_count,
        parsed=row.parsed,
        size=row.size,
        has_raw=bool(row.has_raw),
    )


def _owned_by(column: ColumnElement[Any], account_id: int | None) -> ColumnElement[bool]:
    """``account_id`` None means the reports that reached no account."""
    return column.is_(None) if account_id is None else column == account_id


# --- writing ---------------------------------------------------------------------------------


def _insert_ignoring_duplicates(dialect: str) -> Insert:
    if dialect == "postgresql":
        return postgresql.insert(dmarc_reports).on_conflict_do_nothing()
    return sqlite.insert(dmarc_reports).on_conflict_do_nothing()


def find_duplicate(conn: Connection, account_id: int | None, dedup_key: str) -> int | None:
    found = conn.execute(
        select(dmarc_reports.c.id).where(
            _owned_by(dmarc_reports.c.account_id, account_id), dmarc_reports.c.dedup_key == dedup_key
        )
    ).first()
    return None if found is None else int(found.id)


def insert_report(
    conn: Connection,
    report: DmarcReport,
    *,
    account_id: int | None,
    dedup_key: str,
    received_at: datetime,
    source: str,
    size: int,
    raw: bytes | None,
) -> int | None:
    """The new report's id, or None when the same report is already stored for this account."""
    new_id = conn.execute(
        _insert_ignoring_duplicates(conn.dialect.name)
        .values(
            account_id=account_id,
            received_at=received_at,
            source=source,
            status=ReportStatus.OK.value,
            kind=report.kind.value,
            domain=report.domain[:255],
            org_name=(report.org_name or "")[:300] or None,
            org_email=(report.org_email or "")[:320] or None,
            report_id=report.report_id[:300],
            begin_at=report.begin,
            end_at=report.end,
            policy=policy_json(report.policy),
            record_count=len(report.records),
            message_count=report.message_count,
            parsed=report_metadata_json(report),
            dedup_key=dedup_key,
            size=size,
            raw=raw,
        )
        .returning(dmarc_reports.c.id)
    ).scalar()
    if new_id is None:
        return None
    if report.records:
        conn.execute(insert(dmarc_records), _record_rows(int(new_id), account_id, report))
    return int(new_id)


def _record_rows(report_row_id: int, account_id: int | None, report: DmarcReport) -> list[dict[str, Any]]:
    return [
        {
            "account_id": account_id,
            "report_id": report_row_id,
            "domain": report.domain[:255],
            "reporter": (report.org_name or "")[:300] or None,
            "interval_begin": record.interval_begin,
            "interval_end": record.interval_end,
            "source_ip": record.source.ip[:45],
            "source_name": (record.source.name or "")[:200] or None,
            "source_type": (record.source.type or "")[:64] or None,
            "source_asn": record.source.asn,
            "source_as_name": (record.source.as_name or "")[:200] or None,
            "source_country": (record.source.country or "")[:2] or None,
            "message_count": record.count,
            "disposition": record.disposition[:16],
            "dkim": record.dkim[:16],
            "spf": record.spf[:16],
            "dkim_aligned": record.dkim_aligned,
            "spf_aligned": record.spf_aligned,
            "dmarc_pass": record.dmarc_pass,
            "header_from": record.header_from[:255],
            "envelope_from": (record.envelope_from or "")[:255] or None,
            "envelope_to": (record.envelope_to or "")[:255] or None,
            "override_reasons": list(record.override_reasons),
            "dkim_results": [[r.domain, r.selector, r.result] for r in record.dkim_results],
            "spf_results": [[r.domain, r.scope, r.result] for r in record.spf_results],
        }
        for record in report.records
    ]


def insert_rejected(
    conn: Connection,
    *,
    account_id: int | None,
    error: str,
    received_at: datetime,
    source: str,
    size: int,
    raw: bytes | None,
) -> int:
    new_id = conn.execute(
        insert(dmarc_reports)
        .values(
            account_id=account_id,
            received_at=received_at,
            source=source,
            status=ReportStatus.REJECTED.value,
            error=error[:2000],
            size=size,
            raw=raw,
        )
        .returning(dmarc_reports.c.id)
    ).scalar_one()
    return int(new_id)


def accounts_sending_from(conn: Connection, domain: str, *, limit: int = 2) -> list[int]:
    """Accounts that have sent mail From the domain or one of its subdomains (at most ``limit``)."""
    sender = func.lower(messages.c.from_email)
    domain = domain.lower()
    rows = conn.execute(
        select(messages.c.account_id)
        .where(
            sender.endswith(f"@{domain}", autoescape=True) | sender.endswith(f".{domain}", autoescape=True)
        )
        .distinct()
        .limit(limit)
    )
    return sorted(int(row.account_id) for row in rows)


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportFilter:
    """``account_id`` None: the reports that reached no account. ``since``/``until`` apply to the
    report's begin date, or for rejected reports (which have none) to when it was received."""

    account_id: int | None
    domain: str | None = None
    kind: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_id: int = 0


def list_reports(conn: Connection, where: ReportFilter, limit: int) -> list[StoredReport]:
    """Reports in id order, after ``after_id``: the page behind GET /v1/dmarc/reports (and the logs API)."""
    query = (
        select(*_LISTED)
        .where(_owned_by(dmarc_reports.c.account_id, where.account_id), dmarc_reports.c.id > where.after_id)
        .order_by(dmarc_reports.c.id)
        .limit(limit)
    )
    when = func.coalesce(dmarc_reports.c.begin_at, dmarc_reports.c.received_at)
    if where.domain is not None:
        query = query.where(dmarc_reports.c.domain == where.domain.lower())
    if where.kind is not None:
        query = query.where(dmarc_reports.c.kind == where.kind)
    if where.status is not None:
        query = query.where(dmarc_reports.c.status == where.status)
    if where.since is not None:
        query = query.where(when >= where.since)
    if where.until is not None:
        query = query.where(when < where.until)
    return [_stored(row) for row in conn.execute(query)]


def get_report(conn: Connection, account_id: int | None, report_id: int) -> StoredReport | None:
    row = conn.execute(
        select(*_LISTED).where(
            dmarc_reports.c.id == report_id, _owned_by(dmarc_reports.c.account_id, account_id)
        )
    ).first()
    return None if row is None else _stored(row)


def get_raw(conn: Connection, account_id: int | None, report_id: int) -> bytes | None:
    row = conn.execute(
        select(dmarc_reports.c.raw).where(
            dmarc_reports.c.id == report_id, _owned_by(dmarc_reports.c.account_id, account_id)
        )
    ).first()
    return None if row is None or row.raw is None else bytes(row.raw)


def report_records(conn: Connection, report_row_id: int) -> list[AggregateRecord]:
    rows = conn.execute(
        select(dmarc_records).where(dmarc_records.c.report_id == report_row_id).order_by(dmarc_records.c.id)
    )
    return [
        AggregateRecord(
            source=Source(
                ip=row.source_ip,
                name=row.source_name,
                type=row.source_type,
                asn=row.source_asn,
                as_name=row.source_as_name,
                country=row.source_country,
            ),
            count=row.message_count,
            disposition=row.disposition,
            dkim=row.dkim,
            spf=row.spf,
            dkim_aligned=row.dkim_aligned,
            spf_aligned=row.spf_aligned,
            dmarc_pass=row.dmarc_pass,
            header_from=row.header_from,
            envelope_from=row.envelope_from,
            envelope_to=row.envelope_to,
            interval_begin=row.interval_begin,
            interval_end=row.interval_end,
            override_reasons=tuple(row.override_reasons),
            dkim_results=tuple(DkimResult(*result) for result in row.dkim_results),
            spf_results=tuple(SpfResult(*result) for result in row.spf_results),
        )
        for row in rows
    ]


def domain_summary(
    conn: Connection,
    account_id: int,
    domain: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> DomainSummary:
    """The account's aggregate records for the domain whose interval begins in [since, until), added up;
    and the policies published in the reports that begin in that range."""
    domain = domain.lower()
    r = dmarc_records.c
    keys = (
        r.source_ip,
        r.source_name,
        r.reporter,
        r.disposition,
        r.dkim_aligned,
        r.spf_aligned,
        r.dmarc_pass,
    )
    grouped = select(*keys, func.sum(r.message_count).label("messages")).where(
        r.account_id == account_id, r.domain == domain
    )
    if since is not None:
        grouped = grouped.where(r.interval_begin >= since)
    if until is not None:
        grouped = grouped.where(r.interval_begin < until)
    rows = [
        SummaryRow(
            source_ip=row.source_ip,
            source_name=row.source_name,
            reporter=row.reporter,
            disposition=row.disposition,
            dkim_aligned=bool(row.dkim_aligned),
            spf_aligned=bool(row.spf_aligned),
            dmarc_pass=bool(row.dmarc_pass),
            messages=int(row.messages or 0),
        )
        for row in conn.execute(grouped.group_by(*keys))
    ]
    reports = [
        report.policy_published
        for report in list_reports(
            conn,
            ReportFilter(account_id, domain, ReportKind.AGGREGATE.value, ReportStatus.OK.value, since, until),
            limit=1_000_000,
        )
    ]
    return summarise(domain, rows, [_policy(p) for p in reports], since=since, until=until)


def _policy(found: dict[str, Any] | None) -> PublishedPolicy | None:
    return None if found is None else PublishedPolicy(**found)
