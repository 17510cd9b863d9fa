"""The DMARC test corpus (tests/data/dmarc) and its expected answers, in the shape they are written in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mailbeacon.dmarc import DmarcReport

CORPUS = Path(__file__).resolve().parent.parent / "data" / "dmarc"
EXPECTED: dict[str, dict[str, Any]] = json.loads((CORPUS / "expected" / "summary-by-file.json").read_text())
VALIDITY: dict[str, dict[str, Any]] = json.loads(
    (CORPUS / "expected" / "upstream-validity-assertions.json").read_text()
)
LARGE = "parsedmarc/samples/aggregate/!large-example.com!1711897200!1711983600.xml"


def corpus_bytes(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def as_expected(report: DmarcReport) -> dict[str, Any]:
    """A parsed aggregate report in the expected answers' shape."""
    assert report.begin is not None
    assert report.end is not None
    assert report.policy is not None
    policy = report.policy
    return {
        "begin_date_utc": report.begin.strftime("%Y-%m-%d %H:%M:%S"),
        "end_date_utc": report.end.strftime("%Y-%m-%d %H:%M:%S"),
        "errors": list(report.errors),
        "message_total": report.message_count,
        "org_email": report.org_email,
        "org_name": report.org_name,
        "policy_published": {
            "adkim": policy.adkim,
            "aspf": policy.aspf,
            "domain": policy.domain,
            "fo": policy.fo,
            "np": policy.np,
            "p": policy.p,
            "pct": policy.pct,
            "sp": policy.sp,
        },
        "record_count": len(report.records),
        "records": [
            {
                "count": record.count,
                "disposition": record.disposition,
                "dkim": record.dkim,
                "dkim_results": [[r.domain, r.selector, r.result] for r in record.dkim_results],
                "envelope_from": record.envelope_from,
                "header_from": record.header_from,
                "override_reasons": list(record.override_reasons),
                "source_ip": record.source.ip,
                "spf": record.spf,
                "spf_results": [[r.domain, r.scope, r.result] for r in record.spf_results],
            }
            for record in report.records
        ],
        "report_id": report.report_id,
        "report_type": report.kind.value,
        "valid": True,
        "xml_schema": report.xml_schema,
    }
