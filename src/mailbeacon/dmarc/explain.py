"""JSON-able views of reports, records and summaries: for `dmarc --explain`, the API and the store."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from mailbeacon.dmarc.report import AggregateRecord, DmarcReport, PublishedPolicy
from mailbeacon.dmarc.summary import DomainSummary, rows_of_records, summarise


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def policy_json(policy: PublishedPolicy | None) -> dict[str, Any] | None:
    return None if policy is None else asdict(policy)


def record_json(record: AggregateRecord) -> dict[str, Any]:
    return {
        "source_ip": record.source.ip,
        "source": {k: v for k, v in asdict(record.source).items() if k != "ip"},
        "count": record.count,
        "disposition": record.disposition,
        "dkim": record.dkim,
        "spf": record.spf,
        "dkim_aligned": record.dkim_aligned,
        "spf_aligned": record.spf_aligned,
        "dmarc_pass": record.dmarc_pass,
        "header_from": record.header_from,
        "envelope_from": record.envelope_from,
        "envelope_to": record.envelope_to,
        "interval_begin": _time(record.interval_begin),
        "interval_end": _time(record.interval_end),
        "override_reasons": list(record.override_reasons),
        "dkim_results": [asdict(result) for result in record.dkim_results],
        "spf_results": [asdict(result) for result in record.spf_results],
    }


def summary_json(summary: DomainSummary) -> dict[str, Any]:
    found = asdict(summary)
    found["since"], found["until"] = _time(summary.since), _time(summary.until)
    return found


def report_metadata_json(report: DmarcReport) -> dict[str, Any]:
    """Everything but the records: what the store keeps beside the report's record rows."""
    return {
        "kind": report.kind.value,
        "domain": report.domain,
        "report_id": report.report_id,
        "org_name": report.org_name,
        "org_email": report.org_email,
        "begin": _time(report.begin),
        "end": _time(report.end),
        "xml_schema": report.xml_schema,
        "errors": list(report.errors),
        "policy_published": policy_json(report.policy),
        "record_count": len(report.records),
        "message_count": report.message_count,
        "details": report.details,
    }


def explain(report: DmarcReport) -> dict[str, Any]:
    """The whole report, its records, and (for aggregate reports) their summary."""
    found = report_metadata_json(report)
    found["records"] = [record_json(record) for record in report.records]
    if report.records:
        rows = rows_of_records(report.org_name, report.records)
        found["summary"] = summary_json(summarise(report.domain, rows, [report.policy]))
    return found
