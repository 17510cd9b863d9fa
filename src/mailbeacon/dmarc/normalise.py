"""parsedmarc's report dicts -> mailbeacon's typed reports (dmarc/report.py)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from mailbeacon.dmarc.report import (
    AggregateRecord,
    DkimResult,
    DmarcReport,
    PublishedPolicy,
    ReportKind,
    Source,
    SpfResult,
)

# A failure report's copy of the failed message can be large and is in the raw report anyway.
_FAILURE_FIELDS_LEFT_OUT = frozenset({"sample", "parsed_sample"})


def utc_time(value: str | None) -> datetime | None:
    """parsedmarc's times: "2024-03-31 15:00:00" (UTC) or ISO 8601 with a zone ("...T00:00:00Z")."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _source(info: dict[str, Any]) -> Source:
    asn = info.get("asn")
    return Source(
        ip=str(info.get("ip_address") or ""),
        name=_text(info.get("name")),
        type=_text(info.get("type")),
        asn=int(asn) if asn is not None else None,
        as_name=_text(info.get("as_name")),
        country=_text(info.get("country")),
    )


def _record(record: dict[str, Any]) -> AggregateRecord:
    evaluated = record["policy_evaluated"]
    alignment = record["alignment"]
    identifiers = record["identifiers"]
    auth = record["auth_results"]
    begin, end = utc_time(record["interval_begin"]), utc_time(record["interval_end"])
    assert begin is not None
    assert end is not None
    return AggregateRecord(
        source=_source(record["source"]),
        count=int(record["count"]),
        disposition=str(evaluated["disposition"]),
        dkim=str(evaluated["dkim"]),
        spf=str(evaluated["spf"]),
        dkim_aligned=bool(alignment["dkim"]),
        spf_aligned=bool(alignment["spf"]),
        dmarc_pass=bool(alignment["dmarc"]),
        header_from=str(identifiers.get("header_from") or ""),
        envelope_from=_text(identifiers.get("envelope_from")),
        envelope_to=_text(identifiers.get("envelope_to")),
        interval_begin=begin,
        interval_end=end,
        override_reasons=tuple(_text(r.get("type")) for r in evaluated.get("policy_override_reasons") or []),
        dkim_results=tuple(
            DkimResult(str(r.get("domain") or ""), _text(r.get("selector")), str(r.get("result") or ""))
            for r in auth.get("dkim") or []
        ),
        spf_results=tuple(
            SpfResult(str(r.get("domain") or ""), _text(r.get("scope")), str(r.get("result") or ""))
            for r in auth.get("spf") or []
        ),
    )


def aggregate_report(report: dict[str, Any]) -> DmarcReport:
    metadata = report["report_metadata"]
    published = report["policy_published"]
    return DmarcReport(
        kind=ReportKind.AGGREGATE,
        domain=str(published["domain"]).lower(),
        report_id=str(metadata["report_id"]),
        org_name=_text(metadata.get("org_name")),
        org_email=_text(metadata.get("org_email")),
        begin=utc_time(metadata.get("begin_date")),
        end=utc_time(metadata.get("end_date")),
        policy=PublishedPolicy(
            domain=str(published["domain"]),
            p=_text(published.get("p")),
            sp=_text(published.get("sp")),
            np=_text(published.get("np")),
            pct=_text(published.get("pct")),
            adkim=_text(published.get("adkim")),
            aspf=_text(published.get("aspf")),
            fo=_text(published.get("fo")),
        ),
        records=tuple(_record(record) for record in report["records"]),
        errors=tuple(str(error) for error in metadata.get("errors") or []),
        xml_schema=_text(report.get("xml_schema")),
    )


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def failure_report(report: dict[str, Any]) -> DmarcReport:
    details = _json_safe({k: v for k, v in report.items() if k not in _FAILURE_FIELDS_LEFT_OUT})
    sample = report.get("parsed_sample") or {}
    details["sample_subject"] = _text(sample.get("subject"))
    # Failure reports carry no report id: the same report sent twice has the same fields.
    fingerprint = hashlib.sha256(json.dumps(details, sort_keys=True).encode()).hexdigest()[:32]
    arrival = utc_time(report.get("arrival_date_utc"))
    return DmarcReport(
        kind=ReportKind.FAILURE,
        domain=str(report.get("reported_domain") or "").lower(),
        report_id=f"sha256:{fingerprint}",
        org_name=None,  # who sent it is the carrying mail's From, which parsedmarc does not give
        org_email=None,
        begin=arrival,
        end=arrival,
        details=details,
    )


def smtp_tls_report(report: dict[str, Any]) -> DmarcReport:
    policies = report.get("policies") or []
    domain = str(policies[0].get("policy_domain") or "") if policies else ""
    contact = report.get("contact_info")
    return DmarcReport(
        kind=ReportKind.SMTP_TLS,
        domain=domain.lower(),
        report_id=str(report.get("report_id") or ""),
        org_name=_text(report.get("organization_name")),
        org_email=", ".join(contact) if isinstance(contact, list) else _text(contact),
        begin=utc_time(report.get("begin_date")),
        end=utc_time(report.get("end_date")),
        details={"policies": _json_safe(policies)},
    )
